/**
 * A real etcd member for one test file: free loopback ports, a temporary
 * data directory, removed again by stop().
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEtcdMember, type EtcdMember } from '../../lib/up/etcd-process.js';
import { freePort } from '../../lib/net.js';

export interface TestEtcd {
  url: string;
  member: EtcdMember;
  stop(): Promise<void>;
}

export async function startTestEtcd(name = 'test'): Promise<TestEtcd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-etcd-'));
  const member = await startEtcdMember({
    name,
    dataDir: dir,
    clientPort: await freePort(),
    peerPort: await freePort(),
    logFile: path.join(dir, 'etcd.log'),
  });
  return {
    url: member.url,
    member,
    async stop() {
      await member.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

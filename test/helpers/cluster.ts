/**
 * A real multi-host viking cluster on one machine: a 3-member etcd cluster
 * and several `viking host` processes, each with its own name and loopback
 * address (127.0.0.2, 127.0.0.3, …) sharing the one Docker daemon. Faults
 * are real: SIGKILL of a host process (plus `docker kill` of its containers,
 * as if the machine died) and SIGKILL of an etcd member.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEtcdMember, waitEtcdReady, type EtcdMember } from '../../lib/up/etcd-process.js';
import { freePort } from '../../lib/net.js';
import { startHostProcess, type HostProcess } from './host-process.js';
import { docker, removeHostContainers } from './docker.js';

export interface EtcdCluster {
  urls: string[];
  members: EtcdMember[];
  stop(): Promise<void>;
}

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-etcd3-'));
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members = await Promise.all(
    ports.map((p, i) =>
      startEtcdMember({
        name: `m${i}`,
        dataDir: path.join(dir, `m${i}`),
        clientPort: p.client,
        peerPort: p.peer,
        initialCluster,
        clusterToken: path.basename(dir),
        logFile: path.join(dir, `m${i}.log`),
      }),
    ),
  );
  const urls = members.map((m) => m.url);
  try {
    await waitEtcdReady(urls, 20_000);
  } catch (err) {
    await Promise.all(members.map((m) => m.stop('SIGKILL')));
    throw err;
  }
  return {
    urls,
    members,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestHost extends HostProcess {
  ip: string;
  alive: boolean;
}

export interface Cluster {
  etcd: EtcdCluster;
  hosts: TestHost[];
  dataDir: string;
  /** Kills a host like a dead machine: SIGKILL the process, then its containers. */
  killHost(host: TestHost): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(o: { prefix: string; hosts: number; extra?: string[]; extraFor?: (index: number) => string[] }): Promise<Cluster> {
  const etcd = await startEtcdCluster(3);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-cluster-'));
  const hosts: TestHost[] = [];
  try {
    for (let i = 0; i < o.hosts; i++) {
      const ip = `127.0.0.${i + 2}`;
      const h = await startHostProcess({
        name: `${o.prefix}-${i + 1}`,
        etcd: etcd.urls.join(','),
        ip,
        master: true,
        dataDir: path.join(dataDir, `h${i + 1}`),
        extra: ['--lease-ttl', '2', '--leader-ttl', '2', ...(o.extra ?? []), ...(o.extraFor?.(i) ?? [])],
      });
      hosts.push({ ...h, ip, alive: true });
    }
  } catch (err) {
    await Promise.all(hosts.map((h) => h.stop()));
    await etcd.stop();
    throw err;
  }
  return {
    etcd,
    hosts,
    dataDir,
    async killHost(host) {
      host.child.kill('SIGKILL');
      host.alive = false;
      const list = await docker.listContainers({ filters: { label: [`viking.host=${host.name}`] } });
      await Promise.all(list.map((c) => docker.getContainer(c.Id).kill().catch(() => {})));
    },
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
      for (const h of hosts) await removeHostContainers(h.name);
      await etcd.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

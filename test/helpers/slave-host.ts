/**
 * One viking host's slave half, for integration tests against a real etcd
 * and a real Docker Engine: a fresh etcd, the host's lease on its record and
 * a started Slave. `stop()` takes down what it started and removes the
 * containers the host ran.
 */
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from './etcd.js';
import { baseImages, docker, removeHostContainers } from './docker.js';
import { connectEtcd } from '../../lib/store/client.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Slave, type SlaveOptions } from '../../lib/slave/slave.js';
import type { HostRecord } from '../../lib/store/records.js';

export interface SlaveHost {
  etcd: TestEtcd;
  client: Etcd3;
  lease: HostLease;
  slave: Slave;
  record: HostRecord;
  /** Stops the slave and starts a new one with the same options (a host's slave starting again). */
  restartSlave(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of the Slave besides those the harness gives (host, ip, client, docker, lease). */
export type SlaveHostOptions = Omit<SlaveOptions, 'host' | 'ip' | 'client' | 'docker' | 'lease'>;

export async function startSlaveHost(host: string, ip: string, options: SlaveHostOptions): Promise<SlaveHost> {
  await baseImages();
  const etcd = await startTestEtcd();
  const client = connectEtcd(etcd.url);
  const record: HostRecord = {
    name: host, ip, tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
    api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
  };
  const lease = new HostLease(client, record, 3);
  await lease.start();
  const newSlave = (): Slave => {
    const slave = new Slave({ host, ip, client, docker, lease, ...options });
    slave.start();
    return slave;
  };
  const h: SlaveHost = {
    etcd, client, lease, record,
    slave: newSlave(),
    async restartSlave() {
      await h.slave.stop();
      h.slave = newSlave();
    },
    async stop() {
      await h.slave.stop();
      await lease.close();
      client.close();
      await removeHostContainers(host);
      await etcd.stop();
    },
  };
  return h;
}

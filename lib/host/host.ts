/**
 * `viking host`: the process every server runs. It registers the host under
 * a lease, runs the slave for its own /deploy keys, serves the front router
 * and the /v1 API, and, on masters, campaigns for leadership. Stopping it
 * undoes all of that in reverse: resign, stop serving, revoke the lease.
 */
import os from 'node:os';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { connectEtcd, watchedPrefixes } from '../store/client.js';
import { connectDocker, assertDockerReachable } from '../docker/client.js';
import { validateName } from '../vikingfile/index.js';
import { HostLease } from './host-lease.js';
import { startRegistry, type RegistryProcess } from '../registry/registry-process.js';
import { REGISTRY_KEY } from '../store/keys.js';
import { Slave, type SlaveOptions } from '../slave/slave.js';
import { Router } from '../router/router.js';
import type { BalanceMode } from '../router/upstreams.js';
import type { RouterTuning } from '../router/server.js';
import { createApi } from '../api/server.js';
import { LeaderRole } from '../leader/leader.js';
import type { HostRecord } from '../store/records.js';

export const VERSION = '0.1.0';

export interface HostConfig {
  name: string;
  ip: string;
  etcd: string[];
  master: boolean;
  routerPort: number;
  apiPort: number;
  /** Address the API listens on (default: the host's ip). */
  apiListen?: string;
  /** Address the router listens on (default: 0.0.0.0). */
  routerListen?: string;
  dataDir: string;
  tags?: string[];
  capacity?: Partial<HostRecord['capacity']>;
  dockerSocket?: string;
  leaseTtlSeconds?: number;
  /** TTL of the leader's election lease: how long a dead leader blocks a new one. */
  leaderTtlSeconds?: number;
  backoff?: SlaveOptions['backoff'];
  /** The cluster registry (`host:port`): announced in etcd; started here when `run`. */
  registry?: { address: string; run: boolean };
  healthTimeoutMs?: number;
  drainMs?: number;
  /** Router worker processes (0: serve in this process; default one per core). */
  routerWorkers?: number;
  routerBalance?: BalanceMode;
  /** Router client limits: trusted proxies, head/idle timeouts, connection cap per worker. */
  routerTuning?: RouterTuning;
  maxUploadBytes?: number;
  log?: (msg: string) => void;
}

export async function assertEtcdReachable(client: Etcd3, urls: string[]): Promise<void> {
  try {
    await Promise.race([
      client.get('/viking-ping').string(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5s')), 5000)),
    ]);
  } catch (err) {
    throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `cannot reach etcd at ${urls.join(', ')} (${(err as Error).message})`);
  }
}

export class VikingHost {
  readonly client: Etcd3;
  readonly docker: Docker;
  private lease: HostLease | undefined;
  private slave: Slave | undefined;
  private router: Router | undefined;
  private api: FastifyInstance | undefined;
  leader: LeaderRole | undefined;
  private registry: RegistryProcess | undefined;
  routerPort = 0;
  apiPort = 0;

  constructor(readonly config: HostConfig) {
    validateName(config.name, 'host name');
    this.client = connectEtcd(config.etcd);
    this.docker = connectDocker(config.dockerSocket);
  }

  async start(): Promise<void> {
    const c = this.config;
    const log = c.log ?? (() => {});
    await assertEtcdReachable(this.client, c.etcd);
    await assertDockerReachable(this.docker);
    await mkdir(c.dataDir, { recursive: true });
    if (c.registry?.run) {
      this.registry = await startRegistry({ address: c.registry.address, dataDir: c.dataDir });
      log(`cluster registry serving on ${c.registry.address} (storage ${c.dataDir}/registry)`);
    }
    if (c.registry) await this.client.put(REGISTRY_KEY).value(c.registry.address);

    this.router = new Router({
      client: this.client,
      hostName: c.name,
      dataDir: c.dataDir,
      port: c.routerPort,
      host: c.routerListen ?? '0.0.0.0',
      ...(c.routerWorkers !== undefined ? { workers: c.routerWorkers } : {}),
      ...(c.routerBalance ? { balance: c.routerBalance } : {}),
      ...(c.routerTuning ? { tuning: c.routerTuning } : {}),
      log,
    });
    this.routerPort = await this.router.start();

    this.api = createApi({
      client: this.client,
      docker: this.docker,
      dataDir: c.dataDir,
      hostName: c.name,
      maxUploadBytes: c.maxUploadBytes ?? 512 * 1024 * 1024,
      routerPort: this.routerPort,
      log,
    });
    await this.api.listen({ port: c.apiPort, host: c.apiListen ?? c.ip });
    this.apiPort = (this.api.server.address() as AddressInfo).port;

    const record: HostRecord = {
      name: c.name,
      ip: c.ip,
      tags: c.tags ?? [],
      capacity: {
        memory: c.capacity?.memory ?? os.totalmem(),
        cpu: c.capacity?.cpu ?? os.cpus().length,
        containers: c.capacity?.containers ?? 0,
      },
      master: c.master,
      api: `http://${c.apiListen && c.apiListen !== '0.0.0.0' ? c.apiListen : c.ip}:${this.apiPort}`,
      routerPort: this.routerPort,
      draining: false,
      startedAt: new Date().toISOString(),
      version: VERSION,
    };
    this.lease = new HostLease(this.client, record, c.leaseTtlSeconds ?? 3);
    await this.lease.start();

    this.slave = new Slave({
      host: c.name,
      ip: c.ip,
      client: this.client,
      docker: this.docker,
      lease: this.lease,
      log,
      ...(c.healthTimeoutMs !== undefined ? { healthTimeoutMs: c.healthTimeoutMs } : {}),
      ...(c.drainMs !== undefined ? { drainMs: c.drainMs } : {}),
      ...(c.backoff !== undefined ? { backoff: c.backoff } : {}),
    });
    this.lease.onRenewed = () => {
      this.slave?.republishAll();
      this.router?.reack();
    };
    this.router.attachAcks(this.lease);
    this.slave.start();

    if (c.master) {
      this.leader = new LeaderRole(this.client, c.name, { ttlSeconds: c.leaderTtlSeconds ?? 3, log });
      this.leader.start();
    }
    log(`host ${c.name} up: ip ${c.ip}, router :${this.routerPort}, api :${this.apiPort}${c.master ? ', master' : ''}`);
  }

  /** The etcd prefixes this host watches: its own /deploy, the routes, and the leader's keys if it leads. */
  watches(): string[] {
    return watchedPrefixes(this.client);
  }

  /** Clean shutdown: leadership and lease are given back now, not after their TTL. */
  async stop(): Promise<void> {
    await this.leader?.stop().catch(() => {});
    await this.api?.close().catch(() => {});
    await this.router?.stop().catch(() => {});
    await this.slave?.stop().catch(() => {});
    await this.lease?.close().catch(() => {});
    await this.registry?.stop().catch(() => {});
    this.client.close();
  }
}

/**
 * `viking host`: the process every server runs. It registers the host under
 * a lease, runs the slave for its own /deploy keys, serves the front router
 * (unless `router: false`: see HostConfig.router) and the /v1 API, and, on
 * masters, campaigns for leadership. Stopping it
 * undoes all of that in reverse: resign, stop serving, revoke the lease.
 * A planned stop (SIGTERM) instead hands the lease over to a grace period:
 * the containers keep running and serving, and the host that starts again
 * adopts them (lib/host/host-lease.ts).
 */
import path from 'node:path';
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
import { HostLease, claimHostName } from './host-lease.js';
import { SelfFence } from './self-fence.js';
import { ensureClusterId } from '../store/cluster-id.js';
import { foreignContainers } from '../slave/containers.js';
import { startRegistry, type RegistryProcess } from '../registry/registry-process.js';
import { REGISTRY_KEY, routerKey } from '../store/keys.js';
import { Slave, type SlaveOptions } from '../slave/slave.js';
import type { RouterEngine } from '../router/engine.js';
import { Router } from '../router/router.js';
import { emptyDump } from '../router/traffic-counters.js';
import type { BalanceMode } from '../router/upstreams.js';
import type { RouterTuning } from '../router/server.js';
import { createApi } from '../api/server.js';
import { LeaderRole } from '../leader/leader.js';
import { CronRunner } from '../cron/runner.js';
import { SECRETS_KEY_FILE, loadSecretsKey, setHostSecretsKey } from '../secrets/key-file.js';
import type { ContainerLimits, HostRecord } from '../store/records.js';
import { DEFAULT_LIMITS } from '../slave/sandbox.js';
import { AcmeIssuer } from '../certs/acme-issuer.js';
import { writeAcmeConfig, type AcmeConfig } from '../certs/acme-config.js';
import { VERSION } from '../version.js';
import { PLACEMENT_LAYOUT } from '../store/placements.js';

export interface HostConfig {
  name: string;
  ip: string;
  etcd: string[];
  master: boolean;
  /**
   * false: the router role is off (`--no-router`). No HTTP/HTTPS listener, no
   * route feed (so no watch on /ports: the fan-out every router pays on each
   * endpoint change), no `/routers/<host>` ack (rollouts wait for no router
   * here), no ACME challenges, and no campaign for the ACME issuer role (its
   * self-check goes through this host's router). Default true.
   */
  router?: boolean;
  /** Ignored when `router` is false. */
  routerPort: number;
  /** HTTPS port of the router; 0 or absent: no HTTPS; -1: any free port. */
  httpsPort?: number;
  apiPort: number;
  /** Address the API listens on (default: the host's ip). */
  apiListen?: string;
  /** Address the router listens on (default: 0.0.0.0). */
  routerListen?: string;
  dataDir: string;
  tags?: string[];
  capacity?: Partial<HostRecord['capacity']>;
  /** Default memory and pids limits of containers (default DEFAULT_LIMITS: 512 MiB, 512 pids). */
  limits?: Partial<ContainerLimits>;
  dockerSocket?: string;
  leaseTtlSeconds?: number;
  /**
   * Seconds a planned stop (stop({ planned: true }), SIGTERM of `viking host`)
   * keeps this host's work in place for it to come back (default 60); 0
   * revokes the lease at once, so the leader moves the work.
   */
  stopGraceSeconds?: number;
  /** TTL of the leader's election lease: how long a dead leader blocks a new one. */
  leaderTtlSeconds?: number;
  backoff?: SlaveOptions['backoff'];
  /** The cluster registry (`host:port`): announced in etcd; started here when `run`. */
  registry?: { address: string; run: boolean };
  healthTimeoutMs?: number;
  drainMs?: number;
  /** Router worker processes (0: serve in this process; default one per core); nginx workers on the nginx engine. */
  routerWorkers?: number;
  /** What carries the requests (default node; see lib/router/engine.ts). */
  routerEngine?: RouterEngine;
  routerBalance?: BalanceMode;
  /** false: the router counts no traffic (viking stats and /metrics show none from this host). */
  routerMetrics?: boolean;
  /** Router client limits: trusted proxies, head/idle timeouts, connection cap per worker. */
  routerTuning?: RouterTuning;
  maxUploadBytes?: number;
  maxUploadFiles?: number;
  /**
   * ACME (lib/certs): `settings` are written to etcd at start for the whole
   * cluster (null turns ACME off; absent leaves what the cluster has). Every
   * host campaigns for the issuer role, held `issuerTtlSeconds` (default 10)
   * past its holder's death.
   */
  acme?: { settings?: Omit<AcmeConfig, 'updatedAt'> | null; issuerTtlSeconds?: number };
  /** The cluster's secrets key file (default `<dataDir>/secrets.key`; a master makes it if the cluster has none). */
  secretsKeyFile?: string;
  log?: (msg: string) => void;
}

export async function assertEtcdReachable(client: Etcd3, urls: string[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.get('/viking-ping').string(),
      // Cleared below: a pending timer kept one-shot commands (trust-registry, token create) alive 5 s after their work.
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no answer in 5s')), 5000); }),
    ]);
  } catch (err) {
    throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `cannot reach etcd at ${urls.join(', ')} (${(err as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What the machine that runs the containers has: the Docker Engine's own
 * count (MemTotal, NCPU), which is the truth when the engine is elsewhere or
 * confined; this process' machine otherwise.
 */
export async function engineResources(docker: Docker): Promise<{ memory: number; cpu: number }> {
  const info = (await docker.info().catch(() => ({}))) as { MemTotal?: number; NCPU?: number };
  return {
    memory: typeof info.MemTotal === 'number' && info.MemTotal > 0 ? info.MemTotal : os.totalmem(),
    cpu: typeof info.NCPU === 'number' && info.NCPU > 0 ? info.NCPU : os.cpus().length,
  };
}

/** How long a stopping host lets API requests under way finish before it cuts their sockets. */
const API_CLOSE_GRACE_MS = 3000;

export class VikingHost {
  readonly client: Etcd3;
  readonly docker: Docker;
  private lease: HostLease | undefined;
  private slave: Slave | undefined;
  private cronRunner: CronRunner | undefined;
  private fence: SelfFence | undefined;
  private router: Router | undefined;
  private api: FastifyInstance | undefined;
  leader: LeaderRole | undefined;
  private registry: RegistryProcess | undefined;
  acmeIssuer: AcmeIssuer | undefined;
  routerPort = 0;
  /** The HTTPS port the router serves (0: none). */
  httpsPort = 0;
  apiPort = 0;
  /** The cluster's id, read (or made) at start. */
  clusterId = '';

  constructor(readonly config: HostConfig) {
    validateName(config.name, 'host name');
    this.client = connectEtcd(config.etcd);
    this.docker = connectDocker(config.dockerSocket);
  }

  async start(): Promise<void> {
    const c = this.config;
    const log = c.log ?? (() => {});
    // Each step can wait on a busy etcd or dockerd: say which one is reached, so a slow start shows where it waits.
    await assertEtcdReachable(this.client, c.etcd);
    log(`etcd reachable (${c.etcd.length} endpoint${c.etcd.length === 1 ? '' : 's'})`);
    await assertDockerReachable(this.docker);
    log('Docker Engine reachable');
    this.clusterId = await ensureClusterId(this.client);
    // Refuse early, before anything listens, while a live host of this cluster has our name.
    await claimHostName(this.client, { name: c.name, ip: c.ip } as HostRecord, null);
    await mkdir(c.dataDir, { recursive: true });
    try {
      await this.startParts(log);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startParts(log: (msg: string) => void): Promise<void> {
    const c = this.config;
    const owner = { cluster: this.clusterId, host: c.name };
    const foreign = await foreignContainers(this.docker, owner);
    if (foreign.length > 0) {
      log(
        `${foreign.length} container(s) labelled viking.host=${c.name} belong to no cluster or to another one; left alone: ` +
          foreign.slice(0, 5).map((f) => `${f.name} (cluster ${f.cluster ?? 'none'})`).join(', '),
      );
    }
    if (c.registry?.run) {
      this.registry = await startRegistry({ address: c.registry.address, dataDir: c.dataDir });
      log(`cluster registry serving on ${c.registry.address} (storage ${c.dataDir}/registry)`);
    }
    if (c.registry) await this.client.put(REGISTRY_KEY).value(c.registry.address);

    // --no-router: no listener, no route feed, no /routers ack (HostConfig.router).
    const router = c.router === false ? undefined : new Router({
      client: this.client,
      hostName: c.name,
      dataDir: c.dataDir,
      port: c.routerPort,
      ...(c.httpsPort ? { httpsPort: c.httpsPort } : {}),
      host: c.routerListen ?? '0.0.0.0',
      ...(c.routerWorkers !== undefined ? { workers: c.routerWorkers } : {}),
      ...(c.routerEngine ? { engine: c.routerEngine } : {}),
      ...(c.routerBalance ? { balance: c.routerBalance } : {}),
      ...(c.routerMetrics === false ? { metrics: false } : {}),
      ...(c.routerTuning ? { tuning: c.routerTuning } : {}),
      log,
    });
    this.router = router;
    this.routerPort = (await router?.start()) ?? 0;
    this.httpsPort = router?.httpsPort ?? 0;

    this.api = createApi({
      client: this.client,
      docker: this.docker,
      dataDir: c.dataDir,
      hostName: c.name,
      etcdUrls: c.etcd,
      clusterId: this.clusterId,
      maxUploadBytes: c.maxUploadBytes ?? 512 * 1024 * 1024,
      ...(c.maxUploadFiles !== undefined ? { maxUploadFiles: c.maxUploadFiles } : {}),
      routerPort: this.routerPort,
      leaderStats: () => this.leader?.stats,
      routerTraffic: () => (this.router ? this.router.trafficCounters() : Promise.resolve(emptyDump())),
      ...(router ? { accessLog: router.accessLog } : {}),
      limits: { ...DEFAULT_LIMITS, ...c.limits },
      holdNode: (stack, node) => {
        if (!this.slave) throw new Error('this host has no slave running yet');
        return this.slave.hold(stack, node);
      },
      log,
    });
    await this.api.listen({ port: c.apiPort, host: c.apiListen ?? c.ip });
    this.apiPort = (this.api.server.address() as AddressInfo).port;

    const machine = await engineResources(this.docker);
    const limits: ContainerLimits = { ...DEFAULT_LIMITS, ...c.limits };
    const record: HostRecord = {
      name: c.name,
      ip: c.ip,
      tags: c.tags ?? [],
      capacity: {
        memory: c.capacity?.memory ?? machine.memory,
        cpu: c.capacity?.cpu ?? machine.cpu,
        containers: c.capacity?.containers ?? 0,
      },
      limits,
      master: c.master,
      api: `http://${c.apiListen && c.apiListen !== '0.0.0.0' ? c.apiListen : c.ip}:${this.apiPort}`,
      routerPort: this.routerPort,
      router: router !== undefined,
      ...(router ? { httpsPort: this.httpsPort, routerEngine: c.routerEngine ?? 'node' } : {}),
      draining: false,
      startedAt: new Date().toISOString(),
      version: VERSION,
      layout: PLACEMENT_LAYOUT,
    };
    this.lease = new HostLease(this.client, record, c.leaseTtlSeconds ?? 3, c.etcd);
    await this.lease.start();

    this.slave = new Slave({
      host: c.name,
      cluster: this.clusterId,
      ip: c.ip,
      client: this.client,
      docker: this.docker,
      lease: this.lease,
      limits,
      log,
      ...(c.healthTimeoutMs !== undefined ? { healthTimeoutMs: c.healthTimeoutMs } : {}),
      ...(c.drainMs !== undefined ? { drainMs: c.drainMs } : {}),
      ...(c.backoff !== undefined ? { backoff: c.backoff } : {}),
    });
    this.lease.onRenewed = () => {
      this.slave?.republishAll();
      this.router?.reack();
    };
    if (router) router.attachAcks(this.lease);
    // A router this host ran before, under a lease etcd has not expired yet, must not hold rollouts back.
    else await this.client.delete().key(routerKey(c.name));
    this.slave.start();
    await this.startOps(limits, log);
    const slave = this.slave;
    const lease = this.lease;
    this.fence = new SelfFence({
      client: this.client,
      self: c.name,
      ttlSeconds: lease.ttl,
      sinceRenewed: () => lease.sinceRenewed(),
      fence: async () => {
        await slave.fence().catch((err: Error) => log(`fence: ${err.message}`));
      },
      unfence: () => slave.unfence(),
      log,
    });
    this.fence.start();
    if (this.lease.adopted) {
      // Back from a planned stop: once the slave has published again what it adopted, the
      // grace lease goes, and with it any endpoint of a container that died meanwhile.
      const lease = this.lease;
      void this.slave.settled().then(async () => {
        await lease.releaseGrace();
        log(`host ${c.name} is back from a planned stop: its running containers were adopted`);
      });
    }

    if (c.master) {
      const lease = this.lease;
      this.leader = new LeaderRole(this.client, c.name, {
        ...(c.leaderTtlSeconds !== undefined ? { ttlSeconds: c.leaderTtlSeconds } : {}),
        // etcd away from this host in the last 30 s (a quorum loss): hold hosts whose keys are not back yet.
        ...(lease ? { etcdWasAway: () => lease.troubledWithin(30_000), etcdBackAt: () => lease.outageEndedAt } : {}),
        log,
      });
      this.leader.start();
    }
    if (c.acme?.settings !== undefined) await writeAcmeConfig(this.client, c.acme.settings);
    if (router) this.startAcmeIssuer(log);
    this.lease.onRenewFailed = (err) => log(`host lease: ${err.message}; retrying`);
    log(`host ${c.name} of cluster ${this.clusterId} up: ip ${c.ip}, ${router ? `router :${this.routerPort}${this.httpsPort ? `, https :${this.httpsPort}` : ''}` : 'no router'}, api :${this.apiPort}${c.master ? ', master' : ''}`);
  }

  /** The ACME issuer campaign: only on router hosts, whose own router answers the challenge self-check. */
  private startAcmeIssuer(log: (msg: string) => void): void {
    const c = this.config;
    const routerAt = c.routerListen && c.routerListen !== '0.0.0.0' && c.routerListen !== '::' ? c.routerListen : '127.0.0.1';
    this.acmeIssuer = new AcmeIssuer({
      client: this.client,
      hostName: c.name,
      ...(c.acme?.issuerTtlSeconds !== undefined ? { ttlSeconds: c.acme.issuerTtlSeconds } : {}),
      routerUrl: () => `http://${routerAt.includes(':') ? `[${routerAt}]` : routerAt}:${this.routerPort}`,
      log,
    });
    this.acmeIssuer.start();
  }

  /** The etcd prefixes this host watches: its own /deploy, the routes, and the leader's keys if it leads. */
  watches(): string[] {
    return watchedPrefixes(this.client);
  }

  /**
   * Clean shutdown: leadership is given back now. The lease is revoked now
   * too (the leader moves the work at once), unless the stop is `planned`
   * and the grace is not 0: then the record and endpoints stay under a grace
   * lease and the containers keep serving until this host is back.
   */
  /** Secrets key and cron runner (issue 15): see lib/secrets/key-file.ts and lib/cron/runner.ts. */
  private async startOps(limits: ContainerLimits, log: (msg: string) => void): Promise<void> {
    const c = this.config;
    const file = c.secretsKeyFile ?? path.join(c.dataDir, SECRETS_KEY_FILE);
    // A broken key file costs this host its secrets (said in the log and in each refusal), not its start.
    const loaded = await loadSecretsKey(this.client, file, c.master).catch((err: Error) => ({ key: undefined, why: `secrets key at ${file} unusable: ${err.message}` }));
    setHostSecretsKey(loaded.key, loaded.why);
    log(loaded.why);
    this.cronRunner = new CronRunner({ host: c.name, cluster: this.clusterId, client: this.client, docker: this.docker, limits, log });
    this.cronRunner.start();
  }

  /**
   * Closes the API: requests under way get API_CLOSE_GRACE_MS to finish, then
   * every socket is cut. A stream that never ends by itself (a dashboard
   * tab's logs, `viking logs -f`) would otherwise hold the stop for as long
   * as its client stays (70 s seen with a dashboard tab open).
   */
  private async closeApi(): Promise<void> {
    const api = this.api;
    if (!api) return;
    const cut = setTimeout(() => api.server.closeAllConnections(), API_CLOSE_GRACE_MS);
    await api.close().catch(() => {});
    clearTimeout(cut);
  }

  async stop(o: { planned?: boolean } = {}): Promise<void> {
    const grace = this.config.stopGraceSeconds ?? 60;
    await this.leader?.stop().catch(() => {});
    // Gives the issuer role (and the challenges under it) back at once, not after its TTL.
    await this.acmeIssuer?.stop().catch(() => {});
    await this.closeApi();
    await this.router?.stop().catch(() => {});
    this.fence?.stop();
    await this.slave?.stop().catch(() => {});
    await this.cronRunner?.stop().catch(() => {});
    if (o.planned && grace > 0 && this.lease) {
      const handed = await this.lease.handOver(grace).catch((err: Error) => {
        this.config.log?.(`planned stop: could not keep the work in place (${err.message}); it will move`);
        return undefined;
      });
      if (handed) this.config.log?.(`planned stop: ${handed.endpoints} endpoint(s) kept serving until ${handed.until}; start this host again before then to keep its containers`);
      else await this.lease.close().catch(() => {});
    }
    await this.lease?.close().catch(() => {});
    await this.registry?.stop().catch(() => {});
    this.client.close();
  }
}

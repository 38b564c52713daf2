/**
 * The slave: makes the containers of this host match `/deploy/<me>`.
 *
 * It watches only its own deploy keys (never the whole cluster), plus the
 * Docker events of its own containers, and both only wake the loop. Each
 * pass reads the whole desired and actual state, asks planSlave() what to
 * do, and runs those actions on a small queue, one at a time per job. A new
 * container takes traffic only after its health check: then its endpoints go
 * to `/ports` under the host's lease, so they vanish with the host.
 */
import PQueue from 'p-queue';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { WakeLoop } from '../control/wake-loop.js';
import { ensureClusterId } from '../store/cluster-id.js';
import { REGISTRY_KEY, deployKey, deployPrefix, jobPath, parseDeployKey, portsKey, procKey, retiringKey } from '../store/keys.js';
import type { ContainerLimits, DeployState, JobId, JobSpec, PortEndpoint } from '../store/records.js';
import { exitInfo, lastLogLines, listOwned, ownerLabels, removeContainer, specHash, startJob, type OwnedContainer, type Owner } from './containers.js';
import { waitHealthy } from './health.js';
import { waitRoutersSeen } from '../router/acks.js';
import { DEFAULT_BACKOFF, afterFailure, failedState, memoryFromState, planSlave, type BackoffPolicy, type DesiredJob, type JobMemory, type SlaveAction } from './reconcile.js';

/** What the slave needs from the host's lease: puts that vanish when the host dies. */
export interface LeasedWriter {
  put(key: string, value: string): Promise<void>;
}

export interface SlaveOptions {
  host: string;
  /**
   * The cluster's id (lib/store/cluster-id.ts): the slave owns only
   * containers labelled with it and with `host`. Read from etcd before the
   * first pass when not given.
   */
  cluster?: string;
  ip: string;
  client: Etcd3;
  docker: Docker;
  lease: LeasedWriter;
  /** How long a new container has to pass its health check. */
  healthTimeoutMs?: number;
  /**
   * Time given to requests already in flight to a withdrawn endpoint, counted
   * from the moment every router has stopped sending new ones to it.
   */
  drainMs?: number;
  /** Longest wait for the routers to acknowledge a withdrawn endpoint. */
  routerAckTimeoutMs?: number;
  /**
   * Every this often the slave reads `/deploy/<me>` again whatever its watch
   * said (default 5000): a watch stream that died without a word (a member
   * behind a cut cable) costs at most this long.
   */
  resyncMs?: number;
  concurrency?: number;
  /** Default memory and pids limits of the containers it starts (default DEFAULT_LIMITS). */
  limits?: ContainerLimits;
  /** Crash-loop backoff (default: 1 s doubling to 30 s, retried every 30 s for ever; `crash-loop` after 5 in a row). */
  backoff?: Partial<BackoffPolicy>;
  log?: (msg: string) => void;
}

export class Slave {
  private readonly queue: PQueue;
  private readonly busy = new Set<string>();
  /** Nodes (`stack/node`) held by a volume restore, with how many holds each: their jobs are left alone. */
  private readonly held = new Map<string, number>();
  /** Container id -> the /ports keys published for it. */
  private readonly published = new Map<string, string[]>();
  private readonly memory = new Map<string, JobMemory>();
  private readonly lastState = new Map<string, string>();
  /** The specs of the last pass by job path: what a fence needs to tell stateless jobs from pinned ones. */
  private specs = new Map<string, JobSpec>();
  /** Cut off from the cluster (lib/host/self-fence.ts): no pass runs until the lease is back. */
  private fenced = false;
  private watch: PrefixWatch | undefined;
  private events: NodeJS.ReadableStream | undefined;
  private resync: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** Passes run so far, and how many actions the last one started (settled() waits for a quiet pass). */
  private passes = 0;
  private lastPassActions = 0;
  private readonly loop = new WakeLoop(
    () => this.pass(),
    (err) => this.o.log?.(`slave pass failed: ${err.message}`),
    500,
  );

  private owner: Owner;

  constructor(private readonly o: SlaveOptions) {
    this.owner = { cluster: o.cluster ?? '', host: o.host };
    this.queue = new PQueue({ concurrency: o.concurrency ?? 4 });
  }

  start(): void {
    this.stopped = false;
    this.watch = watchPrefix(this.o.client, deployPrefix(this.o.host), () => this.wake());
    this.resync = setInterval(() => this.wake(), this.o.resyncMs ?? 5000);
    void this.followDockerEvents();
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    clearTimeout(this.retryTimer);
    await this.watch?.cancel();
    (this.events as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    await this.loop.stop();
    await this.queue.onIdle();
  }

  /**
   * Resolves once a pass found nothing left to start or publish for what
   * runs here and every action has finished: after a restart, everything
   * adopted is published again.
   */
  /** Passes run so far: a test awaits one that started after what it set up. */
  get passCount(): number {
    return this.passes;
  }

  settled(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.stopped) return resolve();
        if (this.passes > 0 && this.busy.size === 0 && this.lastPassActions === 0) return resolve();
        setTimeout(check, 100);
      };
      check();
    });
  }

  /**
   * This host is cut off and its lease is gone: the leader is moving its
   * stateless jobs, so their containers here stop now (without waiting on
   * etcd or the routers, which are out of reach). Containers of jobs with a
   * volume keep running. No pass runs until unfence().
   */
  async fence(): Promise<number> {
    this.fenced = true;
    const owned = await listOwned(this.o.docker, await this.ownerReady());
    let stopped = 0;
    await Promise.all(
      owned.map(async (c) => {
        const spec = this.specs.get(jobPath(c.job));
        if (!spec || spec.volumes.length > 0) return;
        this.published.delete(c.id);
        // Killed at once: no router of the cluster reaches it any more, and it must be gone before its replacement runs.
        await removeContainer(this.o.docker, c.id, 0);
        stopped++;
        this.o.log?.(`${jobPath(c.job)}: stopped ${c.id.slice(0, 12)}: this host is cut off and the job moves elsewhere`);
      }),
    );
    return stopped;
  }

  /** The lease is back: reconcile again from /deploy (what still is ours starts again). */
  unfence(): void {
    this.fenced = false;
    this.republishAll();
  }

  /** The host's lease was re-granted: every endpoint must be published again. */
  republishAll(): void {
    this.published.clear();
    this.wake();
  }

  /** A container of ours died: look now rather than at the next resync. */
  private async followDockerEvents(): Promise<void> {
    try {
      const stream = await this.o.docker.getEvents({
        filters: { type: ['container'], event: ['die', 'destroy'], label: ownerLabels(await this.ownerReady()) },
      });
      this.events = stream;
      stream.on('data', () => this.wake());
      stream.on('error', () => {});
      stream.on('end', () => {
        if (!this.stopped) setTimeout(() => void this.followDockerEvents(), 1000);
      });
    } catch {
      if (!this.stopped) setTimeout(() => void this.followDockerEvents(), 1000);
    }
  }

  wake(): void {
    this.loop.wake();
  }

  /**
   * What `/deploy/<me>` asks for, with each job's spec, all read at the one
   * etcd revision of the deploy listing: a push that changes a spec and its
   * placement together is never seen half done. Also gives the state this
   * host last reported per job, from which a restarted host remembers its
   * backoff.
   */
  private async readDesired(): Promise<{ desired: DesiredJob[]; reported: Map<string, DeployState | undefined> }> {
    const deploys = await readPrefix<DeployState>(this.o.client, deployPrefix(this.o.host));
    const rev = deploys.revision;
    const reported = new Map<string, DeployState | undefined>();
    const jobs: JobId[] = [];
    for (const e of deploys.entries) {
      const job = parseDeployKey(e.key)?.job;
      if (!job) continue;
      jobs.push(job);
      reported.set(jobPath(job), e.value);
    }
    const specs = await Promise.all(
      jobs.map(async (job) => {
        const text = await this.o.client.get(procKey(job)).revision(rev).string();
        return text ? ({ ...(JSON.parse(text) as JobSpec), ...job } as JobSpec) : undefined;
      }),
    );
    const desired = jobs.map((job, i) => {
      const spec = specs[i];
      return { job, spec, hash: spec ? specHash(spec) : '' };
    });
    return { desired, reported };
  }

  /** Whose containers are ours; the cluster id comes from etcd if the host did not give it. */
  private async ownerReady(): Promise<Owner> {
    if (!this.owner.cluster) this.owner = { cluster: await ensureClusterId(this.o.client), host: this.o.host };
    return this.owner;
  }

  private async pass(): Promise<void> {
    if (this.fenced) return;
    const owner = await this.ownerReady();
    const [{ desired, reported }, actual] = await Promise.all([this.readDesired(), listOwned(this.o.docker, owner)]);
    this.specs = new Map(desired.filter((d) => d.spec).map((d) => [jobPath(d.job), d.spec!]));
    // A host that starts again picks up each job's backoff where its last run left it.
    for (const [path, state] of reported) {
      if (this.memory.has(path)) continue;
      const mem = memoryFromState(state);
      if (mem) this.memory.set(path, mem);
    }
    // Withdraw endpoints of containers that are gone (removed by hand, or died).
    const running = new Set(actual.filter((c) => c.running).map((c) => c.id));
    for (const id of [...this.published.keys()]) if (!running.has(id)) await this.unpublish(id);
    const actions = planSlave({
      desired,
      actual,
      published: new Set(this.published.keys()),
      busy: this.held.size === 0 ? this.busy : new Set([...this.busy, ...this.heldPaths(desired.map((d) => d.job), actual.map((c) => c.job))]),
      memory: this.memory,
      now: Date.now(),
    });
    for (const action of actions) this.enqueue(action);
    this.passes++;
    this.lastPassActions = actions.length;
    this.scheduleRetry();
  }

  /**
   * Leaves the node's replicas alone (not started, replaced or removed) until
   * the returned function is called; resolves once the actions already under
   * way for the node are done. A volume restore stops the node meanwhile.
   */
  async hold(stack: string, node: string): Promise<() => void> {
    const key = `${stack}/${node}`;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    const ofNode = (path: string): boolean => {
      const p = path.split('/');
      return p[0] === stack && p[2] === node;
    };
    while ([...this.busy].some(ofNode)) await new Promise((r) => setTimeout(r, 50));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) this.held.set(key, n);
      else this.held.delete(key);
      this.wake();
    };
  }

  private heldPaths(...lists: JobId[][]): string[] {
    return lists.flat().filter((j) => this.held.has(`${j.stack}/${j.node}`)).map((j) => jobPath(j));
  }

  /** Wakes the loop when the earliest backoff ends. */
  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    const now = Date.now();
    const next = Math.min(...[...this.memory.values()].filter((m) => m.retryAt > now).map((m) => m.retryAt));
    if (Number.isFinite(next)) this.retryTimer = setTimeout(() => this.wake(), next - now + 10);
  }

  private enqueue(action: SlaveAction): void {
    const job = action.type === 'remove' ? action.container.job : action.spec;
    const path = jobPath(job);
    this.busy.add(path);
    void this.queue
      .add(() => this.run(action))
      .catch((err: Error) => this.o.log?.(`${path}: ${action.type} failed: ${err.message}`))
      .finally(() => {
        this.busy.delete(path);
        this.wake();
      });
  }

  private async run(action: SlaveAction): Promise<void> {
    switch (action.type) {
      case 'start':
        return this.startAndCheck(action.spec);
      case 'publish':
        return this.checkAndPublish(action.spec, action.container.id, action.container.ports);
      case 'crashed':
        return this.handleCrash(action.spec, action.container);
      case 'remove':
        return this.remove(action.container, action.why);
    }
  }

  private async startAndCheck(spec: JobSpec): Promise<void> {
    const path = jobPath(spec);
    // The counts stay visible while it starts again (`viking ps` RESTARTS), as when it runs.
    const mem = this.memory.get(path);
    await this.writeState(spec, { state: 'starting', ...(mem ? { failures: mem.failures, restarts: mem.restarts } : {}), at: new Date().toISOString() });
    let started;
    try {
      const registry = (await this.o.client.get(REGISTRY_KEY).string()) ?? undefined;
      started = await startJob(this.o.docker, spec, this.owner, this.o.ip, registry, this.o.limits);
    } catch (err) {
      await this.fail(spec, undefined, `could not start: ${(err as Error).message}`);
      return;
    }
    this.o.log?.(`${path}: started ${started.id.slice(0, 12)}`);
    await this.checkAndPublish(spec, started.id, started.ports);
  }

  private async checkAndPublish(spec: JobSpec, id: string, ports: Map<number, number>): Promise<void> {
    const first = spec.expose[0];
    const hostPort = first !== undefined ? ports.get(first) : undefined;
    if (first !== undefined) {
      if (hostPort === undefined) return this.fail(spec, id, `port ${first} was not published`);
      const target = { ip: this.o.ip, port: hostPort, ...(spec.health?.path ? { path: spec.health.path } : {}) };
      const alive = async (): Promise<boolean> =>
        (await this.o.docker.getContainer(id).inspect().then((i) => i.State.Running, () => false)) as boolean;
      const path = jobPath(spec);
      const hash = specHash(spec);
      // Still in /deploy/<me> with this spec (each pass refreshes this.specs).
      const wanted = (): boolean => {
        const now = this.specs.get(path);
        return !this.stopped && now !== undefined && specHash(now) === hash;
      };
      const health = await waitHealthy(target, this.o.healthTimeoutMs ?? 60_000, alive, wanted);
      if (health.abandoned) {
        // Not a failure of the app: the next pass removes the container, no longer asked for.
        this.o.log?.(`${path}: health check of ${id.slice(0, 12)} abandoned: ${health.detail}`);
        return;
      }
      if (!health.healthy) {
        // A container that died while being checked says how it died, not just that the check failed.
        const died = !(await alive()) ? ` (container ${await exitInfo(this.o.docker, id)})` : '';
        return this.fail(spec, id, `health check failed: ${health.detail}${died}`);
      }
    }
    const keys: string[] = [];
    for (const port of spec.expose) {
      const hp = ports.get(port);
      if (hp === undefined) continue;
      const endpoint: PortEndpoint = {
        stack: spec.stack, tag: spec.tag, node: spec.node, instance: spec.instance,
        host: this.o.host, ip: this.o.ip, port, hostPort: hp, proto: 'tcp', container: id, primary: port === first,
      };
      const key = portsKey(endpoint);
      await this.o.lease.put(key, JSON.stringify(endpoint));
      keys.push(key);
    }
    this.published.set(id, keys);
    const path = jobPath(spec);
    const mem = this.memory.get(path);
    if (mem) this.memory.set(path, { ...mem, retryAt: 0, healthySince: Date.now() });
    await this.writeState(spec, {
      state: 'running',
      container: id,
      ...(mem ? { failures: mem.failures, restarts: mem.restarts } : {}),
      at: new Date().toISOString(),
    });
  }

  private async handleCrash(spec: JobSpec, container: OwnedContainer): Promise<void> {
    const why = await exitInfo(this.o.docker, container.id);
    await this.fail(spec, container.id, why);
  }

  /** Records a failed start or a crash, keeps the logs, removes the container, backs off. */
  private async fail(spec: JobSpec, id: string | undefined, reason: string): Promise<void> {
    const path = jobPath(spec);
    const logs = id ? await lastLogLines(this.o.docker, id) : [];
    if (id) {
      await this.unpublish(id);
      await removeContainer(this.o.docker, id, 2);
    }
    const policy = { ...DEFAULT_BACKOFF, ...this.o.backoff };
    const mem = afterFailure(this.memory.get(path), Date.now(), policy);
    this.memory.set(path, mem);
    const state = failedState(mem, policy);
    this.o.log?.(`${path}: ${reason} (failure ${mem.failures} in a row, ${state}, retry in ${mem.retryAt - Date.now()} ms)`);
    await this.writeState(spec, {
      state,
      reason,
      logs,
      failures: mem.failures,
      restarts: mem.restarts,
      retryAt: new Date(mem.retryAt).toISOString(),
      at: new Date().toISOString(),
    });
  }

  /** Withdraws a container's endpoints; returns the etcd revision that removed them, if any. */
  private async unpublish(containerId: string): Promise<string | undefined> {
    const keys = this.published.get(containerId);
    this.published.delete(containerId);
    if (!keys?.length) return undefined;
    const results = await Promise.all(keys.map((k) => this.o.client.delete().key(k).exec()));
    return results.map((r) => BigInt(r.header.revision)).reduce((a, b) => (a > b ? a : b)).toString();
  }

  private async remove(container: OwnedContainer, why: 'unwanted' | 'outdated'): Promise<void> {
    const path = jobPath(container.job);
    // Said before the endpoint goes, so whoever sees the endpoint gone (a rebalance
    // move) can wait for the container itself to be gone before starting another copy.
    // Under the host's lease: it cannot outlive this host. Best effort: a removal
    // never waits on it.
    const retiring = retiringKey(this.o.host, container.job);
    const said = await this.o.lease.put(retiring, JSON.stringify({ container: container.id, since: new Date().toISOString() })).then(() => true, () => false);
    try {
      // Routers drop the endpoint first: once all of them acknowledged, no new request
      // can reach the container, and the ones in flight get drainMs to finish.
      const withdrawn = await this.unpublish(container.id);
      if (withdrawn !== undefined) {
        const seen = await waitRoutersSeen(this.o.client, withdrawn, this.o.routerAckTimeoutMs ?? 5000);
        if (!seen.ok) this.o.log?.(`${path}: routers ${seen.lagging.join(', ')} did not confirm in ${seen.waitedMs} ms; stopping anyway`);
        await new Promise((r) => setTimeout(r, this.o.drainMs ?? 1000));
      }
      await removeContainer(this.o.docker, container.id);
    } finally {
      if (said) await this.o.client.delete().key(retiring).exec().catch(() => {});
    }
    if (why === 'unwanted') {
      this.memory.delete(path);
      this.lastState.delete(path);
    }
    this.o.log?.(`${path}: removed ${why} ${container.id.slice(0, 12)} (${container.name})`);
  }

  /**
   * Reports the job's state in its /deploy key, only if dispatch has not deleted it meanwhile.
   * The key keeps its lease: a rebalance move puts it under a lease of its own, so a move
   * whose API process dies leaves no second copy behind (lib/host-admin/rebalance.ts).
   */
  private async writeState(job: JobId, state: DeployState): Promise<void> {
    const key = deployKey(this.o.host, job);
    const { at: _at, ...comparable } = state;
    const fingerprint = JSON.stringify(comparable);
    if (this.lastState.get(jobPath(job)) === fingerprint) return;
    const res = await this.o.client.if(key, 'Version', '>', 0).then(this.o.client.put(key).value(JSON.stringify(state)).ignoreLease()).commit();
    if (res.succeeded) this.lastState.set(jobPath(job), fingerprint);
  }
}

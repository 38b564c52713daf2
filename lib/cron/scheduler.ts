/**
 * The leader's cron loop: at every tick of every cron node of the stacks'
 * live releases, claim the tick and place its run.
 *
 * Exactly once per tick, across leaders: the claim is the create of
 * `/cron/runs/<stack>/<node>/<tick>`, in one transaction with the run's
 * placement (`/cron/host/<host>/...`), guarded by `Version == 0` on the run
 * key and by the leader key's create revision (the fence dispatch uses). A
 * leader that dies before its transaction leaves the tick unclaimed, and the
 * next leader runs it late (within CRON_CATCH_UP_MS); one that dies after it
 * leaves a claimed and placed run that its host carries out; a deposed
 * leader's claim is refused by the fence. The run's container is placed by
 * dowding like any job, on the hosts and load of one snapshot.
 *
 * Runs whose host vanished (its lease ended) before they finished are
 * marked `lost`, so `concurrency: forbid` does not wait for them forever.
 */
import type { Etcd3, IOperation } from 'etcd3';
import { placeJobs } from '../dowding/plan.js';
import { readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { WakeLoop } from '../control/wake-loop.js';
import { LEADER_KEY, PREFIX, cronHostKey, cronRunKey, cronRunsNodePrefix, parseCronPath, cronRunsPrefix } from '../store/keys.js';
import type { CronRunRecord, JobSpec, NodeTemplate, StackRecord } from '../store/records.js';
import type { Leadership } from '../leader/election.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';
import { attachSecrets } from '../secrets/store.js';
import { decideTick, dueTick, historyToPrune, nextTick } from './schedule.js';

/** Finished runs kept per node (more recent ones are never pruned within the catch-up window). */
export const CRON_HISTORY = 20;
export const CRON_UNFINISHED: ReadonlySet<CronRunRecord['state']> = new Set(['placed', 'running']);

export interface CronNode {
  stack: string;
  node: string;
  tag: string;
  template: NodeTemplate;
  env: Record<string, string>;
  /** Ticks before this instant (the live release's time) are not run. */
  notBefore: number;
}

/** The cron nodes of every stack's live release. */
export function cronNodesOf(stacks: Iterable<StackRecord>): CronNode[] {
  const out: CronNode[] = [];
  for (const s of stacks) {
    const release = s.releases?.find((r) => r.tag === s.current);
    if (!release?.nodes) continue;
    for (const t of Object.values(release.nodes)) {
      if (!t.cron) continue;
      out.push({ stack: s.name, node: t.node, tag: release.tag, template: t, env: s.env ?? {}, notBefore: Date.parse(release.at) || 0 });
    }
  }
  return out;
}

export interface CronSchedulerOptions {
  client: Etcd3;
  hostName: string;
  fence: () => Leadership | undefined;
  /** Test clock hook: the time ticks are computed against (default Date.now). */
  now?: () => number;
  /** Reads the stacks again this often whatever the watch said (default 5000). */
  resyncMs?: number;
  log?: (msg: string) => void;
  onFenced?: (held: Leadership) => void;
}

export class CronScheduler {
  private watch: PrefixWatch | undefined;
  private resync: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Ticks this scheduler already settled (claimed by it or found claimed): `stack/node/tick`. */
  private readonly settled = new Set<string>();
  private readonly loop = new WakeLoop(() => this.pass(), (err) => this.o.log?.(`cron pass failed: ${err.message}`), 500);
  /** Claims this scheduler made, for tests and /metrics. */
  claims = 0;

  constructor(private readonly o: CronSchedulerOptions) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  start(): void {
    this.watch = watchPrefix(this.o.client, PREFIX.stack, () => this.loop.wake());
    this.resync = setInterval(() => this.loop.wake(), this.o.resyncMs ?? 5000);
    this.loop.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    clearTimeout(this.timer);
    await this.watch?.cancel();
    await this.loop.stop();
  }

  private async pass(): Promise<void> {
    const leadership = this.o.fence();
    if (!leadership) return;
    const stacks = await readPrefix<StackRecord>(this.o.client, PREFIX.stack);
    const nodes = cronNodesOf(stacks.entries.flatMap((e) => (e.value ? [e.value] : [])));
    const now = this.now();
    for (const n of nodes) {
      const cron = n.template.cron!;
      const tick = dueTick(cron, now, n.notBefore);
      if (tick === undefined) continue;
      const id = `${n.stack}/${n.node}/${tick}`;
      if (this.settled.has(id)) continue;
      await this.claim(leadership, n, tick);
      this.settled.add(id);
    }
    await this.markLost();
    for (const n of nodes) await this.prune(n, now);
    if (this.settled.size > 10_000) this.settled.clear();
    this.arm(nodes);
  }

  /** Wakes the loop at the next tick of any cron node (the resync covers nodes pushed meanwhile). */
  private arm(nodes: CronNode[]): void {
    clearTimeout(this.timer);
    const now = this.now();
    let next = Infinity;
    for (const n of nodes) next = Math.min(next, nextTick(n.template.cron!, now) ?? Infinity);
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => this.loop.wake(), Math.max(0, next - now) + 5);
  }

  private async runsOf(stack: string, node: string): Promise<Array<{ key: string; tick: number; run: CronRunRecord; modRevision: string }>> {
    const read = await readPrefix<CronRunRecord>(this.o.client, cronRunsNodePrefix(stack, node));
    return read.entries.flatMap((e) => {
      const p = parseCronPath(e.key.slice(cronRunsPrefix.length));
      return p && e.value ? [{ key: e.key, tick: p.tick, run: e.value, modRevision: e.modRevision }] : [];
    });
  }

  /** Claims one tick: decides run or skip, places the run, and commits it all in one fenced create-only transaction. */
  private async claim(leadership: Leadership, n: CronNode, tick: number): Promise<void> {
    const c = this.o.client;
    const runKey = cronRunKey(n.stack, n.node, tick);
    if ((await c.get(runKey).string()) !== null) return;
    const unfinished = (await this.runsOf(n.stack, n.node)).filter((r) => CRON_UNFINISHED.has(r.run.state));
    const decision = decideTick(n.template.cron!.concurrency, unfinished);
    const record: CronRunRecord = {
      stack: n.stack,
      node: n.node,
      tick: new Date(tick).toISOString(),
      tag: n.tag,
      claimedBy: this.o.hostName,
      claimedAt: new Date().toISOString(),
      state: 'skipped',
    };
    const ops = [];
    if (decision.action === 'skip') {
      record.reason = decision.reason;
    } else {
      const { cron: _cron, ...template } = n.template;
      const spec: JobSpec = { ...structuredClone(template), env: { ...n.template.env, ...n.env }, stack: n.stack, tag: n.tag, instance: 1, scale: 1 };
      await attachSecrets(c, [spec]);
      const snap = await readSnapshot(c);
      const planJob = { ...toPlanJob(spec, snap.pins), id: `${n.stack}/${n.tag}/${n.node}/cron-${tick}` };
      const plan = placeJobs({ hosts: toPlanHosts(snap) }, [planJob]);
      const host = plan.placements[0]?.host;
      if (host === undefined) {
        record.state = 'unplaced';
        record.reason = `no host can run it: ${plan.unplaced[0]?.reasons.join('; ') ?? 'no live host'}`;
      } else {
        record.state = 'placed';
        record.host = host;
        ops.push(c.put(cronHostKey(host, n.stack, n.node, tick)).value(JSON.stringify(spec)));
      }
    }
    ops.push(c.put(runKey).value(JSON.stringify(record)));
    const res = await c
      .if(LEADER_KEY, 'Create', '==', leadership.createRevision)
      .and(runKey, 'Version', '==', 0)
      .then(...ops)
      .else(c.get(LEADER_KEY))
      .commit();
    if (res.succeeded) {
      this.claims++;
      this.o.log?.(`cron: ${n.stack}/${n.node} tick ${record.tick}: ${record.state}${record.host ? ` on ${record.host}` : ''}${record.reason ? ` (${record.reason})` : ''}`);
      return;
    }
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (kv?.create_revision !== leadership.createRevision) {
      this.o.log?.(`cron: claim of ${n.stack}/${n.node} tick ${record.tick} refused by the leader fence; stepping down`);
      this.o.onFenced?.(leadership);
    }
    // Else another leader claimed it first: it runs there, not here.
  }

  /**
   * Unfinished runs on hosts whose lease is gone. A run its host never began
   * (still `placed`: the runner marks it `running` in a transaction before it
   * creates the container) goes to another host, so a tick placed on a host
   * that was dying still runs once. A run that began is marked `lost`: it may
   * have run, so it is not run again.
   */
  private async markLost(): Promise<void> {
    const c = this.o.client;
    const [runs, hosts] = await Promise.all([readPrefix<CronRunRecord>(c, cronRunsPrefix), c.getAll().prefix(PREFIX.host).keys()]);
    const live = new Set(hosts.map((k) => k.slice(PREFIX.host.length)));
    for (const e of runs.entries) {
      const r = e.value;
      if (!r || !CRON_UNFINISHED.has(r.state) || !r.host || live.has(r.host)) continue;
      const p = parseCronPath(e.key.slice(cronRunsPrefix.length));
      if (!p) continue;
      const oldKey = cronHostKey(r.host, p.stack, p.node, p.tick);
      const specText = r.state === 'placed' ? await c.get(oldKey).string() : null;
      let next: CronRunRecord = { ...r, state: 'lost', finishedAt: new Date().toISOString(), reason: `host ${r.host} went away before the run finished` };
      const ops: IOperation[] = [c.delete().key(oldKey)];
      if (specText !== null) {
        const spec = JSON.parse(specText) as JobSpec;
        const snap = await readSnapshot(c);
        const planJob = { ...toPlanJob(spec, snap.pins), id: `${p.stack}/${spec.tag}/${p.node}/cron-${p.tick}` };
        const host = placeJobs({ hosts: toPlanHosts(snap) }, [planJob]).placements[0]?.host;
        if (host !== undefined && host !== r.host) {
          next = { ...r, host, reason: `moved from ${r.host}, which went away before it began the run` };
          ops.push(c.put(cronHostKey(host, p.stack, p.node, p.tick)).value(specText));
        }
      }
      const res = await c.if(e.key, 'Mod', '==', e.modRevision).then(c.put(e.key).value(JSON.stringify(next)), ...ops).commit();
      if (res.succeeded) this.o.log?.(`cron: ${p.stack}/${p.node} tick ${r.tick}: ${next.state === 'lost' ? 'lost' : `moved to ${next.host}`} (host ${r.host} went away)`);
    }
  }

  private async prune(n: CronNode, now: number): Promise<void> {
    const runs = await this.runsOf(n.stack, n.node);
    const old = historyToPrune(runs.map((r) => ({ ...r, finished: !CRON_UNFINISHED.has(r.run.state) })), now, CRON_HISTORY);
    for (const r of old) await this.o.client.if(r.key, 'Mod', '==', r.modRevision).then(this.o.client.delete().key(r.key)).commit();
  }
}

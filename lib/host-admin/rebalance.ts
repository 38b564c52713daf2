/**
 * `viking hosts rebalance`: applies dowding's planRebalance to the cluster,
 * one replica at a time, with no downtime.
 *
 * It runs in the API process that got the request, as rollouts and scale
 * do, and holds the moved job's stack lock for each move, so no push,
 * scale or removal of that stack interleaves. One move of job J from A to B:
 *
 *   1. `/deploy/B/J` = '' under a lease of this move, only if `/run/J` still
 *      names A (unchanged since the plan) and B is alive. B's slave starts a
 *      second copy of J. The slave keeps the lease when it writes the state
 *      (ignoreLease), so if this process dies here the key vanishes with the
 *      lease and B stops its copy: a move never leaves a replica running twice.
 *   2. wait until J is `running` on B (its health check passed and its
 *      endpoint is in /ports), then until every router acknowledged that
 *      endpoint's revision: traffic now reaches both copies.
 *   3. one transaction, only if `/run/J` is still unchanged: `/run/J` = B,
 *      `/deploy/B/J` rewritten without the lease (it is B's for good), and
 *      `/deploy/A/J` deleted. A's slave withdraws the old endpoint, waits for
 *      the routers, drains, and stops the old container (lib/slave).
 *   4. wait until the old endpoint is gone from /ports, then until A's slave
 *      has removed the old container (it holds `/retiring/A/J` meanwhile);
 *      then the next move. So at most one replica runs twice at any moment.
 *
 * A failure at 1-3 (the new copy fails its check, the world moved) revokes
 * the move's lease, which deletes `/deploy/B/J` if it is still the move's;
 * the old copy never stopped. Jobs pinned to a volume never move, nor jobs
 * that are not running. Leader-side would survive an API crash mid-run
 * (here the rest of the plan is dropped, safely), but streaming progress
 * from the API that holds the user's request is what push and scale do.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError, toVikingError } from '../errors.js';
import { planRebalance, type BalanceHost, type Move } from '../dowding/rebalance.js';
import { readSnapshot, toPlanHosts } from '../dispatch/snapshot.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, REBALANCE_LOCK_KEY, deployKey, hostKey, jobPath, portsNodePrefix, retiringKey, runKey } from '../store/keys.js';
import { placementOf } from '../store/placements.js';
import type { DeployState, JobId, PortEndpoint } from '../store/records.js';
import { waitRoutersSeen } from '../router/acks.js';
import { withStackLock } from '../rollout/lock.js';
import type { Emit } from '../rollout/rollout.js';

export interface MoveResult {
  /** `<stack>/<node>` */
  node: string;
  /** `<tag>/<n>` */
  replica: string;
  job: string;
  from: string;
  to: string;
  reason: Move['reason'];
  /** planned (dry run), moved, or skipped with why. */
  status: 'planned' | 'moved' | 'skipped';
  detail?: string;
  /** Milliseconds from the start of the new copy to the old one withdrawn. */
  ms: number;
}

export interface RebalanceOptions {
  dryRun?: boolean;
  emit?: Emit;
  by?: string;
  hostName?: string;
  /** Longest wait for a new copy to be healthy (default 120 s). */
  timeoutMs?: number;
  /** Longest wait for the routers to ack the new endpoint (default 5 s; it is then only a delay, not a failure). */
  routerAckTimeoutMs?: number;
  /** Longest wait for the old container to be gone before the next move (default 60 s; then it goes on, saying so). */
  retireTimeoutMs?: number;
}

const MOVE_LEASE_SECONDS = 10;

/** The cluster as planRebalance sees it: live hosts, their jobs, which of them may move. */
export async function balanceView(client: Etcd3): Promise<BalanceHost[]> {
  const snap = await readSnapshot(client);
  const deploys = await readPrefix<DeployState>(client, PREFIX.deploy, snap.revision);
  const states = new Map(deploys.entries.map((e) => [e.key, e.value?.state]));
  return toPlanHosts(snap).map((h) => ({
    ...h,
    jobs: h.jobs.map((j) => {
      const spec = snap.wanted.get(j.id)?.spec;
      const running = spec !== undefined && states.get(deployKey(h.name, spec)) === 'running';
      // Volume jobs stay with their data; a job not running has nothing to move without downtime.
      return { ...j, fixed: !running || (spec?.volumes.length ?? 0) > 0 };
    }),
  }));
}

const describe = (m: Move): Pick<MoveResult, 'node' | 'replica' | 'job' | 'from' | 'to' | 'reason'> => {
  const [stack, tag, node, n] = m.job.id.split('/');
  return { node: `${stack}/${node}`, replica: `${tag}/${n}`, job: m.job.id, from: m.from, to: m.to, reason: m.reason };
};

const jobOf = (id: string): JobId => {
  const [stack, tag, node, n] = id.split('/') as [string, string, string, string];
  return { stack, tag, node, instance: Number(n) };
};

export async function rebalance(client: Etcd3, o: RebalanceOptions = {}): Promise<{ dryRun: boolean; moves: MoveResult[] }> {
  const emit: Emit = o.emit ?? (() => {});
  if (o.dryRun) {
    const moves = planRebalance(await balanceView(client));
    return { dryRun: true, moves: moves.map((m) => ({ ...describe(m), status: 'planned', ms: 0 })) };
  }
  // Planned under the lock, so the plan sees what an earlier rebalance left.
  return withRebalanceLock(client, o, async () => {
    const moves = planRebalance(await balanceView(client));
    return moves.length === 0 ? { dryRun: false, moves: [] } : applyPlan(client, moves, o, emit);
  });
}

/**
 * One rebalance at a time in the cluster: two planned from the same view
 * would both fill the same empty host. Held under a lease, so a dead API
 * process frees it within the TTL.
 */
async function withRebalanceLock<T>(client: Etcd3, o: RebalanceOptions, fn: () => Promise<T>): Promise<T> {
  const lease = client.lease(MOVE_LEASE_SECONDS, { autoKeepAlive: true });
  lease.on('lost', () => {});
  try {
    const leaseId = await lease.grant();
    const holder = JSON.stringify({ by: o.by ?? 'api', host: o.hostName ?? '', since: new Date().toISOString() });
    const res = await client
      .if(REBALANCE_LOCK_KEY, 'Version', '==', 0)
      .then(client.put(REBALANCE_LOCK_KEY).value(holder).lease(leaseId))
      .else(client.get(REBALANCE_LOCK_KEY))
      .commit();
    if (!res.succeeded) {
      const other = res.responses[0]?.response_range?.kvs[0]?.value.toString();
      const h = other ? (JSON.parse(other) as { by: string; host: string; since: string }) : undefined;
      throw new VikingError('VIKING_E_REBALANCE_BUSY', `a rebalance is running${h ? ` (by ${h.by} on ${h.host} since ${h.since})` : ''}; try again when it is done`);
    }
    return await fn();
  } finally {
    await lease.revoke().catch(() => {});
  }
}

async function applyPlan(client: Etcd3, moves: Move[], o: RebalanceOptions, emit: Emit): Promise<{ dryRun: boolean; moves: MoveResult[] }> {
  emit('rebalance', `${moves.length} replica(s) to move, one at a time`);
  const results: MoveResult[] = [];
  for (const [i, m] of moves.entries()) {
    const d = describe(m);
    const prefix = `[${i + 1}/${moves.length}] ${d.node} ${d.replica}`;
    const started = Date.now();
    try {
      await withStackLock(client, jobOf(m.job.id).stack, { what: `rebalance ${d.replica} ${m.from} -> ${m.to}`, by: o.by ?? 'api', host: o.hostName ?? '' }, () =>
        moveOne(client, m, o, (what) => emit('rebalance', `${prefix}: ${what}`)),
      );
      results.push({ ...d, status: 'moved', ms: Date.now() - started });
      emit('rebalance', `${prefix}: moved ${m.from} -> ${m.to} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    } catch (err) {
      const e = toVikingError(err);
      results.push({ ...d, status: 'skipped', detail: `${e.code}: ${e.message}`, ms: Date.now() - started });
      emit('rebalance', `${prefix}: skipped, ${e.message}`);
    }
  }
  return { dryRun: false, moves: results };
}

async function moveOne(client: Etcd3, m: Move, o: RebalanceOptions, say: (what: string) => void): Promise<void> {
  const job = jobOf(m.job.id);
  const placement = await placementOf(client, job);
  if (!placement || placement.host !== m.from) throw new VikingError('VIKING_E_MOVE_CONFLICT', `it is no longer on ${m.from}`);
  const source = deployKey(m.from, job);
  // The replica is where it was while its deploy key on m.from is the same key (a slave's status writes change only its mod revision).
  const stillThere = ['Create', '==', placement.createRevision] as const;
  // A host of the old layout may still read /run (a rolling upgrade): the switch keeps its entry right.
  const legacyRun = await client.get(runKey(job)).exists();
  const lease = client.lease(MOVE_LEASE_SECONDS, { autoKeepAlive: true });
  lease.on('lost', () => {});
  const target = deployKey(m.to, job);
  try {
    const leaseId = await lease.grant();
    const placed = await client
      .if(source, ...stillThere)
      .and(target, 'Version', '==', 0)
      .and(hostKey(m.to), 'Version', '>', 0)
      .and(`${PREFIX.drain}${m.to}`, 'Version', '==', 0)
      .then(client.put(target).value('').lease(leaseId))
      .commit();
    if (!placed.succeeded) throw new VikingError('VIKING_E_MOVE_CONFLICT', `${m.to} is gone or draining, or the replica moved meanwhile`);
    const t0 = Date.now();
    say(`starting a copy on ${m.to}`);
    const ready = await waitRunning(client, job, m.to, o.timeoutMs ?? 120_000);
    const acked = await waitRoutersSeen(client, ready.endpointRevision, o.routerAckTimeoutMs ?? 5000);
    const secs = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
    say(`healthy on ${m.to} after ${secs()}${acked.ok ? ', every router sends to it' : `; routers ${acked.lagging.join(', ')} lag`}; stopping the copy on ${m.from}`);
    // Written again without the lease, the copy becomes the placement (lib/store/placements.ts) as the old one goes.
    const handOver = [client.put(target).value(ready.deployValue), client.delete().key(source)];
    if (legacyRun) handOver.push(client.put(runKey(job)).value(m.to));
    const switched = await client
      .if(source, ...stillThere)
      .and(target, 'Mod', '==', ready.deployModRevision)
      .then(...handOver)
      .commit();
    if (!switched.succeeded) throw new VikingError('VIKING_E_MOVE_CONFLICT', 'the replica changed while its new copy started; the new copy is withdrawn');
    await waitEndpointGone(client, job, m.from, o.timeoutMs ?? 120_000);
    say(`the copy on ${m.from} takes no more traffic (${secs()}); it drains and stops`);
    // The next move starts a copy of another replica: wait until this one's old
    // container is gone, so at most one replica ever runs twice at a time.
    const stopped = await waitRetired(client, job, m.from, o.retireTimeoutMs ?? 60_000);
    if (!stopped) say(`the copy on ${m.from} still stops after ${secs()}; going on`);
  } finally {
    // Deletes the new copy's /deploy key if it is still this move's; once handed over it has no lease.
    await lease.revoke().catch(() => {});
  }
}

interface Ready {
  deployValue: string;
  deployModRevision: string;
  endpointRevision: string;
}

async function waitRunning(client: Etcd3, job: JobId, host: string, timeoutMs: number): Promise<Ready> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const kv = (await client.get(deployKey(host, job)).exec()).kvs[0];
    if (!kv) throw new VikingError('VIKING_E_MOVE_CONFLICT', `the new copy's deploy key on ${host} vanished`);
    const text = kv.value.toString();
    const state = text ? (JSON.parse(text) as DeployState) : undefined;
    if (state?.state === 'failed' || state?.state === 'backoff') {
      throw new VikingError('VIKING_E_UNHEALTHY', `${jobPath(job)} on ${host}: ${state.reason ?? state.state}; the old copy keeps serving`);
    }
    if (state?.state === 'running') {
      const ports = await readPrefix<PortEndpoint>(client, portsNodePrefix(job.stack, job.node));
      const mine = ports.entries.filter((e) => e.value?.host === host && e.value.tag === job.tag && e.value.instance === job.instance);
      const rev = mine.reduce((max, e) => (BigInt(e.modRevision) > max ? BigInt(e.modRevision) : max), 0n);
      // A job without ports is running once its state says so; one with ports once they are published.
      return { deployValue: text, deployModRevision: kv.mod_revision, endpointRevision: (rev > 0n ? rev : BigInt(kv.mod_revision)).toString() };
    }
    if (!(await client.get(hostKey(host)).exists())) throw new VikingError('VIKING_E_MOVE_CONFLICT', `${host} went away while the new copy started`);
    if (Date.now() > deadline) throw new VikingError('VIKING_E_DEPLOY_TIMEOUT', `${jobPath(job)} was not healthy on ${host} after ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until `host`'s slave has removed the job's old container: it holds
 * `/retiring/<host>/<job>` (under its host lease) from before it withdraws the
 * endpoint until the container is gone. False after `timeoutMs`.
 */
async function waitRetired(client: Etcd3, job: JobId, host: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await client.get(retiringKey(host, job)).exists())) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function waitEndpointGone(client: Etcd3, job: JobId, host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ports = await readPrefix<PortEndpoint>(client, portsNodePrefix(job.stack, job.node));
    if (!ports.entries.some((e) => e.value?.host === host && e.value.tag === job.tag && e.value.instance === job.instance)) return;
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Rebalancing: which placed replicas to move, and in what order, so each
 * node's replicas are spread across the hosts again and load evens out.
 *
 * Dispatch never moves a healthy replica (that would cost a restart), so a
 * stack placed while only one host was up stays piled on it when more hosts
 * come. `viking hosts rebalance` applies this plan one move at a time.
 *
 * Pure, like placeJobs: (hosts with their placed jobs) -> ordered moves. The
 * plan is greedy on two measures, in this order:
 *
 *   1. spread: for every node (one release of it), the number of pairs of
 *      its replicas sharing a host. A move from a host with `a` siblings to
 *      one with `b` changes it by b - (a - 1): it is made only when that is
 *      negative, the largest drop first.
 *   2. load: dowding's load score. A replica moves from the most loaded host
 *      to the least loaded one that takes it only if the target, after the
 *      move, is still less loaded than the source was before, and the move
 *      does not put it beside more siblings than it leaves.
 *
 * Every move lowers (pairs, host loads sorted high to low) lexicographically,
 * so the plan ends; it ends when no move helps, so planning again on the
 * result gives no moves. Targets must pass dowding's filters (not draining,
 * tags, capacity). Jobs pinned to a volume (or marked fixed: not running,
 * say) never move, and jobs on draining hosts are left to dispatch.
 */
import type { PlanHost, PlanJob } from './types.js';
import { FILTERS, type HostFilter } from './filters.js';
import { loadScore } from './scorers.js';
import { addJob, memoryOn, nodeKey, toHostState, type HostState } from './host-state.js';

export interface BalanceJob extends PlanJob {
  /** Must not move (its container is not running, say). Volume jobs never move either. */
  fixed?: boolean;
}

export interface BalanceHost extends Omit<PlanHost, 'jobs'> {
  jobs: BalanceJob[];
}

export interface Move {
  job: BalanceJob;
  from: string;
  to: string;
  /** Why: `spread` (fewer siblings share a host) or `load`. */
  reason: 'spread' | 'load';
}

export interface RebalanceOptions {
  filters?: HostFilter[];
  /** At most this many moves (default: no limit but the plan's own end). */
  maxMoves?: number;
}

/** Jobs that may move: neither pinned to a volume nor fixed. */
export const movable = (job: BalanceJob): boolean => job.pinnedTo === undefined && !job.fixed;

/** Sum over nodes and hosts of the pairs of a node's replicas on one host: 0 is perfectly spread. */
export function colocatedPairs(hosts: readonly BalanceHost[]): number {
  let pairs = 0;
  for (const h of hosts) {
    const counts = new Map<string, number>();
    for (const j of h.jobs) counts.set(nodeKey(j), (counts.get(nodeKey(j)) ?? 0) + 1);
    for (const n of counts.values()) pairs += (n * (n - 1)) / 2;
  }
  return pairs;
}

function removeJob(state: HostState, job: PlanJob): void {
  state.used.memory -= memoryOn(job, state);
  state.used.cpu -= job.cpu;
  state.used.containers -= 1;
  const key = nodeKey(job);
  const n = (state.replicas.get(key) ?? 0) - 1;
  if (n > 0) state.replicas.set(key, n);
  else state.replicas.delete(key);
}

/** The load score `state` would have with `job` added. */
function loadWith(state: HostState, job: PlanJob): number {
  addJob(state, job);
  const score = loadScore(state);
  removeJob(state, job);
  return score;
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const byId = (a: PlanJob, b: PlanJob): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

interface Tally {
  state: HostState;
  jobs: BalanceJob[];
}

function accepts(filters: HostFilter[], job: PlanJob, host: HostState): boolean {
  for (const f of filters) if (f(job, host) !== null) return false;
  return true;
}

/** The best spread move: the node whose fullest host can give a replica to its emptiest eligible host, biggest gain first. */
function spreadMove(tallies: Tally[], filters: HostFilter[]): Move | null {
  let best: { move: Move; gain: number; targetLoad: number } | null = null;
  for (const source of tallies) {
    if (source.state.draining) continue;
    const seen = new Set<string>();
    for (const job of source.jobs) {
      const key = nodeKey(job);
      if (!movable(job) || seen.has(key)) continue;
      seen.add(key);
      const a = source.state.replicas.get(key) ?? 0;
      if (a < 2) continue;
      for (const target of tallies) {
        if (target === source) continue;
        const b = target.state.replicas.get(key) ?? 0;
        const gain = a - 1 - b;
        if (gain <= 0 || !accepts(filters, job, target.state)) continue;
        const targetLoad = loadWith(target.state, job);
        if (!best || gain > best.gain || (gain === best.gain && targetLoad < best.targetLoad - 1e-9)) {
          best = { move: { job, from: source.state.name, to: target.state.name, reason: 'spread' }, gain, targetLoad };
        }
      }
    }
  }
  return best?.move ?? null;
}

/** The best load move: from the most loaded host that has a movable job, to the least loaded that takes it and ends lighter. */
function loadMove(tallies: Tally[], filters: HostFilter[]): Move | null {
  const sources = tallies.filter((t) => !t.state.draining).sort((x, y) => loadScore(y.state) - loadScore(x.state) || byName(x.state, y.state));
  for (const source of sources) {
    const sourceLoad = loadScore(source.state);
    let best: { move: Move; load: number } | null = null;
    for (const job of source.jobs) {
      if (!movable(job)) continue;
      const key = nodeKey(job);
      const a = source.state.replicas.get(key) ?? 0;
      for (const target of tallies) {
        if (target === source) continue;
        if ((target.state.replicas.get(key) ?? 0) > a - 1) continue;
        if (!accepts(filters, job, target.state)) continue;
        const load = loadWith(target.state, job);
        if (load >= sourceLoad - 1e-9) continue;
        if (!best || load < best.load - 1e-9) best = { move: { job, from: source.state.name, to: target.state.name, reason: 'load' }, load };
      }
    }
    if (best) return best.move;
  }
  return null;
}

export function planRebalance(hosts: readonly BalanceHost[], options: RebalanceOptions = {}): Move[] {
  const filters = options.filters ?? FILTERS;
  const tallies: Tally[] = [...hosts].sort(byName).map((h) => ({
    state: toHostState({ ...h, jobs: h.jobs }),
    jobs: [...h.jobs].sort(byId),
  }));
  const byHost = new Map(tallies.map((t) => [t.state.name, t]));
  const moves: Move[] = [];
  const limit = options.maxMoves ?? Infinity;
  while (moves.length < limit) {
    const move = spreadMove(tallies, filters) ?? loadMove(tallies, filters);
    if (!move) break;
    const from = byHost.get(move.from)!;
    const to = byHost.get(move.to)!;
    from.jobs.splice(from.jobs.indexOf(move.job), 1);
    removeJob(from.state, move.job);
    to.jobs.push(move.job);
    to.jobs.sort(byId);
    addJob(to.state, move.job);
    moves.push(move);
  }
  return moves;
}

/** The hosts as they are after `moves`: what the cluster looks like once a plan is applied. */
export function applyMoves(hosts: readonly BalanceHost[], moves: readonly Move[]): BalanceHost[] {
  const out = hosts.map((h) => ({ ...h, jobs: [...h.jobs] }));
  const byName = new Map(out.map((h) => [h.name, h]));
  for (const m of moves) {
    const from = byName.get(m.from)!;
    from.jobs = from.jobs.filter((j) => j.id !== m.job.id);
    byName.get(m.to)!.jobs.push(m.job);
  }
  return out;
}

/**
 * dowding: the pure placement planner.
 *
 * Given a cluster snapshot and the jobs waiting for a host, returns where each
 * goes, or for each job that fits nowhere the reasons grouped by host count.
 * No etcd, no Docker, no clock, no randomness: the same input gives the same
 * plan, which is what lets dispatch re-plan safely after a conflict.
 *
 * Hosts are kept sorted by (load, name). For each job the scan walks them in
 * that order and stops once a host's load alone is no better than the best
 * total score found: job penalties are never negative, so no later host can
 * win. In a healthy cluster that is a handful of hosts per job, not all.
 */
import type { Plan, PlanHost, PlanJob, Snapshot } from './types.js';
import { FILTERS, type HostFilter } from './filters.js';
import { SCORERS, loadScore, type HostScorer } from './scorers.js';
import { addJob, nodeKey, toHostState, type HostState } from './host-state.js';

export interface PlannerOptions {
  filters?: HostFilter[];
  /** Job-dependent penalties, each >= 0, added to the host's load score. */
  scorers?: HostScorer[];
}

/** Groups per-host rejections into "N hosts: reason" lines, most common first. */
export function summariseReasons(rejections: string[], hostCount: number): string[] {
  if (hostCount === 0) return ['no hosts are up'];
  const counts = new Map<string, number>();
  for (const r of rejections) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, n]) => `${n} host${n === 1 ? '' : 's'}: ${reason}`);
}

interface Ranked {
  host: HostState;
  load: number;
}

const byLoadThenName = (a: Ranked, b: Ranked): number => a.load - b.load || (a.host.name < b.host.name ? -1 : a.host.name > b.host.name ? 1 : 0);

/** Moves ranked[i] to its place after its load grew (it can only move right). */
function reposition(ranked: Ranked[], i: number): void {
  const item = ranked[i]!;
  let j = i;
  while (j + 1 < ranked.length && byLoadThenName(ranked[j + 1]!, item) < 0) {
    ranked[j] = ranked[j + 1]!;
    j++;
  }
  ranked[j] = item;
}

function rejection(job: PlanJob, host: HostState, filters: HostFilter[]): string | null {
  for (const filter of filters) {
    const reason = filter(job, host);
    if (reason !== null) return reason;
  }
  return null;
}

/** dowding's verdict on one host for one job: the first filter that refuses it, else its score (lower is better). */
export interface HostExplanation {
  host: string;
  /** The first filter's reason for refusing the job; null when it fits. */
  reason: string | null;
  /** The score the planner ranks by (load plus the job's penalties); null when it does not fit. */
  score: number | null;
  /** Replicas of the job's node (its release) already there. */
  replicas: number;
}

/** Judges one host for one job exactly as placeJobs does, for tools that show why (GET /v1/allocate). */
export function explainHost(job: PlanJob, host: PlanHost, options: PlannerOptions = {}): HostExplanation {
  const state = toHostState(host);
  const reason = rejection(job, state, options.filters ?? FILTERS);
  const score = reason === null ? (options.scorers ?? SCORERS).reduce((sum, s) => sum + s(job, state), loadScore(state)) : null;
  return { host: host.name, reason, score, replicas: state.replicas.get(nodeKey(job)) ?? 0 };
}

export function placeJobs(snapshot: Snapshot, jobs: readonly PlanJob[], options: PlannerOptions = {}): Plan {
  const filters = options.filters ?? FILTERS;
  const scorers = options.scorers ?? SCORERS;
  const ranked: Ranked[] = snapshot.hosts.map((h) => {
    const host = toHostState(h);
    return { host, load: loadScore(host) };
  });
  ranked.sort(byLoadThenName);
  const plan: Plan = { placements: [], unplaced: [] };
  const ordered = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  for (const job of ordered) {
    let best = -1;
    let bestScore = Infinity;
    for (let i = 0; i < ranked.length; i++) {
      const { host, load } = ranked[i]!;
      if (load >= bestScore) break;
      if (rejection(job, host, filters) !== null) continue;
      let score = load;
      for (const scorer of scorers) score += scorer(job, host);
      if (score < bestScore) {
        bestScore = score;
        best = i;
      }
    }
    if (best >= 0) {
      const chosen = ranked[best]!;
      addJob(chosen.host, job);
      chosen.load = loadScore(chosen.host);
      reposition(ranked, best);
      plan.placements.push({ job, host: chosen.host.name });
      continue;
    }
    // Nothing fit: every host was looked at, so every rejection is known.
    const rejections: string[] = [];
    for (const { host } of ranked) {
      const reason = rejection(job, host, filters);
      if (reason !== null) rejections.push(reason);
    }
    plan.unplaced.push({ job, reasons: summariseReasons(rejections, ranked.length) });
  }
  return plan;
}

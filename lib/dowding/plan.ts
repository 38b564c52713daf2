/**
 * dowding: the pure placement planner.
 *
 * Given a cluster snapshot and the jobs waiting for a host, returns where each
 * goes, or for each job that fits nowhere the reasons grouped by host count.
 * No etcd, no Docker, no clock, no randomness: the same input gives the same
 * plan, which is what lets dispatch re-plan safely after a conflict.
 */
import type { Plan, PlanJob, Snapshot, Unplaced } from './types.js';
import { FILTERS, type HostFilter } from './filters.js';
import { SCORERS, type HostScorer } from './scorers.js';
import { addJob, toHostState, type HostState } from './host-state.js';

export interface PlannerOptions {
  filters?: HostFilter[];
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

function compareIds(a: PlanJob, b: PlanJob): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function placeJobs(snapshot: Snapshot, jobs: readonly PlanJob[], options: PlannerOptions = {}): Plan {
  const filters = options.filters ?? FILTERS;
  const scorers = options.scorers ?? SCORERS;
  const hosts: HostState[] = snapshot.hosts.map(toHostState).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const plan: Plan = { placements: [], unplaced: [] };
  const ordered = [...jobs].sort(compareIds);

  for (const job of ordered) {
    let best: HostState | undefined;
    let bestScore = Infinity;
    const rejections: string[] = [];
    for (const host of hosts) {
      let reason: string | null = null;
      for (const filter of filters) {
        reason = filter(job, host);
        if (reason !== null) break;
      }
      if (reason !== null) {
        rejections.push(reason);
        continue;
      }
      let score = 0;
      for (const scorer of scorers) score += scorer(job, host);
      // Hosts are sorted by name, so `<` keeps the first on ties: deterministic.
      if (score < bestScore) {
        bestScore = score;
        best = host;
      }
    }
    if (best) {
      addJob(best, job);
      plan.placements.push({ job, host: best.name });
    } else {
      const unplaced: Unplaced = { job, reasons: summariseReasons(rejections, hosts.length) };
      plan.unplaced.push(unplaced);
    }
  }
  return plan;
}

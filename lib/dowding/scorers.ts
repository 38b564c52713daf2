/**
 * Scorers rank the hosts that passed the filters; lower is better. Each is a
 * small function so the weights stay visible: spreading replicas of one node
 * dominates, then preferred tags, then the least loaded host.
 */
import type { PlanJob } from './types.js';
import { nodeKey, type HostState } from './host-state.js';

export type HostScorer = (job: PlanJob, host: HostState) => number;

/** One replica of a node per host while hosts allow: each sibling already there costs a lot. */
export const spread: HostScorer = (job, host) => (host.replicas.get(nodeKey(job)) ?? 0) * 1000;

/** Preferred tags only nudge: missing all of them costs half of one sibling replica, whatever their number. */
export const preferred: HostScorer = (job, host) => {
  if (job.prefer.length === 0) return 0;
  let missing = 0;
  for (const tag of job.prefer) if (!host.tags.has(tag)) missing++;
  return (missing / job.prefer.length) * 500;
};

/** Least loaded first: the fullest dimension of the host, 0..1 each, scaled. */
export const leastLoaded: HostScorer = (_job, host) => {
  const ratio = (used: number, cap: number): number => (cap > 0 ? used / cap : 0);
  const load = Math.max(
    ratio(host.used.memory, host.capacity.memory),
    ratio(host.used.cpu, host.capacity.cpu),
    ratio(host.used.containers, host.capacity.containers),
  );
  // Break ties between empty-capacity hosts by raw container count.
  return load * 10 + host.used.containers * 0.001;
};

export const SCORERS: HostScorer[] = [spread, preferred, leastLoaded];

/**
 * Scoring: lower is better. A host's score for a job is its load (the same
 * for every job) plus the job's own penalties, which are never negative.
 * That split is what makes planning fast: hosts are kept ordered by load,
 * and the scan for a job stops as soon as the next host's load alone cannot
 * beat the best score found.
 *
 * Weights: spreading replicas of one node dominates (1000 per sibling), then
 * preferred tags (at most 500), then load (at most ~10).
 */
import type { PlanJob } from './types.js';
import { nodeKey, type HostState } from './host-state.js';

/** A job-dependent penalty; must never be negative. */
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

/**
 * Least loaded first: the fullest dimension of the host (0..1 each) scaled
 * to 0..10, plus a tiny term per container so that hosts with no declared
 * capacity still fill evenly.
 */
export function loadScore(host: HostState): number {
  const ratio = (used: number, cap: number): number => (cap > 0 ? used / cap : 0);
  const load = Math.max(
    ratio(host.used.memory, host.capacity.memory),
    ratio(host.used.cpu, host.capacity.cpu),
    ratio(host.used.containers, host.capacity.containers),
  );
  return load * 10 + host.used.containers * 0.001;
}

export const SCORERS: HostScorer[] = [spread, preferred];

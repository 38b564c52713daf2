/**
 * A host's running tally while a plan is made: what it has, what it would
 * have with the placements made so far. Mutated only by dowding itself.
 */
import type { PlanHost, PlanJob, Resources } from './types.js';

export interface HostState {
  name: string;
  tags: Set<string>;
  capacity: Resources;
  draining: boolean;
  /** Memory a job without `memory:` counts on this host (its default limit). */
  defaultMemory: number;
  used: Resources;
  /** Replicas per `<stack>/<tag>/<node>` on this host, for spreading. */
  replicas: Map<string, number>;
}

/**
 * What replicas spread by: one release of one node (the job id without its
 * instance number). Replicas of an older release are about to be retired,
 * so they must not push the new release's replicas onto the same host.
 */
export const nodeKey = (job: Pick<PlanJob, 'id'>): string => job.id.slice(0, job.id.lastIndexOf('/'));

export function toHostState(host: PlanHost): HostState {
  const state: HostState = {
    name: host.name,
    tags: new Set(host.tags),
    capacity: host.capacity,
    draining: host.draining,
    defaultMemory: host.defaultMemory ?? 0,
    used: { memory: 0, cpu: 0, containers: 0 },
    replicas: new Map(),
  };
  for (const job of host.jobs) addJob(state, job);
  return state;
}

/** The memory a job takes on a host: what it asked for, else the host's default limit. */
export const memoryOn = (job: Pick<PlanJob, 'memory'>, host: Pick<HostState, 'defaultMemory'>): number =>
  job.memory > 0 ? job.memory : host.defaultMemory;

export function addJob(state: HostState, job: PlanJob): void {
  state.used.memory += memoryOn(job, state);
  state.used.cpu += job.cpu;
  state.used.containers += 1;
  const key = nodeKey(job);
  state.replicas.set(key, (state.replicas.get(key) ?? 0) + 1);
}

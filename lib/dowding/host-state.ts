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
  used: Resources;
  /** Replicas per `<stack>/<node>` on this host, for spreading. */
  replicas: Map<string, number>;
}

export const nodeKey = (job: Pick<PlanJob, 'stack' | 'node'>): string => `${job.stack}/${job.node}`;

export function toHostState(host: PlanHost): HostState {
  const state: HostState = {
    name: host.name,
    tags: new Set(host.tags),
    capacity: host.capacity,
    draining: host.draining,
    used: { memory: 0, cpu: 0, containers: 0 },
    replicas: new Map(),
  };
  for (const job of host.jobs) addJob(state, job);
  return state;
}

export function addJob(state: HostState, job: PlanJob): void {
  state.used.memory += job.memory;
  state.used.cpu += job.cpu;
  state.used.containers += 1;
  const key = nodeKey(job);
  state.replicas.set(key, (state.replicas.get(key) ?? 0) + 1);
}

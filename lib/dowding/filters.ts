/**
 * Hard filters: each says why a host cannot take a job, or null if it can.
 * Kept as small separate functions so every rejection has a reason a user
 * can read in `viking ps` and `/v1/allocate`.
 */
import type { PlanJob } from './types.js';
import { memoryOn, type HostState } from './host-state.js';

export type HostFilter = (job: PlanJob, host: HostState) => string | null;

export const notDraining: HostFilter = (_job, host) => (host.draining ? 'draining' : null);

export const pinned: HostFilter = (job, host) =>
  job.pinnedTo !== undefined && job.pinnedTo !== host.name ? `volume pinned to host ${job.pinnedTo}` : null;

export const hasTags: HostFilter = (job, host) => {
  for (const tag of job.tags) if (!host.tags.has(tag)) return `missing tag ${tag}`;
  return null;
};

export const containerRoom: HostFilter = (_job, host) =>
  host.capacity.containers > 0 && host.used.containers + 1 > host.capacity.containers ? 'no container slots left' : null;

/** A job without `memory:` counts the host's default memory limit, so "no memory asked" never means "free". */
export const memoryRoom: HostFilter = (job, host) => {
  const need = memoryOn(job, host);
  return need > 0 && host.capacity.memory > 0 && host.used.memory + need > host.capacity.memory ? 'not enough memory' : null;
};

export const cpuRoom: HostFilter = (job, host) =>
  job.cpu > 0 && host.capacity.cpu > 0 && host.used.cpu + job.cpu > host.capacity.cpu + 1e-9 ? 'not enough cpu' : null;

/** In order: the first failing filter is the reason reported for that host. */
export const FILTERS: HostFilter[] = [notDraining, pinned, hasTags, containerRoom, memoryRoom, cpuRoom];

/**
 * The slave's decision, as a pure function: given the jobs `/deploy/<me>`
 * asks for and the containers Docker really runs for this host, what to do.
 * The loop in slave.ts only executes these actions, so the rules are tested
 * here with plain data.
 */
import { jobPath } from '../store/keys.js';
import type { JobId, JobSpec } from '../store/records.js';
import type { OwnedContainer } from './containers.js';

export interface DesiredJob {
  job: JobId;
  /** undefined when /proc no longer has the spec: keep what runs, start nothing. */
  spec: JobSpec | undefined;
  hash: string;
}

export interface JobMemory {
  /** Failures in a row: what the backoff doubles on. A long healthy run forgets them. */
  failures: number;
  /** Every failure since the job came to this host (Kubernetes' RESTARTS); never reset. */
  restarts: number;
  /** Epoch ms before which no new start is tried. */
  retryAt: number;
  /** Epoch ms the current container passed its health check, if it runs. */
  healthySince?: number;
}

export type SlaveAction =
  | { type: 'start'; spec: JobSpec }
  | { type: 'publish'; spec: JobSpec; container: OwnedContainer }
  | { type: 'crashed'; spec: JobSpec; container: OwnedContainer }
  | { type: 'remove'; container: OwnedContainer; why: 'unwanted' | 'outdated' };

export interface SlaveView {
  desired: DesiredJob[];
  actual: OwnedContainer[];
  /** Containers whose ports are published (they passed their health check). */
  published: ReadonlySet<string>;
  /** Jobs with an action in flight: left alone this pass. */
  busy: ReadonlySet<string>;
  memory: ReadonlyMap<string, JobMemory>;
  now: number;
}

export function planSlave(view: SlaveView): SlaveAction[] {
  const actions: SlaveAction[] = [];
  const byJob = new Map<string, OwnedContainer[]>();
  for (const c of view.actual) {
    const path = jobPath(c.job);
    const list = byJob.get(path) ?? [];
    list.push(c);
    byJob.set(path, list);
  }
  const desiredPaths = new Set<string>();
  for (const d of view.desired) {
    const path = jobPath(d.job);
    desiredPaths.add(path);
    if (view.busy.has(path) || d.spec === undefined) continue;
    const containers = byJob.get(path) ?? [];
    const current = containers.find((c) => c.specHash === d.hash);
    const outdated = containers.filter((c) => c !== current);
    if (current) {
      if (!current.running) actions.push({ type: 'crashed', spec: d.spec, container: current });
      else if (!view.published.has(current.id)) actions.push({ type: 'publish', spec: d.spec, container: current });
      // Start new, check health, switch, then stop old: outdated ones go only once the new one serves.
      else for (const c of outdated) actions.push({ type: 'remove', container: c, why: 'outdated' });
      continue;
    }
    // No current container: outdated ones keep serving until the new one is healthy.
    if (outdated.every((c) => !c.running)) for (const c of outdated) actions.push({ type: 'remove', container: c, why: 'outdated' });
    // A crash loop is never given up: the job is tried again at the latest after the longest backoff.
    const mem = view.memory.get(path);
    if (mem && view.now < mem.retryAt) continue;
    actions.push({ type: 'start', spec: d.spec });
  }
  for (const [path, containers] of byJob) {
    if (desiredPaths.has(path) || view.busy.has(path)) continue;
    for (const c of containers) actions.push({ type: 'remove', container: c, why: 'unwanted' });
  }
  return actions;
}

export const MAX_FAILURES = 5;

export interface BackoffPolicy {
  /** Delay after the first failure; doubles after each one. */
  baseMs: number;
  /** The longest delay: a job that keeps failing is tried this often, forever. */
  maxMs: number;
  /** Failures in a row after which the job shows `crash-loop` instead of `backoff` (it is still retried). */
  maxFailures: number;
  /** A container healthy this long forgets its earlier failures: the next crash waits baseMs again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 30_000, maxFailures: MAX_FAILURES, resetAfterMs: 10 * 60_000 };

/**
 * Exponential backoff as Kubernetes' CrashLoopBackOff: 1 s, 2 s, 4 s … capped
 * at maxMs, and retried at that pace for as long as the job is wanted.
 */
export function afterFailure(prev: JobMemory | undefined, now: number, policy: BackoffPolicy = DEFAULT_BACKOFF): JobMemory {
  const forgiven = prev?.healthySince !== undefined && now - prev.healthySince >= policy.resetAfterMs;
  const failures = (prev && !forgiven ? prev.failures : 0) + 1;
  return {
    failures,
    restarts: (prev?.restarts ?? 0) + 1,
    retryAt: now + Math.min(policy.baseMs * 2 ** Math.min(failures - 1, 30), policy.maxMs),
  };
}

/** The state a failed job reports: `backoff` for the first failures in a row, then `crash-loop`. */
export function failedState(mem: JobMemory, policy: BackoffPolicy = DEFAULT_BACKOFF): 'backoff' | 'crash-loop' {
  return mem.failures >= policy.maxFailures ? 'crash-loop' : 'backoff';
}

/**
 * What a host that starts again remembers of a job from the state its last
 * run wrote in `/deploy/<me>/<job>`: the backoff survives a restart of
 * `viking host`, so a crash loop does not begin again at 1 s.
 */
export function memoryFromState(state: { failures?: number; restarts?: number; retryAt?: string; state?: string } | undefined): JobMemory | undefined {
  if (!state || typeof state !== 'object') return undefined;
  const failures = Number.isInteger(state.failures) && state.failures! > 0 ? state.failures! : 0;
  const restarts = Number.isInteger(state.restarts) && state.restarts! > 0 ? state.restarts! : failures;
  if (failures === 0 && restarts === 0) return undefined;
  const retryAt = state.retryAt ? Date.parse(state.retryAt) : NaN;
  // A job that was running when the host stopped keeps its count but owes no wait.
  const waiting = state.state === 'backoff' || state.state === 'crash-loop';
  return { failures, restarts, retryAt: waiting && Number.isFinite(retryAt) ? retryAt : 0 };
}

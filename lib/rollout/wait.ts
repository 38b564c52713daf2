/**
 * Waiting for a release to come up: every job placed, started and healthy,
 * or the first one that fails, with its reason and last log lines. Reports
 * each change of a job's state once, so `viking push` shows progress live.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { deployKey, jobPath, portsNodePrefix } from '../store/keys.js';
import { readPlacementKeys, type PlacementRead } from '../store/placements.js';
import type { DeployState, JobId, JobSpec, PortEndpoint } from '../store/records.js';
import { placeJobs } from '../dowding/index.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';

/** How long a job may wait for a host before the wait asks dowding why, and how often again. */
const EXPLAIN_AFTER_MS = 1500;

/**
 * Why jobs without a host have none: dowding's own reasons ("2 hosts: not
 * enough memory"), planned on the cluster as it is now. Pure planning on one
 * snapshot, nothing is written; dispatch decides for real.
 */
export async function unplacedReasons(client: Etcd3, jobs: JobSpec[]): Promise<Map<string, string[]>> {
  const snap = await readSnapshot(client);
  const plan = placeJobs({ hosts: toPlanHosts(snap) }, jobs.map((j) => toPlanJob(j, snap.pins)));
  return new Map(plan.unplaced.map((u) => [u.job.id, u.reasons]));
}

export interface WaitOptions {
  timeoutMs: number;
  onChange?: (job: JobSpec, what: string) => void;
  pollMs?: number;
}

export async function waitForJobs(client: Etcd3, jobs: JobSpec[], o: WaitOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const seen = new Map<string, string>();
  const report = (job: JobSpec, what: string): void => {
    const path = jobPath(job);
    if (seen.get(path) === what) return;
    seen.set(path, what);
    o.onChange?.(job, what);
  };
  const started = Date.now();
  let explainedAt = 0;
  let reasons = new Map<string, string[]>();
  for (;;) {
    let running = 0;
    const waiting: string[] = [];
    const hostless: JobSpec[] = [];
    const where = await placementsOf(client, jobs);
    for (const job of jobs) {
      const placement = where.placed.get(jobPath(job));
      const host = placement?.host;
      if (!host) {
        const why = reasons.get(jobPath(job));
        report(job, why ? `no host fits: ${why.join('; ')}` : 'waiting for a host');
        waiting.push(`${job.node}/${job.instance}: ${why ? `no host fits (${why.join('; ')})` : 'no host yet'}`);
        hostless.push(job);
        continue;
      }
      const state = await readJSON<DeployState>(client, deployKey(host, job));
      if (!state) {
        report(job, `placed on ${host}`);
        waiting.push(`${job.node}/${job.instance}: placed on ${host}, not started`);
        continue;
      }
      if (state.state === 'running') {
        report(job, `running on ${host}`);
        running++;
        continue;
      }
      if (state.state === 'failed' || state.state === 'backoff' || state.state === 'crash-loop') {
        report(job, `${state.state} on ${host}: ${state.reason ?? ''}`);
        throw new VikingError(
          'VIKING_E_UNHEALTHY',
          `${job.node}/${job.instance} on ${host}: ${state.reason ?? 'failed'}`,
          { job: jobPath(job), host, reason: state.reason, logs: state.logs ?? [] },
        );
      }
      report(job, `${state.state} on ${host}`);
      waiting.push(`${job.node}/${job.instance}: ${state.state} on ${host}`);
    }
    if (running === jobs.length) return;
    if (hostless.length > 0 && Date.now() - started > EXPLAIN_AFTER_MS && Date.now() - explainedAt > EXPLAIN_AFTER_MS) {
      explainedAt = Date.now();
      reasons = await unplacedReasons(client, hostless).catch(() => reasons);
    }
    if (Date.now() > deadline) {
      throw new VikingError(
        'VIKING_E_DEPLOY_TIMEOUT',
        `the release was not healthy after ${Math.round(o.timeoutMs / 1000)}s: ${waiting.slice(0, 5).join('; ')}`,
        { waiting },
      );
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  }
}

/**
 * Where these jobs' stack is placed (all stacks when they span several):
 * one keys-only range read. A poll reads the state of a placed job with one
 * get, as before /run went; reading every slave report of the cluster five
 * times a second would cost a large cluster more than that.
 */
function placementsOf(client: Etcd3, jobs: JobId[]): Promise<PlacementRead> {
  const stacks = new Set(jobs.map((j) => j.stack));
  return readPlacementKeys(client, stacks.size === 1 ? { stack: [...stacks][0]! } : {});
}

export interface GoneOptions {
  timeoutMs: number;
  onGone?: (job: JobId) => void;
  pollMs?: number;
}

/**
 * Waiting for withdrawn jobs to be gone: no endpoint left in /ports (the
 * routers stopped sending to them) and no placement (dispatch released them,
 * so their slave stops the container).
 */
export async function waitForJobsGone(client: Etcd3, jobs: JobId[], o: GoneOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const pending = new Map(jobs.map((j) => [jobPath(j), j]));
  for (;;) {
    const where = await placementsOf(client, [...pending.values()]);
    for (const [path, job] of [...pending]) {
      const placed = where.placed.has(path);
      const ports = await readPrefix<PortEndpoint>(client, portsNodePrefix(job.stack, job.node));
      const serving = ports.entries.some((e) => e.value && e.value.tag === job.tag && e.value.instance === job.instance);
      if (!placed && !serving) {
        pending.delete(path);
        o.onGone?.(job);
      }
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      throw new VikingError(
        'VIKING_E_DEPLOY_TIMEOUT',
        `${[...pending.keys()].join(', ')} still placed or serving after ${Math.round(o.timeoutMs / 1000)}s; they are being stopped`,
        { waiting: [...pending.keys()] },
      );
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  }
}

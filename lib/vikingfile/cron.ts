/**
 * `schedule:` on a container node makes it a cron job: the container runs to
 * completion once per tick, somewhere in the cluster (lib/cron). Such a node
 * is not routed and has no replicas, so the keys that only make sense for a
 * long-running, routed process are refused on it, each at its own line:
 * domains, expose, health, scale, service and volume (a volume would pin the
 * job to one host; a cron job that needs data talks to a service that has it).
 * `timezone:` and `concurrency:` are refused without a `schedule:`.
 */
import { scheduleProblem, type CronSchedule } from '../cron/schedule.js';
import { show } from './describe.js';
import { asString } from './fields.js';
import type { Pos, ProblemList } from './problems.js';
import type { YEntry } from './yaml-tree.js';

export const CRON_KEYS = ['schedule', 'timezone', 'concurrency'] as const;
/** Keys a cron node refuses, with why. */
const NOT_ON_CRON: Record<string, string> = {
  domains: 'a cron job is not routed',
  expose: 'a cron job is not routed and has no health check',
  health: 'a cron job runs to completion; its exit code says how it went',
  scale: 'a cron job runs once per tick across the cluster',
  service: 'a cron job runs to completion on every tick',
  volume: 'a volume would pin the job to one host; keep the data in a service the job talks to',
};

/** Reads the cron keys of a container node; undefined when it has no schedule (or a bad one). */
export function readCron(name: string, fields: Map<string, YEntry>, problems: ProblemList): CronSchedule | undefined {
  const scheduleEntry = fields.get('schedule');
  if (scheduleEntry === undefined) {
    for (const key of ['timezone', 'concurrency'] as const) {
      const e = fields.get(key);
      if (e) problems.add('bad-value', e.keyPos, `${key}: only applies to a cron job; add schedule: (e.g. '*/5 * * * *') to node '${show(name)}' or remove ${key}:`);
    }
    return undefined;
  }
  for (const [key, entry] of fields) {
    const why = Object.hasOwn(NOT_ON_CRON, key) ? NOT_ON_CRON[key] : undefined;
    if (why !== undefined) problems.add('unknown-key', entry.keyPos, `key '${key}' is not allowed on a cron node (one with schedule:): ${why}`);
  }
  const schedule = asString(scheduleEntry.value, 'schedule', problems);
  let timezone: string | undefined;
  const tzEntry = fields.get('timezone');
  if (tzEntry) timezone = asString(tzEntry.value, 'timezone', problems);
  let concurrency: CronSchedule['concurrency'] = 'forbid';
  const cEntry = fields.get('concurrency');
  if (cEntry) {
    const v = asString(cEntry.value, 'concurrency', problems);
    if (v === 'forbid' || v === 'allow') concurrency = v;
    else if (v !== undefined) problems.add('bad-value', cEntry.value, `concurrency must be 'forbid' (the default: skip a tick while the last run goes on) or 'allow', got '${show(v)}'`);
  }
  if (schedule === undefined || (tzEntry && timezone === undefined)) return undefined;
  const problem = scheduleProblem(schedule, timezone);
  if (problem !== undefined) {
    const at: Pos = problem.startsWith('timezone') && tzEntry ? tzEntry.value : scheduleEntry.value;
    problems.add('bad-value', at, problem);
    return undefined;
  }
  return { schedule: schedule.trim(), ...(timezone !== undefined ? { timezone } : {}), concurrency };
}

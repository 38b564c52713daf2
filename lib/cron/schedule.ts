/**
 * Cron ticks as plain arithmetic: which tick of a schedule is due now, and
 * what the leader does with it. No etcd, no Docker, no timers, so the rules
 * that make a tick run exactly once are unit-tested with plain data.
 *
 * A tick is named by its scheduled instant (epoch ms). The leader that wakes
 * at or after a tick claims it in etcd with a create-only transaction keyed
 * by stack/node/tick (lib/cron/scheduler.ts); a second leader, or the same
 * one twice, finds the key there and does nothing. A leader that takes over
 * after the old one died just before a tick still runs it late, as long as
 * the tick is younger than CRON_CATCH_UP_MS; older missed ticks are skipped,
 * never run in a burst.
 */
import { Cron } from 'croner';

export type CronConcurrency = 'forbid' | 'allow';

export interface CronSchedule {
  /** Five fields (minute hour day month weekday) or six with seconds first. */
  schedule: string;
  /** IANA zone the fields are read in (default UTC). */
  timezone?: string;
  concurrency: CronConcurrency;
}

/** A missed tick is still run this long after its time (a leader failover takes a few seconds). */
export const CRON_CATCH_UP_MS = 60_000;

/** Why a schedule cannot be used, or undefined when it can. */
export function scheduleProblem(schedule: string, timezone?: string): string | undefined {
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: timezone });
    } catch {
      return `timezone '${timezone}' is not an IANA time zone name, e.g. Europe/Oslo or UTC`;
    }
  }
  const parts = schedule.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    return `schedule '${schedule}' has ${parts.length} fields; give five (minute hour day month weekday, e.g. '*/5 * * * *') or six with seconds first`;
  }
  try {
    const c = cronOf({ schedule, ...(timezone !== undefined ? { timezone } : {}), concurrency: 'forbid' });
    if (c.nextRun(new Date(0)) === null && c.nextRun() === null) return `schedule '${schedule}' never fires`;
  } catch (err) {
    return `schedule '${schedule}' is not a cron expression: ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
  return undefined;
}

function cronOf(s: CronSchedule): Cron {
  return new Cron(s.schedule, { paused: true, mode: '5-or-6-parts', timezone: s.timezone ?? 'UTC' });
}

/** The first tick strictly after `after` (epoch ms), or undefined if the schedule never fires again. */
export function nextTick(s: CronSchedule, after: number): number | undefined {
  return cronOf(s).nextRun(new Date(after))?.getTime();
}

/**
 * The tick due at `now`: the latest one at or before `now`, if it is younger
 * than `catchUpMs` and later than `notBefore` (the release that declared the
 * node: a node pushed at 12:04 does not run the 12:00 tick).
 */
export function dueTick(s: CronSchedule, now: number, notBefore: number, catchUpMs = CRON_CATCH_UP_MS): number | undefined {
  const from = Math.max(notBefore, now - catchUpMs);
  // Walk forward from the window's start: croner answers "next after", and the window holds few ticks.
  let t = nextTick(s, from - 1);
  let due: number | undefined;
  for (let i = 0; t !== undefined && t <= now && i < 10_000; i++) {
    due = t;
    t = nextTick(s, t);
  }
  return due !== undefined && due >= from ? due : undefined;
}

/** What the leader writes for a due tick it claims, given the runs of the node still unfinished. */
export type TickDecision = { action: 'run' } | { action: 'skip'; reason: string };

export function decideTick(concurrency: CronConcurrency, unfinished: ReadonlyArray<{ tick: number }>): TickDecision {
  if (concurrency === 'allow' || unfinished.length === 0) return { action: 'run' };
  const since = Math.min(...unfinished.map((u) => u.tick));
  return { action: 'skip', reason: `concurrency: forbid and the run of ${new Date(since).toISOString()} is still going` };
}

/** Keys sort by tick as text: ticks are zero-padded to 15 digits. */
export function tickSegment(tick: number): string {
  return String(tick).padStart(15, '0');
}

export function parseTickSegment(seg: string): number | undefined {
  if (!/^\d{15}$/.test(seg)) return undefined;
  const n = Number(seg);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Which history entries to delete: all but the newest `keep` finished ones
 * per node, never one younger than the catch-up window (its key is the claim
 * that stops a second leader from running the tick again).
 */
export function historyToPrune<T extends { tick: number; finished: boolean }>(runs: readonly T[], now: number, keep: number, catchUpMs = CRON_CATCH_UP_MS): T[] {
  const finished = runs.filter((r) => r.finished).sort((a, b) => b.tick - a.tick);
  return finished.slice(keep).filter((r) => now - r.tick > catchUpMs * 2);
}

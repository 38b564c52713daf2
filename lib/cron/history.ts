/**
 * What `viking cron STACK`, `viking ps` and /metrics show of cron: each cron
 * node of the live release with its schedule, its next tick and its kept
 * runs, newest first.
 */
import type { Etcd3 } from 'etcd3';
import { readJSON, readPrefix } from '../store/client.js';
import { cronRunsPrefix, cronRunsStackPrefix, parseCronPath, stackKey } from '../store/keys.js';
import type { CronRunRecord, StackRecord } from '../store/records.js';
import { cronNodesOf } from './scheduler.js';
import { nextTick, type CronSchedule } from './schedule.js';

export interface CronNodeView extends CronSchedule {
  stack: string;
  node: string;
  release: string;
  next: string | null;
  runs: CronRunRecord[];
}

/** Runs by stack/node, newest first. */
async function runsBy(client: Etcd3, prefix: string): Promise<Map<string, CronRunRecord[]>> {
  const read = await readPrefix<CronRunRecord>(client, prefix);
  const out = new Map<string, CronRunRecord[]>();
  for (const e of read.entries) {
    const p = parseCronPath(e.key.slice(cronRunsPrefix.length));
    if (!p || !e.value) continue;
    const k = `${p.stack}/${p.node}`;
    const list = out.get(k) ?? [];
    list.push(e.value);
    out.set(k, list);
  }
  for (const list of out.values()) list.sort((a, b) => b.tick.localeCompare(a.tick));
  return out;
}

export async function cronView(client: Etcd3, stack: string, now = Date.now()): Promise<CronNodeView[]> {
  const record = await readJSON<StackRecord>(client, stackKey(stack));
  if (!record) return [];
  const runs = await runsBy(client, cronRunsStackPrefix(stack));
  return cronNodesOf([record]).map((n) => {
    const c = n.template.cron!;
    const next = nextTick(c, now);
    return {
      stack,
      node: n.node,
      release: n.tag,
      schedule: c.schedule,
      ...(c.timezone !== undefined ? { timezone: c.timezone } : {}),
      concurrency: c.concurrency,
      next: next === undefined ? null : new Date(next).toISOString(),
      runs: runs.get(`${stack}/${n.node}`) ?? [],
    };
  });
}

/** Runs that say how the job does: finished, or could not run. A skipped tick (forbid) says nothing new. */
export const RAN_STATES: ReadonlySet<CronRunRecord['state']> = new Set(['succeeded', 'failed', 'unplaced', 'lost']);
export const FAILED_STATES: ReadonlySet<CronRunRecord['state']> = new Set(['failed', 'unplaced', 'lost']);

/** Per cron node in the cluster: runs kept by state, and the last finished run. For /metrics. */
export async function cronTotals(client: Etcd3): Promise<Array<{ stack: string; node: string; byState: Record<string, number>; last?: CronRunRecord }>> {
  const runs = await runsBy(client, cronRunsPrefix);
  return [...runs].map(([k, list]) => {
    const [stack, node] = k.split('/') as [string, string];
    const byState: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const r of list) byState[r.state] = (byState[r.state] ?? 0) + 1;
    const last = list.find((r) => RAN_STATES.has(r.state));
    return { stack, node, byState, ...(last ? { last } : {}) };
  });
}

/** `viking ps` rows for cron nodes: state `cron-<state of the last run that ran>` (`cron-idle` before the first), a failure's reason and output. */
export async function cronPsRows(client: Etcd3, stacks: StackRecord[]): Promise<Array<{
  stack: string; tag: string; node: string; instance: number; host: string | null; state: string; current: boolean;
  container: string | null; endpoints: string[]; reason: string | null; logs: string[]; image: string; restarts: number; nextTry: string | null;
}>> {
  const nodes = cronNodesOf(stacks);
  if (nodes.length === 0) return [];
  const runs = await runsBy(client, cronRunsPrefix);
  return nodes.map((n) => {
    const list = runs.get(`${n.stack}/${n.node}`) ?? [];
    // The last run that finished says how the job does; one in flight does not hide a failure.
    const last = list.find((r) => RAN_STATES.has(r.state)) ?? list[0];
    const failures = list.filter((r) => FAILED_STATES.has(r.state)).length;
    const next = nextTick(n.template.cron!, Date.now());
    const failed = last !== undefined && FAILED_STATES.has(last.state);
    return {
      stack: n.stack,
      tag: n.tag,
      node: n.node,
      instance: 0,
      host: last?.host ?? null,
      state: last ? `cron-${last.state}` : 'cron-idle',
      current: true,
      container: last?.container?.slice(0, 12) ?? null,
      endpoints: [],
      reason: failed
        ? `tick ${last.tick}: ${last.reason ?? last.state}${last.exitCode !== undefined ? ` (exit ${last.exitCode})` : ''}`
        : `schedule ${n.template.cron!.schedule}${next !== undefined ? `, next ${new Date(next).toISOString()}` : ''}`,
      logs: failed ? (last.logs ?? []) : [],
      image: n.template.image,
      // Failed runs among those kept: the RESTARTS column of a cron node.
      restarts: failures,
      nextTry: null,
    };
  });
}

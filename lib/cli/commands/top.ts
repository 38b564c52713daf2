/**
 * `viking ps --stats` and `viking top [STACK]`: every replica with its
 * state, restarts, uptime, CPU % and memory against its limit, read from
 * the Docker Engine of the host that runs it (GET /v1/resources) and joined
 * with the jobs of `viking ps` (GET /v1/ps). `top` prints it again every
 * `--interval` seconds, busiest CPU first, until Ctrl-C (`--once`: one print).
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { JobRow } from '../../api/wire.js';
import type { ReplicaResources } from '../../api/resources.js';
import { reasonText } from './ps.js';

export interface ReplicaStatsRow extends JobRow {
  cpuPct: number | null;
  memoryBytes: number | null;
  memoryLimitBytes: number | null;
  startedAt: string | null;
}

const MiB = 1024 * 1024;

export function bytesText(n: number | null): string {
  if (n === null) return '-';
  return n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(1)}G` : `${(n / MiB).toFixed(1)}M`;
}

export function uptimeText(startedAt: string | null, now: number): string {
  const t = startedAt ? Date.parse(startedAt) : NaN;
  if (!Number.isFinite(t) || t <= 0) return '-';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : s < 86_400 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/** The jobs of `viking ps`, each with the usage its host reported (null where none: not running, host silent). */
export async function replicaStats(api: ApiClient, stack: string | undefined): Promise<ReplicaStatsRow[]> {
  const q = stack ? `?stack=${encodeURIComponent(stack)}` : '';
  const [jobs, usage] = await Promise.all([api.get<JobRow[]>(`/v1/ps${q}`), api.get<ReplicaResources[]>(`/v1/resources${q}`)]);
  const key = (r: { stack: string; tag: string; node: string; instance: number }): string => `${r.stack}/${r.tag}/${r.node}/${r.instance}`;
  const byJob = new Map(usage.map((u) => [key(u), u]));
  return jobs.map((j) => {
    const u = byJob.get(key(j));
    return { ...j, cpuPct: u?.cpuPct ?? null, memoryBytes: u?.memoryBytes ?? null, memoryLimitBytes: u?.memoryLimitBytes ?? null, startedAt: u?.startedAt ?? null };
  });
}

export function replicaStatsTable(rows: ReplicaStatsRow[], now: number): string {
  return formatTable(
    ['STACK', 'TAG', 'NODE', '#', 'HOST', 'STATE', 'CPU', 'MEMORY', 'LIMIT', 'RESTARTS', 'UPTIME', 'REASON'],
    rows.map((r) => [
      r.stack, `${r.tag}${r.current ? '*' : ''}`, r.node, r.instance, r.host, r.state,
      r.cpuPct === null ? '-' : `${r.cpuPct.toFixed(1)}%`, bytesText(r.memoryBytes), r.memoryLimitBytes ? bytesText(r.memoryLimitBytes) : '-',
      r.restarts ?? 0, uptimeText(r.startedAt, now), reasonText(r, now),
    ]),
  );
}

interface TopArgs extends ReadArgs {
  stack?: string;
  interval: number;
  once?: boolean;
}

export function topCommand(y: Argv): Argv {
  return y.command<TopArgs>(
    'top [stack]',
    'CPU %, memory against the limit, restarts and uptime of every replica, busiest first, again every interval',
    (a) =>
      withJson(
        a
          .positional('stack', { type: 'string', describe: 'only this stack' })
          .option('interval', { type: 'number', default: 2, describe: 'seconds between two prints' })
          .option('once', { type: 'boolean', describe: 'print once and stop' }),
      ) as unknown as Argv<TopArgs>,
    handled(async (args: TopArgs) => {
      const api = await ApiClient.from(args);
      for (;;) {
        const rows = (await replicaStats(api, args.stack)).sort((a, b) => (b.cpuPct ?? -1) - (a.cpuPct ?? -1));
        if (args.json) printJson(rows);
        else process.stdout.write(`${args.once ? '' : `\n${new Date().toISOString()}\n`}${rows.length ? replicaStatsTable(rows, Date.now()) : 'no containers scheduled'}\n`);
        if (args.once) return;
        await new Promise((r) => setTimeout(r, Math.max(0.5, args.interval) * 1000));
      }
    }),
  );
}

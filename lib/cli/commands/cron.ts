/**
 * `viking cron STACK`: the stack's cron nodes (schedule, next tick) and their
 * kept runs, newest first: state, host, exit code, duration; `--logs` adds
 * the last output lines of each run. `--json` prints the API's answer.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { CronNodeView } from '../../cron/history.js';

interface CronArgs extends ReadArgs {
  stack: string;
  logs?: boolean;
  limit?: number;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function cronTable(nodes: CronNodeView[], limit: number, withLogs: boolean): string {
  const out: string[] = [];
  out.push(
    formatTable(
      ['NODE', 'SCHEDULE', 'TIMEZONE', 'CONCURRENCY', 'RELEASE', 'NEXT', 'LAST', 'FAILED'],
      nodes.map((n) => [n.node, n.schedule, n.timezone ?? 'UTC', n.concurrency, n.release, n.next ?? 'never', n.runs[0]?.state ?? '-', n.runs.filter((r) => r.state === 'failed' || r.state === 'unplaced' || r.state === 'lost').length]),
    ),
  );
  const runs = nodes.flatMap((n) => n.runs.slice(0, limit).map((r) => ({ n, r })));
  if (runs.length > 0) {
    out.push('');
    out.push(
      formatTable(
        ['NODE', 'TICK', 'STATE', 'HOST', 'EXIT', 'DURATION', 'REASON'],
        runs.map(({ n, r }) => [n.node, r.tick, r.state, r.host ?? '-', r.exitCode ?? '-', formatDuration(r.durationMs), r.reason ?? '']),
      ),
    );
    if (withLogs) {
      for (const { n, r } of runs) {
        if (!r.logs?.length) continue;
        out.push('', `${n.node} ${r.tick}:`, ...r.logs.map((l) => `  ${l}`));
      }
    }
  }
  return out.join('\n');
}

export function cronCommand(y: Argv): Argv {
  return y.command<CronArgs>(
    'cron <stack>',
    "show the stack's cron jobs and their last runs (exit code, duration, output)",
    (a) =>
      withJson(a)
        .positional('stack', { type: 'string', demandOption: true })
        .option('logs', { type: 'boolean', describe: 'print the last output lines of each run' })
        .option('limit', { type: 'number', default: 10, describe: 'runs shown per node (the cluster keeps 20)' }) as unknown as Argv<CronArgs>,
    handled(async (args: CronArgs) => {
      const api = await ApiClient.from(args);
      const v = await api.get<{ stack: string; nodes: CronNodeView[] }>(`/v1/cron/${encodeURIComponent(args.stack)}`);
      if (args.json) return printJson(v);
      if (v.nodes.length === 0) {
        process.stdout.write(`${v.stack} has no cron node; give a node schedule: '*/5 * * * *' in the Vikingfile\n`);
        return;
      }
      process.stdout.write(`${cronTable(v.nodes, args.limit ?? 10, args.logs ?? false)}\n`);
    }),
  );
}

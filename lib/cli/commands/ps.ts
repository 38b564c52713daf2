/**
 * `viking ps [STACK]`: every container the cluster wants, where it runs and
 * its state, as a table (or --json). `*` marks the release taking traffic.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { JobRow } from '../../api/wire.js';
import { replicaStats, replicaStatsTable } from './top.js';
import type { OneOffRow } from '../../ops/oneoff.js';

interface PsArgs extends ReadArgs {
  stack?: string;
  stats?: boolean;
  all?: boolean;
}

export function psCommand(y: Argv): Argv {
  return y.command<PsArgs>(
    'ps [stack]',
    'list the containers of every stack (or one), where they run and their state',
    (a) =>
      withJson(
        a
          .positional('stack', { type: 'string', describe: 'only this stack' })
          .option('stats', { type: 'boolean', describe: 'add CPU %, memory against the limit and uptime, from the host running each replica' })
          .option('all', {
            alias: 'a',
            type: 'boolean',
            describe: 'also list one-off containers (viking run) while they run; with --json: {replicas, oneoffs}',
          }),
      ) as unknown as Argv<PsArgs>,
    handled(async (args: PsArgs) => {
      const api = await ApiClient.from(args);
      if (args.stats) {
        const rows = await replicaStats(api, args.stack);
        if (args.json) return printJson(rows);
        process.stdout.write(rows.length ? `${replicaStatsTable(rows, Date.now())}\n` : 'no containers scheduled; viking push a Vikingfile to start\n');
        return;
      }
      const rows = await api.get<JobRow[]>(`/v1/ps${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`);
      if (args.all) return printOneOffs(api, args, rows);
      if (args.json) return printJson(rows);
      if (rows.length === 0) {
        process.stdout.write('no containers scheduled; viking push a Vikingfile to start\n');
        return;
      }
      const now = Date.now();
      process.stdout.write(
        `${formatTable(
          ['STACK', 'TAG', 'NODE', '#', 'HOST', 'STATE', 'RESTARTS', 'CONTAINER', 'ENDPOINTS', 'REASON'],
          rows.map((r) => [r.stack, `${r.tag}${r.current ? '*' : ''}`, r.node, r.instance, r.host, r.state, r.restarts ?? 0, r.container, r.endpoints.join(','), reasonText(r, now)]),
        )}\n`,
      );
    }),
  );
}

/** `ps --all`: the replicas' table, then the one-off containers of viking run. */
async function printOneOffs(api: ApiClient, args: PsArgs, rows: JobRow[]): Promise<void> {
  const oneoffs = await api.get<OneOffRow[]>(`/v1/runs${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`);
  if (args.json) return printJson({ replicas: rows, oneoffs });
  const now = Date.now();
  if (rows.length > 0) {
    process.stdout.write(
      `${formatTable(
        ['STACK', 'TAG', 'NODE', '#', 'HOST', 'STATE', 'RESTARTS', 'CONTAINER', 'ENDPOINTS', 'REASON'],
        rows.map((r) => [r.stack, `${r.tag}${r.current ? '*' : ''}`, r.node, r.instance, r.host, r.state, r.restarts ?? 0, r.container, r.endpoints.join(','), reasonText(r, now)]),
      )}\n`,
    );
  }
  process.stdout.write(
    oneoffs.length === 0
      ? `${rows.length > 0 ? '\n' : ''}no one-off containers running (viking run)\n`
      : `${rows.length > 0 ? '\n' : ''}${formatTable(
          ['STACK', 'TAG', 'NODE', 'ONE-OFF', 'HOST', 'STATE', 'CONTAINER', 'BY', 'COMMAND'],
          oneoffs.map((o) => [o.stack, o.tag, o.node, o.detached ? 'detached' : 'attached', o.host, o.status, o.container, o.by, o.command]),
        )}\n`,
  );
}

/** The reason, and when a job in backoff or crash-loop is tried next ("next try in 12s"). */
export function reasonText(r: Pick<JobRow, 'reason' | 'nextTry'>, now: number): string | null {
  if (!r.nextTry) return r.reason;
  const ms = Date.parse(r.nextTry) - now;
  const next = Number.isFinite(ms) ? (ms > 0 ? `next try in ${Math.ceil(ms / 1000)}s` : 'next try now') : null;
  return [r.reason, next].filter(Boolean).join('; ') || null;
}

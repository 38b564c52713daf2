/**
 * `viking hosts`: the servers of the cluster, and the two things an operator
 * does to them:
 *
 *   viking hosts [ls]            every live host: address, role, state, load, router ports and engine
 *   viking hosts show NAME       one host and the containers placed on it
 *   viking hosts drain NAME      move its stateless containers away, place nothing new there
 *   viking hosts drain NAME --undo
 *   viking hosts rm NAME [--force]   forget a host that is gone for good
 *   viking hosts rebalance [--dry-run] [--json]
 *                                move replicas, one at a time with no downtime, so each
 *                                node is spread across the hosts again and load evens out
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, withJson, type ReadArgs } from '../options.js';
import type { NetworkRow } from '../../api/wire.js';
import type { JobRow } from '../../api/wire.js';
import type { MoveResult } from '../../host-admin/rebalance.js';
import { followProgress } from '../progress.js';

interface RebalanceArgs extends ReadArgs {
  dryRun?: boolean;
}

/** The moves as an aligned table: what moved where and how long each took. */
export function movesTable(moves: MoveResult[]): string {
  return formatTable(
    ['NODE', 'REPLICA', 'FROM', 'TO', 'WHY', 'TIME', 'RESULT'],
    moves.map((m) => [m.node, m.replica, m.from, m.to, m.reason, m.status === 'planned' ? '-' : `${(m.ms / 1000).toFixed(1)}s`, m.detail ? `${m.status}: ${m.detail}` : m.status]),
  );
}

async function rebalanceHosts(args: RebalanceArgs): Promise<void> {
  const api = await ApiClient.from(args);
  const res = await api.call('POST', '/v1/rebalance', { dryRun: args.dryRun ?? false });
  // With --json the progress goes to stderr and stdout holds only the moves.
  const r = await followProgress<{ dryRun: boolean; moves: MoveResult[] }>(res, { say: (line) => (args.json ? process.stderr : process.stdout).write(`${line}\n`) });
  if (args.json) return printJson(r.moves);
  if (r.moves.length === 0) {
    process.stdout.write('nothing to move: every node is spread and the load is even\n');
    return;
  }
  process.stdout.write(`${movesTable(r.moves)}\n`);
  if (r.dryRun) process.stdout.write(`${r.moves.length} move(s) planned; run without --dry-run to make them\n`);
  else if (r.moves.some((m) => m.status === 'skipped')) process.exitCode = 1;
}

interface NameArgs extends ReadArgs {
  name: string;
  undo?: boolean;
  force?: boolean;
}

/** `7.8 GiB, 2 cpu, 10 containers`: what the planner fills the host up to. */
export function capacityText(h: Pick<NetworkRow, 'capacity'>): string {
  const parts = [h.capacity.memory > 0 ? `${(h.capacity.memory / 1024 ** 3).toFixed(1)} GiB` : 'memory unknown', h.capacity.cpu > 0 ? `${h.capacity.cpu} cpu` : 'cpu unknown'];
  if (h.capacity.containers > 0) parts.push(`${h.capacity.containers} containers`);
  return parts.join(', ');
}

/**
 * `:80 tls:443 nginx` (plain port, HTTPS port, engine), or `none` for a host
 * started with --no-router. Records from before the role have a router;
 * records from before the HTTPS port and engine show the plain port alone.
 */
export function routerText(h: Pick<NetworkRow, 'router' | 'routerPort' | 'httpsPort' | 'routerEngine'>): string {
  if (h.router === false) return 'none';
  return [`:${h.routerPort}`, ...(h.httpsPort ? [`tls:${h.httpsPort}`] : []), ...(h.routerEngine ? [h.routerEngine] : [])].join(' ');
}

function hostTable(rows: Array<NetworkRow & { etcd?: string }>): string {
  return formatTable(
    ['HOST', 'IP', 'ROLE', 'ETCD', 'STATE', 'JOBS', 'ROUTER', 'CAPACITY', 'TAGS', 'API'],
    rows.map((h) => [
      h.name,
      h.ip,
      h.leader ? 'leader' : h.master ? 'master' : 'worker',
      h.etcd ?? '?',
      h.stopping ? `stopping (work kept until ${h.stopping.until.slice(11, 19)})` : h.draining ? 'draining' : 'up',
      h.jobs,
      routerText(h),
      capacityText(h),
      h.tags.join(','),
      h.api,
    ]),
  );
}

async function list(args: ReadArgs): Promise<void> {
  const rows = await (await ApiClient.from(args)).get<NetworkRow[]>('/v1/network');
  if (args.json) return printJson(rows);
  process.stdout.write(rows.length ? `${hostTable(rows)}\n` : 'no live hosts\n');
}

export function hostsCommand(y: Argv): Argv {
  return y.command(
    'hosts',
    'list the hosts; drain or remove one (viking hosts --help)',
    (a) =>
      a
        .command<ReadArgs>(['ls', '$0'], 'list the live hosts', (b) => withJson(b), handled(list))
        .command<NameArgs>(
          'show <name>',
          'one host and the containers placed on it',
          (b) => withJson(b.positional('name', { type: 'string', demandOption: true })) as unknown as Argv<NameArgs>,
          handled(async (args: NameArgs) => {
            const h = await (await ApiClient.from(args)).get<NetworkRow & { alive: boolean; jobs: JobRow[] }>(`/v1/server/${encodeURIComponent(args.name)}`);
            if (args.json) return printJson(h);
            process.stdout.write(h.alive ? `${hostTable([{ ...h, jobs: h.jobs.length }])}\n\n` : `host ${h.name} is down\n\n`);
            process.stdout.write(
              h.jobs.length
                ? `${formatTable(['STACK', 'TAG', 'NODE', '#', 'STATE', 'CONTAINER'], h.jobs.map((j) => [j.stack, j.tag, j.node, j.instance, j.state, j.container]))}\n`
                : 'no containers placed here\n',
            );
          }),
        )
        .command<NameArgs>(
          'drain <name>',
          'move the host\'s stateless containers away and place nothing new there (--undo to stop)',
          (b) =>
            withApi(b.positional('name', { type: 'string', demandOption: true }).option('undo', { type: 'boolean', describe: 'stop draining' })) as unknown as Argv<NameArgs>,
          handled(async (args: NameArgs) => {
            const r = await (await ApiClient.from(args)).post<{ name: string; draining: boolean }>(`/v1/server/${encodeURIComponent(args.name)}/drain`, { drain: !args.undo });
            process.stdout.write(r.draining ? `${r.name} is draining: its stateless containers move to other hosts (viking ps shows them)\n` : `${r.name} takes new containers again\n`);
          }),
        )
        .command<NameArgs>(
          'rm <name>',
          'forget a host that is gone for good (its volume pins go too)',
          (b) =>
            withApi(b.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', describe: 'even while it is alive' })) as unknown as Argv<NameArgs>,
          handled(async (args: NameArgs) => {
            const r = await (await ApiClient.from(args)).delete<{ name: string; unpinned: string[] }>(`/v1/server/${encodeURIComponent(args.name)}${args.force ? '?force=1' : ''}`);
            process.stdout.write(`${r.name} removed${r.unpinned.length ? `; volume nodes unpinned: ${r.unpinned.join(', ')}` : ''}\n`);
          }),
        )
        .command<RebalanceArgs>(
          'rebalance',
          'move replicas one at a time, with no downtime, so nodes are spread across the hosts and load evens out',
          (b) => withJson(b).option('dry-run', { type: 'boolean', describe: 'only print the moves it would make' }) as unknown as Argv<RebalanceArgs>,
          handled(rebalanceHosts),
        )
        .demandCommand(0),
    () => {},
  );
}

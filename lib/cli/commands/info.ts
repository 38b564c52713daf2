/**
 * `viking info`: the cluster at a glance: hosts, the leader, stacks and
 * containers by state.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';

interface Info {
  host: string;
  version: string;
  leader: string | null;
  hosts: { total: number; draining: number; masters: number; names: string[] };
  stacks: { total: number; live: number; names: string[] };
  jobs: { total: number; byState: Record<string, number> };
  etcd?: { voting: number; learners: number; members: Array<{ name: string; learner: boolean }> };
}

/** The warning `viking info` prints while etcd could not survive the loss of a server; undefined when it can. */
export function etcdWarning(etcd: Info['etcd']): string | undefined {
  if (!etcd || etcd.voting >= 3) return undefined;
  return `WARNING: etcd has ${etcd.voting} voting member${etcd.voting === 1 ? '' : 's'}: losing ${etcd.voting === 1 ? 'its server' : 'any one of their servers'} stops the cluster; join servers until 3 vote (viking up --join, README "Many hosts")`;
}

export function infoCommand(y: Argv): Argv {
  return y.command<ReadArgs>(
    'info',
    'summary of the cluster: hosts, leader, stacks, containers by state',
    (a) => withJson(a),
    handled(async (args: ReadArgs) => {
      const api = await ApiClient.from(args);
      const info = await api.get<Info>('/v1/info');
      if (args.json) return printJson(info);
      const states = Object.entries(info.jobs.byState).sort().map(([s, n]) => `${n} ${s}`).join(', ');
      process.stdout.write(
        `${formatTable(
          ['WHAT', 'VALUE'],
          [
            ['api', `${api.base} (host ${info.host}, viking ${info.version})`],
            ['leader', info.leader ?? 'none elected'],
            ['hosts', `${info.hosts.total} (${info.hosts.masters} master, ${info.hosts.draining} draining): ${info.hosts.names.join(', ')}`],
            ['stacks', `${info.stacks.total} (${info.stacks.live} live)${info.stacks.names.length ? `: ${info.stacks.names.join(', ')}` : ''}`],
            ['containers', `${info.jobs.total}${states ? ` (${states})` : ''}`],
            ...(info.etcd ? [['etcd', `${info.etcd.voting} voting${info.etcd.learners ? `, ${info.etcd.learners} learner` : ''}: ${info.etcd.members.map((m) => m.name || '(not started)').join(', ')}`]] : []),
          ],
        )}\n`,
      );
      const warning = etcdWarning(info.etcd);
      if (warning) process.stderr.write(`${warning}\n`);
    }),
  );
}

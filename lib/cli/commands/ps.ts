/**
 * `viking ps [STACK]` and `viking stacks`: what runs where, as a table
 * (or --json).
 */
import type { Argv } from 'yargs';
import { apiGet, apiUrl } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import type { JobRow } from '../../api/status.js';

interface ReadArgs {
  stack?: string;
  api?: string;
  json?: boolean;
}

const common = (a: Argv): Argv<ReadArgs> =>
  a
    .option('api', { type: 'string', describe: 'API URL (default $VIKING_API or http://127.0.0.1:8791)' })
    .option('json', { type: 'boolean', describe: 'print JSON instead of a table' }) as unknown as Argv<ReadArgs>;

export function psCommand(y: Argv): Argv {
  return y.command<ReadArgs>(
    'ps [stack]',
    'list the containers of every stack (or one), where they run and their state',
    (a) => common(a.positional('stack', { type: 'string', describe: 'only this stack' })),
    handled(async (args: ReadArgs) => {
      const rows = await apiGet<JobRow[]>(apiUrl(args.api), `/v1/ps${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`);
      if (args.json) return printJson(rows);
      if (rows.length === 0) {
        process.stdout.write('no containers scheduled; viking push a Vikingfile to start\n');
        return;
      }
      process.stdout.write(
        `${formatTable(
          ['STACK', 'TAG', 'NODE', '#', 'HOST', 'STATE', 'CONTAINER', 'ENDPOINTS', 'REASON'],
          rows.map((r) => [r.stack, `${r.tag}${r.current ? '*' : ''}`, r.node, r.instance, r.host, r.state, r.container, r.endpoints.join(','), r.reason]),
        )}\n`,
      );
    }),
  );
}

interface StackRow {
  name: string;
  current: string | null;
  releases: number;
  domains: string[];
  updatedAt: string | null;
}

export function stacksCommand(y: Argv): Argv {
  return y.command<ReadArgs>(
    'stacks',
    'list the stacks with their current release and domains',
    (a) => common(a),
    handled(async (args: ReadArgs) => {
      const rows = await apiGet<StackRow[]>(apiUrl(args.api), '/v1/stacks');
      if (args.json) return printJson(rows);
      process.stdout.write(
        `${formatTable(
          ['STACK', 'RELEASE', 'RELEASES', 'UPDATED', 'DOMAINS'],
          rows.map((r) => [r.name, r.current, r.releases, r.updatedAt, r.domains.join(',')]),
        )}\n`,
      );
    }),
  );
}

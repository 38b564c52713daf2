/**
 * `viking stacks`: the stacks, their live release and domains.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { StackRow } from '../../api/wire.js';

export function stacksCommand(y: Argv): Argv {
  return y.command<ReadArgs>(
    'stacks',
    'list the stacks with their current release and domains',
    (a) => withJson(a),
    handled(async (args: ReadArgs) => {
      const rows = await (await ApiClient.from(args)).get<StackRow[]>('/v1/stacks');
      if (args.json) return printJson(rows);
      if (rows.length === 0) {
        process.stdout.write('no stacks yet; viking push a Vikingfile to make one\n');
        return;
      }
      process.stdout.write(
        `${formatTable(
          ['STACK', 'RELEASE', 'RELEASES', 'UPDATED', 'DOMAINS'],
          rows.map((r) => [r.name, r.current, r.releases, r.updatedAt, r.domains.join(',')]),
        )}\n`,
      );
    }),
  );
}

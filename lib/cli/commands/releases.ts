/**
 * `viking releases STACK`: the release history, oldest first, the live one
 * marked: what `viking rollback` can go back to.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';

interface ReleaseRow {
  tag: string;
  current: boolean;
  at: string;
  by: string;
  origin: { kind: string; from?: string };
  images: Record<string, string>;
  jobs: number;
  redeployable: boolean;
}

export function releasesCommand(y: Argv): Argv {
  return y.command<ReadArgs & { stack: string }>(
    'releases <stack>',
    'list a stack\'s releases (what viking rollback can go back to)',
    (a) => withJson(a.positional('stack', { type: 'string', demandOption: true })) as unknown as Argv<ReadArgs & { stack: string }>,
    handled(async (args: ReadArgs & { stack: string }) => {
      const rows = await (await ApiClient.from(args)).get<ReleaseRow[]>(`/v1/tags/${encodeURIComponent(args.stack)}`);
      if (args.json) return printJson(rows);
      process.stdout.write(
        `${formatTable(
          ['RELEASE', 'LIVE', 'WHEN', 'BY', 'WHAT', 'CONTAINERS'],
          rows.map((r) => [r.tag, r.current ? '*' : '', r.at, r.by, r.origin.from ? `${r.origin.kind} of ${r.origin.from}` : r.origin.kind, r.jobs]),
        )}\n`,
      );
    }),
  );
}

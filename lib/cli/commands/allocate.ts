/**
 * `viking allocate STACK NODE [--tag vN]`: where a node's replicas run or
 * would run, and how every host judges it (the planner's reasons), to answer
 * "why is my container pending?".
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { Allocation } from '../../api/wire.js';

interface AllocateArgs extends ReadArgs {
  stack: string;
  node: string;
  tag?: string;
}

export function allocateCommand(y: Argv): Argv {
  return y.command<AllocateArgs>(
    'allocate <stack> <node>',
    'where a node runs or would run, and why each host takes it or not',
    (a) =>
      withJson(a.positional('stack', { type: 'string', demandOption: true }).positional('node', { type: 'string', demandOption: true }))
        .option('tag', { type: 'string', describe: 'a release other than the live one' }) as unknown as Argv<AllocateArgs>,
    handled(async (args: AllocateArgs) => {
      const api = await ApiClient.from(args);
      const tag = args.tag ?? (await api.get<{ current: string | null }>(`/v1/stack/${encodeURIComponent(args.stack)}`)).current;
      if (!tag) throw new VikingError('VIKING_E_NOT_FOUND', `${args.stack} has no live release; pass --tag`);
      const a = await api.get<Allocation>(`/v1/allocate/${encodeURIComponent(args.stack)}/${tag}/${encodeURIComponent(args.node)}`);
      if (args.json) return printJson(a);
      process.stdout.write(`${a.stack} ${a.tag} ${a.node}${a.hypothetical ? ' (not running: as a deploy would place it now)' : ''}\n\n`);
      process.stdout.write(`${formatTable(['#', 'HOST', 'STATUS', 'WHY'], a.replicas.map((r) => [r.instance, r.host, r.status, r.reasons.join('; ')]))}\n\n`);
      process.stdout.write(`${formatTable(['HOST', 'FITS', 'REPLICAS', 'SCORE', 'REASON'], a.hosts.map((h) => [h.host, h.fits ? 'yes' : 'no', h.replicas, h.score === null ? null : h.score.toFixed(3), h.reason]))}\n`);
    }),
  );
}

/**
 * `viking scale STACK NODE=N [NODE=N...]`: more or fewer replicas of a node,
 * without a new release. New replicas take traffic once healthy; removed
 * ones leave the routers before they stop. The count is kept across pushes
 * while the Vikingfile's scale for the node stays the same.
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { validateName } from '../../vikingfile/index.js';
import { ApiClient } from '../api-client.js';
import { handled } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import type { NodeScaled } from '../../rollout/scale.js';

interface ScaleArgs extends ApiArgs {
  stack: string;
  counts: string[];
  json?: boolean;
}

/** `web=3` pairs into {web: 3}. */
export function parseCounts(pairs: string[]): Record<string, number> {
  // Names are validated first, so none can be `__proto__`: a plain object is safe to write into.
  const out: Record<string, number> = {};
  for (const p of pairs) {
    const m = /^([^=\s]+)=(\d+)$/.exec(p);
    if (!m) throw new VikingError('VIKING_E_BAD_REQUEST', `'${p}' is not NODE=N (e.g. web=3)`);
    validateName(m[1]!, 'node name');
    out[m[1]!] = Number(m[2]);
  }
  if (Object.keys(out).length === 0) throw new VikingError('VIKING_E_BAD_REQUEST', 'name at least one NODE=N, e.g. viking scale hello web=3');
  return out;
}

export function scaleCommand(y: Argv): Argv {
  return y.command<ScaleArgs>(
    'scale <stack> <counts..>',
    'set the number of replicas of nodes: viking scale STACK NODE=N [NODE=N...]',
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('counts', { type: 'string', array: true, describe: 'NODE=N pairs' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' })
        .example('$0 scale hello web=4', 'run four replicas of web') as unknown as Argv<ScaleArgs>,
    handled(async (args: ScaleArgs) => {
      const nodes = parseCounts(args.counts ?? []);
      const api = await ApiClient.from(args);
      const res = await api.call('POST', `/v1/scale/${encodeURIComponent(args.stack)}`, { nodes });
      // The API's last progress line already says "web: 2 -> 3 replica(s)" for each node.
      await followProgress<{ stack: string; nodes: NodeScaled[] }>(res, { json: args.json });
    }),
  );
}

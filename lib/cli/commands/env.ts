/**
 * `viking env STACK [set K=V... | unset K...]`: the stack's environment.
 *
 * Without an action it shows each variable, its value and where it comes
 * from (the Vikingfile or an override). `set` and `unset` change the
 * overrides, which apply to every container node, and roll them out as a
 * new release: the old one serves until the restarted one is healthy.
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import type { EnvResult } from '../../rollout/releases.js';
import { hasKey } from '../../store/dict.js';
import { RESERVED_ENV_MESSAGE } from '../../vikingfile/values.js';

interface EnvArgs extends ApiArgs {
  stack: string;
  action?: string;
  vars?: string[];
  json?: boolean;
}

interface EnvView {
  stack: string;
  release: string | null;
  overrides: Record<string, string>;
  nodes: Record<string, Record<string, string>>;
}

export function parseAssignments(pairs: string[]): Record<string, string> {
  // `__proto__` is refused below, so a plain object (sent as JSON) is safe to write into.
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new VikingError('VIKING_E_BAD_REQUEST', `'${p}' is not KEY=VALUE`);
    if (p.slice(0, eq) === '__proto__') throw new VikingError('VIKING_E_BAD_REQUEST', RESERVED_ENV_MESSAGE);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

async function show(api: ApiClient, args: EnvArgs): Promise<void> {
  const v = await api.get<EnvView>(`/v1/env/${encodeURIComponent(args.stack)}`);
  if (args.json) return printJson(v);
  const rows: string[][] = [];
  for (const [node, env] of Object.entries(v.nodes).sort()) {
    for (const [k, val] of Object.entries({ ...env, ...v.overrides }).sort()) rows.push([node, k, val, hasKey(v.overrides, k) ? 'viking env' : 'Vikingfile']);
  }
  if (rows.length === 0) for (const [k, val] of Object.entries(v.overrides).sort()) rows.push(['*', k, val, 'viking env']);
  process.stdout.write(rows.length ? `${formatTable(['NODE', 'KEY', 'VALUE', 'FROM'], rows)}\n` : `${v.stack} has no environment variables\n`);
}

export function envCommand(y: Argv): Argv {
  return y.command<EnvArgs>(
    'env <stack> [action] [vars..]',
    'show the stack\'s environment, or set K=V / unset K and restart its nodes',
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('action', { type: 'string', choices: ['set', 'unset'], describe: 'set K=V... or unset K...' })
        .positional('vars', { type: 'string', array: true })
        .option('json', { type: 'boolean', describe: 'print JSON (or progress events as JSON lines)' })
        .example('$0 env hello set GREETING=Howdy', 'restart hello with a new GREETING')
        .example('$0 env hello unset GREETING', 'back to the Vikingfile\'s value') as unknown as Argv<EnvArgs>,
    handled(async (args: EnvArgs) => {
      const api = await ApiClient.from(args);
      if (!args.action) return show(api, args);
      const vars = args.vars ?? [];
      if (vars.length === 0) throw new VikingError('VIKING_E_BAD_REQUEST', `name what to ${args.action}: viking env ${args.stack} ${args.action === 'set' ? 'KEY=VALUE' : 'KEY'}`);
      const body = args.action === 'set' ? { set: parseAssignments(vars) } : { unset: vars };
      const res = await api.call('POST', `/v1/env/${encodeURIComponent(args.stack)}`, body);
      const r = await followProgress<EnvResult>(res, { json: args.json });
      if (args.json) return;
      if (!r.changed) process.stdout.write(`-----> ${r.stack}: nothing changed, nothing restarted\n`);
      else if (r.release) process.stdout.write(`-----> ${r.stack} runs release ${r.release.tag} with the new environment\n`);
    }),
  );
}

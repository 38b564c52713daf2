/**
 * `viking secrets STACK [ls | set K=V... | unset K...]`: the stack's secrets.
 *
 * `ls` (the default) prints names only; `--reveal` prints the values too,
 * which the API gives only to a token that may (lib/secrets/access.ts).
 * `set` and `unset` seal the values on the API host, store them in etcd and
 * roll the stack onto them as a new release, as `viking env set` does. A
 * value given as `K=-` is read from stdin, so it stays out of the shell's
 * history and the process list.
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import { parseAssignments } from './env.js';
import type { SecretsResult } from '../../secrets/store.js';

interface SecretsArgs extends ApiArgs {
  stack: string;
  action?: string;
  vars?: string[];
  json?: boolean;
  reveal?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function secretsCommand(y: Argv): Argv {
  return y.command<SecretsArgs>(
    'secrets <stack> [action] [vars..]',
    "list the stack's secret names, or set K=V / unset K and restart its nodes",
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('action', { type: 'string', choices: ['ls', 'set', 'unset'], describe: 'ls (default), set K=V..., unset K...' })
        .positional('vars', { type: 'string', array: true })
        .option('reveal', { type: 'boolean', describe: 'ls: print the values too (needs an admin token)' })
        .option('json', { type: 'boolean', describe: 'print JSON (or progress events as JSON lines)' })
        .example('$0 secrets hello set DATABASE_URL=postgres://...', 'seal it, restart hello with it')
        .example('$0 secrets hello set API_KEY=- < key.txt', 'the value from stdin')
        .example('$0 secrets hello ls', 'names only') as unknown as Argv<SecretsArgs>,
    handled(async (args: SecretsArgs) => {
      const api = await ApiClient.from(args);
      const action = args.action ?? 'ls';
      if (action === 'ls') {
        const v = await api.get<{ stack: string; secrets: Array<{ name: string; value?: string }> }>(
          `/v1/secrets/${encodeURIComponent(args.stack)}${args.reveal ? '?reveal=1' : ''}`,
        );
        if (args.json) return printJson(v);
        if (v.secrets.length === 0) return void process.stdout.write(`${v.stack} has no secrets\n`);
        const rows = v.secrets.map((s) => (args.reveal ? [s.name, s.value ?? ''] : [s.name]));
        process.stdout.write(`${formatTable(args.reveal ? ['NAME', 'VALUE'] : ['NAME'], rows)}\n`);
        return;
      }
      const vars = args.vars ?? [];
      if (vars.length === 0) throw new VikingError('VIKING_E_BAD_REQUEST', `name what to ${action}: viking secrets ${args.stack} ${action === 'set' ? 'KEY=VALUE' : 'KEY'}`);
      let body: { set?: Record<string, string>; unset?: string[] };
      if (action === 'set') {
        const set = parseAssignments(vars);
        const fromStdin = Object.entries(set).filter(([, v]) => v === '-');
        if (fromStdin.length > 1) throw new VikingError('VIKING_E_BAD_REQUEST', 'only one value can come from stdin (K=-)');
        if (fromStdin[0]) set[fromStdin[0][0]] = await readStdin();
        body = { set };
      } else {
        body = { unset: vars };
      }
      const res = await api.call('POST', `/v1/secrets/${encodeURIComponent(args.stack)}`, body);
      const r = await followProgress<SecretsResult>(res, { json: args.json });
      if (args.json) return;
      if (!r.changed) process.stdout.write(`-----> ${r.stack}: nothing changed, nothing restarted\n`);
      else if (r.release) process.stdout.write(`-----> ${r.stack} runs release ${r.release.tag} with its secrets: ${r.names.join(', ') || 'none'}\n`);
      else process.stdout.write(`-----> ${r.stack}: secrets stored (${r.names.join(', ') || 'none'}); the next push uses them\n`);
    }),
  );
}

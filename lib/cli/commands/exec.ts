/**
 * `viking exec STACK NODE[.N] [-i] [-t] -- CMD...`: a command in a running
 * replica of the live release, on whichever host runs it (through the API,
 * a websocket to Docker exec there). Exits with the command's exit code;
 * 125 when viking itself failed (no such replica, no permission...).
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { printError, VikingError } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { openSession, sessionQuery, type SessionEnd } from '../ws-session.js';

/** Exit code of `viking exec` and `viking run` when viking, not the command, failed (as docker run's 125). */
export const VIKING_FAILED_EXIT = 125;

/** What `viking exec` and `viking run` both take: a stack, a command after `--`, -i and -t. */
export interface SessionArgs extends ApiArgs {
  _?: Array<string | number>;
  stack: string;
  cmd?: Array<string | number>;
  interactive?: boolean;
  tty?: boolean;
}

interface ExecArgs extends SessionArgs {
  replica: string;
}

/** The option block `viking exec` and `viking run` share: the stack, the command's target (`replica` or `node`), the command, -i, -t. */
export function withSessionOptions<T>(a: Argv<T>, target: string, describe?: string): Argv<T & SessionArgs> {
  return withApi(a)
    .positional('stack', { type: 'string', demandOption: true })
    .positional(target, { type: 'string', demandOption: true, ...(describe ? { describe } : {}) })
    .positional('cmd', { type: 'string', array: true, describe: 'the command, after --' })
    .option('interactive', { alias: 'i', type: 'boolean', describe: 'pass this terminal\'s stdin to the command' })
    .option('tty', { alias: 't', type: 'boolean', describe: 'give the command a terminal (raw mode here, size and resizes passed on)' }) as unknown as Argv<T & SessionArgs>;
}

/** Runs a session and makes its end viking's exit code: the command's, or VIKING_FAILED_EXIT when viking failed. */
export async function exitWithSession(session: () => Promise<SessionEnd>): Promise<void> {
  try {
    const end = await session();
    process.exitCode = 'exitCode' in end ? end.exitCode : 0;
  } catch (err) {
    printError(err);
    process.exitCode = VIKING_FAILED_EXIT;
  }
}

/** `web` -> web.1; `web.3` -> web.3. */
export function parseReplica(text: string): { node: string; instance: number } {
  const m = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.([1-9][0-9]{0,5}))?$/.exec(text);
  if (!m) throw new VikingError('VIKING_E_BAD_REQUEST', `'${text.slice(0, 80)}' is no replica: NODE or NODE.N, e.g. web or web.2`);
  return { node: m[1]!, instance: m[2] ? Number(m[2]) : 1 };
}

/** The command: words before `--` that yargs took as `cmd`, then every word after it (yargs leaves those in `_`, after the command's name). */
export function commandOf(cmd: Array<string | number> | undefined, rest: Array<string | number> | undefined, usage: string): string[] {
  const out = [...(cmd ?? []), ...(rest ?? []).slice(1)].map(String);
  if (out.length === 0) throw new VikingError('VIKING_E_BAD_REQUEST', `name the command after --, e.g. ${usage}`);
  return out;
}

export function execCommand(y: Argv): Argv {
  return y.command<ExecArgs>(
    'exec <stack> <replica> [cmd..]',
    'run a command in a running replica (NODE or NODE.N), wherever it runs; -it for an interactive terminal',
    (a) =>
      withSessionOptions(a, 'replica', 'NODE or NODE.N (default replica 1)')
        .example('$0 exec shop web.2 -it -- sh', 'a shell in replica 2 of web')
        .example('$0 exec shop worker -- cat /etc/hostname', 'one command, its exit code is viking\'s') as unknown as Argv<ExecArgs>,
    (args: ExecArgs) =>
      exitWithSession(async () => {
        const { node, instance } = parseReplica(args.replica);
        const cmd = commandOf(args.cmd, args._, 'viking exec shop web -- ls /');
        const api = await ApiClient.from(args);
        const o = { tty: args.tty ?? false, stdin: args.interactive ?? false };
        return openSession(api, `/v1/exec/${encodeURIComponent(args.stack)}/${node}/${instance}?${sessionQuery(cmd, o)}`, o);
      }),
  );
}

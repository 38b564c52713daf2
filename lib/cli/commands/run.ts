/**
 * `viking run STACK NODE [-d] [-i] [-t] -- CMD...`: a one-off container of
 * the node's live release (its image, env, secrets and volumes), not routed,
 * on the host dowding picks. Output streams here and the command's exit code
 * is viking's (125 when viking itself failed); the container is removed when
 * it ends. `--detach` leaves it running (listed by `viking ps --all`) and
 * removed by Docker once its command exits.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { openSession, sessionQuery } from '../ws-session.js';
import { commandOf, exitWithSession, withSessionOptions, type SessionArgs } from './exec.js';

interface RunArgs extends SessionArgs {
  node: string;
  detach?: boolean;
}

export function runCommand(y: Argv): Argv {
  return y.command<RunArgs>(
    'run <stack> <node> [cmd..]',
    "run a one-off command in a new container of a node's live release (its env, secrets, volumes); not routed",
    (a) =>
      withSessionOptions(a, 'node')
        .option('detach', { alias: 'd', type: 'boolean', describe: 'leave it running in the background (viking ps --all lists it)' })
        .example('$0 run shop web -- ./manage migrate', 'a migration with the release\'s image, env and volumes')
        .example('$0 run shop web -it -- sh', 'a shell in a fresh container')
        .example('$0 run shop worker -d -- ./reindex', 'in the background') as unknown as Argv<RunArgs>,
    (args: RunArgs) =>
      exitWithSession(async () => {
        const cmd = commandOf(args.cmd, args._, 'viking run shop web -- ./migrate');
        const api = await ApiClient.from(args);
        const detach = args.detach ?? false;
        const o = { tty: !detach && (args.tty ?? false), stdin: !detach && (args.interactive ?? false) };
        const path = `/v1/run/${encodeURIComponent(args.stack)}/${encodeURIComponent(args.node)}?${sessionQuery(cmd, { ...o, detach })}`;
        return openSession(api, path, {
          ...o,
          onStarted: (m) => {
            if (m.type === 'detached') process.stdout.write(`started ${m.name ?? m.container} on ${m.host} (container ${m.container}); viking ps --all lists it\n`);
          },
        });
      }),
  );
}

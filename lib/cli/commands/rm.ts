/**
 * `viking rm STACK [--volumes]`: removes a stack: its routes first, then its
 * containers on every host (awaited), then its images (every host and the
 * registry), pins and keys. Docker volumes stay, and are listed with their
 * host, unless --volumes. It asks to type the stack's name first; scripts pass --yes.
 */
import { createInterface } from 'node:readline/promises';
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import type { RemoveResult } from '../../rollout/remove.js';

interface RmArgs extends ApiArgs {
  stack: string;
  yes?: boolean;
  volumes?: boolean;
  json?: boolean;
}

async function confirm(stack: string, volumes: boolean): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new VikingError('VIKING_E_CONFIRM_REQUIRED', `removing ${stack} stops all its containers and forgets its releases; pass --yes to confirm`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const data = volumes ? ' and DELETES its Docker volumes (its data)' : '';
    const answer = await rl.question(`This stops every container of ${stack}, forgets its releases${data}. Type the stack name to confirm: `);
    if (answer.trim() !== stack) throw new VikingError('VIKING_E_CONFIRM_REQUIRED', `'${answer.trim()}' is not ${stack}; nothing was removed`);
  } finally {
    rl.close();
  }
}

export function rmCommand(y: Argv): Argv {
  return y.command<RmArgs>(
    'rm <stack>',
    'remove a stack: routes, containers on every host, images, keys (volumes are kept unless --volumes)',
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation' })
        .option('volumes', { type: 'boolean', describe: "also delete the stack's Docker volumes on every host (its data)" })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }) as unknown as Argv<RmArgs>,
    handled(async (args: RmArgs) => {
      if (!args.yes) await confirm(args.stack, args.volumes ?? false);
      const api = await ApiClient.from(args);
      const res = await api.call('DELETE', `/v1/stack/${encodeURIComponent(args.stack)}${args.volumes ? '?volumes=1' : ''}`);
      const r = await followProgress<RemoveResult>(res, { json: args.json });
      if (args.json) return;
      const kept = (r.volumes ?? []).filter((v) => !v.removed);
      if (kept.length > 0) {
        process.stdout.write(`kept Docker volumes (no later stack mounts them; docker volume rm on their host deletes them, or use viking rm --volumes):\n`);
        process.stdout.write(`${formatTable(['HOST', 'VOLUME', 'NODE', 'PATH'], kept.map((v) => [v.host, v.name, v.node, v.path]))}\n`);
      }
      process.stdout.write(`-----> ${r.stack} is gone\n`);
    }),
  );
}

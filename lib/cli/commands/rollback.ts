/**
 * `viking rollback STACK [RELEASE]`: serve an earlier release again, the one
 * before the live one unless named. It is deployed as a new release (same
 * images and node specs, current env overrides) through the same rollout
 * as a push: the live release serves until the old code is healthy.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { handled } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import type { DerivedRelease } from '../../rollout/releases.js';

interface RollbackArgs extends ApiArgs {
  stack: string;
  release?: string;
  json?: boolean;
}

export function rollbackCommand(y: Argv): Argv {
  return y.command<RollbackArgs>(
    'rollback <stack> [release]',
    'serve the previous release again (or the one named, e.g. v3)',
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('release', { type: 'string', describe: 'release tag from viking releases STACK (default: the one before the live one)' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }) as unknown as Argv<RollbackArgs>,
    handled(async (args: RollbackArgs) => {
      const started = Date.now();
      const api = await ApiClient.from(args);
      const res = await api.call('POST', `/v1/rollback/${encodeURIComponent(args.stack)}`, args.release ? { release: args.release } : {});
      const r = await followProgress<DerivedRelease>(res, { json: args.json });
      if (!args.json) process.stdout.write(`-----> ${r.stack} rolled back to ${r.from} as release ${r.tag} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }),
  );
}

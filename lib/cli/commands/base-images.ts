/**
 * `viking base-images`: makes viking/busybox and viking/node offline with
 * `docker import` (nothing can be pulled on an offline machine).
 */
import type { Argv } from 'yargs';
import { handled } from '../output.js';

export function baseImagesCommand(y: Argv): Argv {
  return y.command<{ force?: boolean }>(
    'base-images',
    'make the base images viking/busybox and viking/node from this machine\'s binaries',
    (a) => a.option('force', { type: 'boolean', default: false, describe: 'rebuild even if they exist' }) as unknown as Argv<{ force?: boolean }>,
    handled(async (args: { force?: boolean }) => {
      const [{ connectDocker }, { ensureBaseImages }] = await Promise.all([import('../../docker/client.js'), import('../../docker/base-images.js')]);
      for (const r of await ensureBaseImages(connectDocker(), args.force ?? false)) {
        process.stdout.write(`${r.image}: ${r.created ? 'created' : 'already there'}\n`);
      }
    }),
  );
}

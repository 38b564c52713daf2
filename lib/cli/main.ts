/**
 * The `viking` command line. One small file per command under ./commands;
 * this only wires them into yargs.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hostCommand } from './commands/host.js';
import { upCommand } from './commands/up.js';
import { pushCommand } from './commands/push.js';
import { psCommand, stacksCommand } from './commands/ps.js';
import { baseImagesCommand } from './commands/base-images.js';

export async function main(argv: string[]): Promise<void> {
  let y = yargs(argv).scriptName('viking').usage('$0 <command> [options]');
  for (const add of [upCommand, hostCommand, pushCommand, psCommand, stacksCommand, baseImagesCommand]) y = add(y);
  await y.demandCommand(1, 'name a command; viking --help lists them').strict().help().alias('h', 'help').version('0.1.0').wrap(Math.min(110, process.stdout.columns || 100)).parseAsync();
}

await main(hideBin(process.argv));

/**
 * The `viking` command line. One small file per command under ./commands;
 * this only wires them into yargs.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hostCommand } from './commands/host.js';
import { upCommand } from './commands/up.js';
import { configureCommand } from './commands/configure.js';
import { pushCommand } from './commands/push.js';
import { psCommand } from './commands/ps.js';
import { stacksCommand } from './commands/stacks.js';
import { releasesCommand } from './commands/releases.js';
import { infoCommand } from './commands/info.js';
import { hostsCommand } from './commands/hosts.js';
import { logsCommand } from './commands/logs.js';
import { scaleCommand } from './commands/scale.js';
import { rollbackCommand } from './commands/rollback.js';
import { envCommand } from './commands/env.js';
import { cronCommand } from './commands/cron.js';
import { secretsCommand } from './commands/secrets.js';
import { rmCommand } from './commands/rm.js';
import { allocateCommand } from './commands/allocate.js';
import { tokenCommand } from './commands/token.js';
import { auditCommand } from './commands/audit.js';
import { baseImagesCommand } from './commands/base-images.js';
import { settingsCommand } from './commands/settings.js';
import { trustRegistryCommand } from './commands/trust-registry.js';
import { certsCommand } from './commands/certs.js';
import { statsCommand } from './commands/stats.js';
import { topCommand } from './commands/top.js';
import { runCommand } from './commands/run.js';
import { execCommand } from './commands/exec.js';
import { volumesCommand } from './commands/volumes.js';

export async function main(argv: string[]): Promise<void> {
  let y = yargs(argv).scriptName('viking').usage('$0 <command> [options]');
  for (const add of [
    upCommand,
    hostCommand,
    configureCommand,
    pushCommand,
    psCommand,
    stacksCommand,
    releasesCommand,
    infoCommand,
    hostsCommand,
    logsCommand,
    scaleCommand,
    rollbackCommand,
    envCommand,
    cronCommand,
    secretsCommand,
    rmCommand,
    allocateCommand,
    tokenCommand,
    auditCommand,
    baseImagesCommand,
    settingsCommand,
    trustRegistryCommand,
    certsCommand,
    statsCommand,
    topCommand,
    runCommand,
    execCommand,
    volumesCommand,
  ]) {
    y = add(y);
  }
  await y
    .demandCommand(1, 'name a command; viking --help lists them')
    .strict()
    .help()
    .alias('h', 'help')
    .version('0.1.0')
    .epilogue('Every command that talks to the cluster takes --api URL and --token T (or $VIKING_API, $VIKING_TOKEN, or viking configure). On failure: "error VIKING_E_<CODE>: message" and exit code 1.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

await main(hideBin(process.argv));

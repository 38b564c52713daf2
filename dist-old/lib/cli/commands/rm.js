/**
 * `viking rm STACK`: removes a stack: its routes first, then its containers
 * on every host (awaited), then its images, pins and keys. Docker volumes
 * stay. It asks to type the stack's name first; scripts pass --yes.
 */
import { createInterface } from 'node:readline/promises';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { handled } from '../output.js';
import { withApi } from '../options.js';
import { followProgress } from '../progress.js';
async function confirm(stack) {
    if (!process.stdin.isTTY) {
        throw new VikingError('VIKING_E_CONFIRM_REQUIRED', `removing ${stack} stops all its containers and forgets its releases; pass --yes to confirm`);
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
        const answer = await rl.question(`This stops every container of ${stack} and forgets its releases. Type the stack name to confirm: `);
        if (answer.trim() !== stack)
            throw new VikingError('VIKING_E_CONFIRM_REQUIRED', `'${answer.trim()}' is not ${stack}; nothing was removed`);
    }
    finally {
        rl.close();
    }
}
export function rmCommand(y) {
    return y.command('rm <stack>', 'remove a stack: routes, containers on every host, images, keys (volumes are kept)', (a) => withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }), handled(async (args) => {
        if (!args.yes)
            await confirm(args.stack);
        const api = await ApiClient.from(args);
        const res = await api.call('DELETE', `/v1/stack/${encodeURIComponent(args.stack)}`);
        const r = await followProgress(res, { json: args.json });
        if (!args.json)
            process.stdout.write(`-----> ${r.stack} is gone\n`);
    }));
}
//# sourceMappingURL=rm.js.map
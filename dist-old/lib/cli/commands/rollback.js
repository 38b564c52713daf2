import { ApiClient } from '../api-client.js';
import { handled } from '../output.js';
import { withApi } from '../options.js';
import { followProgress } from '../progress.js';
export function rollbackCommand(y) {
    return y.command('rollback <stack> [release]', 'serve the previous release again (or the one named, e.g. v3)', (a) => withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('release', { type: 'string', describe: 'release tag from viking releases STACK (default: the one before the live one)' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }), handled(async (args) => {
        const started = Date.now();
        const api = await ApiClient.from(args);
        const res = await api.call('POST', `/v1/rollback/${encodeURIComponent(args.stack)}`, args.release ? { release: args.release } : {});
        const r = await followProgress(res, { json: args.json });
        if (!args.json)
            process.stdout.write(`-----> ${r.stack} rolled back to ${r.from} as release ${r.tag} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }));
}
//# sourceMappingURL=rollback.js.map
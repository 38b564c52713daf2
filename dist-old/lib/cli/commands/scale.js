import { VikingError } from '../../errors.js';
import { validateName } from '../../vikingfile/index.js';
import { ApiClient } from '../api-client.js';
import { handled } from '../output.js';
import { withApi } from '../options.js';
import { followProgress } from '../progress.js';
/** `web=3` pairs into {web: 3}. */
export function parseCounts(pairs) {
    const out = {};
    for (const p of pairs) {
        const m = /^([^=\s]+)=(\d+)$/.exec(p);
        if (!m)
            throw new VikingError('VIKING_E_BAD_REQUEST', `'${p}' is not NODE=N (e.g. web=3)`);
        validateName(m[1], 'node name');
        out[m[1]] = Number(m[2]);
    }
    if (Object.keys(out).length === 0)
        throw new VikingError('VIKING_E_BAD_REQUEST', 'name at least one NODE=N, e.g. viking scale hello web=3');
    return out;
}
export function scaleCommand(y) {
    return y.command('scale <stack> <counts..>', 'set the number of replicas of nodes: viking scale STACK NODE=N [NODE=N...]', (a) => withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('counts', { type: 'string', array: true, describe: 'NODE=N pairs' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' })
        .example('$0 scale hello web=4', 'run four replicas of web'), handled(async (args) => {
        const nodes = parseCounts(args.counts ?? []);
        const api = await ApiClient.from(args);
        const res = await api.call('POST', `/v1/scale/${encodeURIComponent(args.stack)}`, { nodes });
        // The API's last progress line already says "web: 2 -> 3 replica(s)" for each node.
        await followProgress(res, { json: args.json });
    }));
}
//# sourceMappingURL=scale.js.map
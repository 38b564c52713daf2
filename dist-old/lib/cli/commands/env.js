import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi } from '../options.js';
import { followProgress } from '../progress.js';
export function parseAssignments(pairs) {
    const out = {};
    for (const p of pairs) {
        const eq = p.indexOf('=');
        if (eq <= 0)
            throw new VikingError('VIKING_E_BAD_REQUEST', `'${p}' is not KEY=VALUE`);
        out[p.slice(0, eq)] = p.slice(eq + 1);
    }
    return out;
}
async function show(api, args) {
    const v = await api.get(`/v1/env/${encodeURIComponent(args.stack)}`);
    if (args.json)
        return printJson(v);
    const rows = [];
    for (const [node, env] of Object.entries(v.nodes).sort()) {
        for (const [k, val] of Object.entries({ ...env, ...v.overrides }).sort())
            rows.push([node, k, val, k in v.overrides ? 'viking env' : 'Vikingfile']);
    }
    if (rows.length === 0)
        for (const [k, val] of Object.entries(v.overrides).sort())
            rows.push(['*', k, val, 'viking env']);
    process.stdout.write(rows.length ? `${formatTable(['NODE', 'KEY', 'VALUE', 'FROM'], rows)}\n` : `${v.stack} has no environment variables\n`);
}
export function envCommand(y) {
    return y.command('env <stack> [action] [vars..]', 'show the stack\'s environment, or set K=V / unset K and restart its nodes', (a) => withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('action', { type: 'string', choices: ['set', 'unset'], describe: 'set K=V... or unset K...' })
        .positional('vars', { type: 'string', array: true })
        .option('json', { type: 'boolean', describe: 'print JSON (or progress events as JSON lines)' })
        .example('$0 env hello set GREETING=Howdy', 'restart hello with a new GREETING')
        .example('$0 env hello unset GREETING', 'back to the Vikingfile\'s value'), handled(async (args) => {
        const api = await ApiClient.from(args);
        if (!args.action)
            return show(api, args);
        const vars = args.vars ?? [];
        if (vars.length === 0)
            throw new VikingError('VIKING_E_BAD_REQUEST', `name what to ${args.action}: viking env ${args.stack} ${args.action === 'set' ? 'KEY=VALUE' : 'KEY'}`);
        const body = args.action === 'set' ? { set: parseAssignments(vars) } : { unset: vars };
        const res = await api.call('POST', `/v1/env/${encodeURIComponent(args.stack)}`, body);
        const r = await followProgress(res, { json: args.json });
        if (args.json)
            return;
        if (!r.changed)
            process.stdout.write(`-----> ${r.stack}: nothing changed, nothing restarted\n`);
        else if (r.release)
            process.stdout.write(`-----> ${r.stack} runs release ${r.release.tag} with the new environment\n`);
    }));
}
//# sourceMappingURL=env.js.map
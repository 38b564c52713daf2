import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, withJson } from '../options.js';
function hostTable(rows) {
    return formatTable(['HOST', 'IP', 'ROLE', 'STATE', 'JOBS', 'CAPACITY', 'TAGS', 'API'], rows.map((h) => [
        h.name,
        h.ip,
        h.leader ? 'leader' : h.master ? 'master' : 'worker',
        h.draining ? 'draining' : 'up',
        h.jobs,
        h.capacity.containers > 0 ? `${h.capacity.containers} containers` : 'unlimited',
        h.tags.join(','),
        h.api,
    ]));
}
async function list(args) {
    const rows = await (await ApiClient.from(args)).get('/v1/network');
    if (args.json)
        return printJson(rows);
    process.stdout.write(rows.length ? `${hostTable(rows)}\n` : 'no live hosts\n');
}
export function hostsCommand(y) {
    return y.command('hosts', 'list the hosts; drain or remove one (viking hosts --help)', (a) => a
        .command(['ls', '$0'], 'list the live hosts', (b) => withJson(b), handled(list))
        .command('show <name>', 'one host and the containers placed on it', (b) => withJson(b.positional('name', { type: 'string', demandOption: true })), handled(async (args) => {
        const h = await (await ApiClient.from(args)).get(`/v1/server/${encodeURIComponent(args.name)}`);
        if (args.json)
            return printJson(h);
        process.stdout.write(h.alive ? `${hostTable([{ ...h, jobs: h.jobs.length }])}\n\n` : `host ${h.name} is down\n\n`);
        process.stdout.write(h.jobs.length
            ? `${formatTable(['STACK', 'TAG', 'NODE', '#', 'STATE', 'CONTAINER'], h.jobs.map((j) => [j.stack, j.tag, j.node, j.instance, j.state, j.container]))}\n`
            : 'no containers placed here\n');
    }))
        .command('drain <name>', 'move the host\'s stateless containers away and place nothing new there (--undo to stop)', (b) => withApi(b.positional('name', { type: 'string', demandOption: true }).option('undo', { type: 'boolean', describe: 'stop draining' })), handled(async (args) => {
        const r = await (await ApiClient.from(args)).post(`/v1/server/${encodeURIComponent(args.name)}/drain`, { drain: !args.undo });
        process.stdout.write(r.draining ? `${r.name} is draining: its stateless containers move to other hosts (viking ps shows them)\n` : `${r.name} takes new containers again\n`);
    }))
        .command('rm <name>', 'forget a host that is gone for good (its volume pins go too)', (b) => withApi(b.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', describe: 'even while it is alive' })), handled(async (args) => {
        const r = await (await ApiClient.from(args)).delete(`/v1/server/${encodeURIComponent(args.name)}${args.force ? '?force=1' : ''}`);
        process.stdout.write(`${r.name} removed${r.unpinned.length ? `; volume nodes unpinned: ${r.unpinned.join(', ')}` : ''}\n`);
    }))
        .demandCommand(0), () => { });
}
//# sourceMappingURL=hosts.js.map
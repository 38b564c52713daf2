import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson } from '../options.js';
export function infoCommand(y) {
    return y.command('info', 'summary of the cluster: hosts, leader, stacks, containers by state', (a) => withJson(a), handled(async (args) => {
        const api = await ApiClient.from(args);
        const info = await api.get('/v1/info');
        if (args.json)
            return printJson(info);
        const states = Object.entries(info.jobs.byState).sort().map(([s, n]) => `${n} ${s}`).join(', ');
        process.stdout.write(`${formatTable(['WHAT', 'VALUE'], [
            ['api', `${api.base} (host ${info.host}, viking ${info.version})`],
            ['leader', info.leader ?? 'none elected'],
            ['hosts', `${info.hosts.total} (${info.hosts.masters} master, ${info.hosts.draining} draining): ${info.hosts.names.join(', ')}`],
            ['stacks', `${info.stacks.total} (${info.stacks.live} live)${info.stacks.names.length ? `: ${info.stacks.names.join(', ')}` : ''}`],
            ['containers', `${info.jobs.total}${states ? ` (${states})` : ''}`],
        ])}\n`);
    }));
}
//# sourceMappingURL=info.js.map
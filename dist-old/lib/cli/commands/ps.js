import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson } from '../options.js';
export function psCommand(y) {
    return y.command('ps [stack]', 'list the containers of every stack (or one), where they run and their state', (a) => withJson(a.positional('stack', { type: 'string', describe: 'only this stack' })), handled(async (args) => {
        const api = await ApiClient.from(args);
        const rows = await api.get(`/v1/ps${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`);
        if (args.json)
            return printJson(rows);
        if (rows.length === 0) {
            process.stdout.write('no containers scheduled; viking push a Vikingfile to start\n');
            return;
        }
        process.stdout.write(`${formatTable(['STACK', 'TAG', 'NODE', '#', 'HOST', 'STATE', 'CONTAINER', 'ENDPOINTS', 'REASON'], rows.map((r) => [r.stack, `${r.tag}${r.current ? '*' : ''}`, r.node, r.instance, r.host, r.state, r.container, r.endpoints.join(','), r.reason]))}\n`);
    }));
}
//# sourceMappingURL=ps.js.map
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson } from '../options.js';
export function stacksCommand(y) {
    return y.command('stacks', 'list the stacks with their current release and domains', (a) => withJson(a), handled(async (args) => {
        const rows = await (await ApiClient.from(args)).get('/v1/stacks');
        if (args.json)
            return printJson(rows);
        if (rows.length === 0) {
            process.stdout.write('no stacks yet; viking push a Vikingfile to make one\n');
            return;
        }
        process.stdout.write(`${formatTable(['STACK', 'RELEASE', 'RELEASES', 'UPDATED', 'DOMAINS'], rows.map((r) => [r.name, r.current, r.releases, r.updatedAt, r.domains.join(',')]))}\n`);
    }));
}
//# sourceMappingURL=stacks.js.map
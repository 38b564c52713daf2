import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson } from '../options.js';
export function releasesCommand(y) {
    return y.command('releases <stack>', 'list a stack\'s releases (what viking rollback can go back to)', (a) => withJson(a.positional('stack', { type: 'string', demandOption: true })), handled(async (args) => {
        const rows = await (await ApiClient.from(args)).get(`/v1/tags/${encodeURIComponent(args.stack)}`);
        if (args.json)
            return printJson(rows);
        process.stdout.write(`${formatTable(['RELEASE', 'LIVE', 'WHEN', 'BY', 'WHAT', 'CONTAINERS'], rows.map((r) => [r.tag, r.current ? '*' : '', r.at, r.by, r.origin.from ? `${r.origin.kind} of ${r.origin.from}` : r.origin.kind, r.jobs]))}\n`);
    }));
}
//# sourceMappingURL=releases.js.map
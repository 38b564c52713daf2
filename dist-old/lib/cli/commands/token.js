import { ApiClient } from '../api-client.js';
import { configPath, writeConfig } from '../config.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, withJson } from '../options.js';
async function create(args) {
    let made;
    if (args.etcd) {
        const [{ createToken }, { connectEtcd }] = await Promise.all([import('../../auth/tokens.js'), import('../../store/client.js')]);
        const client = connectEtcd(args.etcd);
        try {
            const t = await createToken(client, args.name, `${process.env.USER ?? 'someone'} (viking token create --etcd)`);
            made = { id: t.record.id, name: t.record.name, createdAt: t.record.createdAt, createdBy: t.record.createdBy, token: t.token };
        }
        finally {
            client.close();
        }
    }
    else {
        made = await (await ApiClient.from(args)).post('/v1/tokens', { name: args.name });
    }
    if (args.save)
        await writeConfig({ token: made.token, ...(args.api ? { api: args.api } : {}) });
    if (args.json)
        return printJson(made);
    process.stdout.write(`token ${made.name} (id ${made.id}):\n\n  ${made.token}\n\nIt is shown only now; viking keeps its hash.\n`);
    process.stdout.write(args.save ? `Saved in ${configPath()}.\n` : `Use it with: viking configure --token ${made.token}   (or VIKING_TOKEN=...)\n`);
}
export function tokenCommand(y) {
    return y.command('token', 'create, list and revoke API tokens (viking token --help)', (a) => a
        .command('create <name>', 'make a new API token (shown once)', (b) => withApi(b)
        .positional('name', { type: 'string', demandOption: true, describe: 'who or what uses it, e.g. alice or ci' })
        .option('etcd', { type: 'string', describe: 'write it straight into etcd (URLs, comma separated) instead of asking the API' })
        .option('save', { type: 'boolean', describe: 'also save it (and --api) in the CLI config file' })
        .option('json', { type: 'boolean', describe: 'print JSON' }), handled(create))
        .command(['list', 'ls'], 'list the tokens (names and ids; secrets are never kept)', (b) => withJson(b), handled(async (args) => {
        const rows = await (await ApiClient.from(args)).get('/v1/tokens');
        if (args.json)
            return printJson(rows);
        process.stdout.write(`${formatTable(['ID', 'NAME', 'CREATED', 'BY'], rows.map((t) => [t.id, t.name, t.createdAt, t.createdBy]))}\n`);
    }))
        .command('revoke <id>', 'delete a token: requests with it get 401 at once', (b) => withApi(b.positional('id', { type: 'string', demandOption: true })), handled(async (args) => {
        const r = await (await ApiClient.from(args)).delete(`/v1/tokens/${encodeURIComponent(args.id)}`);
        process.stdout.write(`token ${r.name} (${r.id}) revoked\n`);
    }))
        .demandCommand(1, 'name a token command: create, list or revoke'), () => { });
}
//# sourceMappingURL=token.js.map
/**
 * `viking token`: API tokens.
 *
 *   viking token create NAME [--save]      through the API (needs a token already)
 *   viking token create NAME --etcd URLS   straight into etcd, for whoever runs the
 *                                          cluster's etcd (first token, lost token)
 *   viking token list
 *   viking token revoke ID
 *
 * A token is shown once, when it is made: only its hash is kept.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { configPath, writeConfig } from '../config.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, withJson, type ApiArgs, type ReadArgs } from '../options.js';

interface CreateArgs extends ApiArgs {
  name: string;
  etcd?: string;
  save?: boolean;
  json?: boolean;
}

interface TokenView {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  token?: string;
}

async function create(args: CreateArgs): Promise<void> {
  let made: TokenView;
  if (args.etcd) {
    const [{ createToken }, { connectEtcd }] = await Promise.all([import('../../auth/tokens.js'), import('../../store/client.js')]);
    const client = connectEtcd(args.etcd);
    try {
      const t = await createToken(client, args.name, `${process.env.USER ?? 'someone'} (viking token create --etcd)`);
      made = { id: t.record.id, name: t.record.name, createdAt: t.record.createdAt, createdBy: t.record.createdBy, token: t.token };
    } finally {
      client.close();
    }
  } else {
    made = await (await ApiClient.from(args)).post<TokenView>('/v1/tokens', { name: args.name });
  }
  if (args.save) await writeConfig({ token: made.token!, ...(args.api ? { api: args.api } : {}) });
  if (args.json) return printJson(made);
  process.stdout.write(`token ${made.name} (id ${made.id}):\n\n  ${made.token}\n\nIt is shown only now; viking keeps its hash.\n`);
  process.stdout.write(args.save ? `Saved in ${configPath()}.\n` : `Use it with: viking configure --token ${made.token}   (or VIKING_TOKEN=...)\n`);
}

export function tokenCommand(y: Argv): Argv {
  return y.command(
    'token',
    'create, list and revoke API tokens (viking token --help)',
    (a) =>
      a
        .command<CreateArgs>(
          'create <name>',
          'make a new API token (shown once)',
          (b) =>
            withApi(b)
              .positional('name', { type: 'string', demandOption: true, describe: 'who or what uses it, e.g. alice or ci' })
              .option('etcd', { type: 'string', describe: 'write it straight into etcd (URLs, comma separated) instead of asking the API' })
              .option('save', { type: 'boolean', describe: 'also save it (and --api) in the CLI config file' })
              .option('json', { type: 'boolean', describe: 'print JSON' }) as unknown as Argv<CreateArgs>,
          handled(create),
        )
        .command<ReadArgs>(
          ['list', 'ls'],
          'list the tokens (names and ids; secrets are never kept)',
          (b) => withJson(b),
          handled(async (args: ReadArgs) => {
            const rows = await (await ApiClient.from(args)).get<TokenView[]>('/v1/tokens');
            if (args.json) return printJson(rows);
            process.stdout.write(`${formatTable(['ID', 'NAME', 'CREATED', 'BY'], rows.map((t) => [t.id, t.name, t.createdAt, t.createdBy]))}\n`);
          }),
        )
        .command<ApiArgs & { id: string }>(
          'revoke <id>',
          'delete a token: requests with it get 401 at once',
          (b) => withApi(b.positional('id', { type: 'string', demandOption: true })) as unknown as Argv<ApiArgs & { id: string }>,
          handled(async (args: ApiArgs & { id: string }) => {
            const r = await (await ApiClient.from(args)).delete<{ id: string; name: string }>(`/v1/tokens/${encodeURIComponent(args.id)}`);
            process.stdout.write(`token ${r.name} (${r.id}) revoked\n`);
          }),
        )
        .demandCommand(1, 'name a token command: create, list or revoke'),
    () => {},
  );
}

/**
 * `viking token`: API tokens.
 *
 *   viking token create NAME [--role admin|deployer|reader] [--stacks a,team-*]
 *                            [--domains d,*.d] [--expires 30d] [--save]
 *                                          through the API (needs an admin token)
 *   viking token create NAME --etcd URLS   straight into etcd, for whoever runs the
 *                                          cluster's etcd (first token, lost token)
 *   viking token list [--json]             role, stacks, expiry of each
 *   viking token rotate ID [--expires 30d] a new secret; the old one stops at once
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
  role?: string;
  stacks?: string;
  domains?: string;
  expires?: string;
}

interface TokenView {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  role: string;
  stacks?: string[];
  domains?: string[];
  expiresAt?: string;
  rotatedAt?: string;
  token?: string;
}

/** `a, b ,team-*` -> ['a', 'b', 'team-*']. */
export function splitList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** The STACKS, EXPIRES columns of a token: `all` and `never` when unset, `expired` when past. */
export function tokenRow(t: TokenView, now = Date.now()): string[] {
  const expired = t.expiresAt !== undefined && !(Date.parse(t.expiresAt) > now);
  return [
    t.id,
    t.name,
    t.role,
    t.stacks?.join(',') ?? 'all',
    t.domains?.join(',') ?? '-',
    t.expiresAt === undefined ? 'never' : `${t.expiresAt}${expired ? ' (expired)' : ''}`,
    t.createdAt,
    t.createdBy,
  ];
}

function printMade(made: TokenView, what: string): void {
  const scope = `${made.role}${made.stacks ? `, stacks ${made.stacks.join(',')}` : ''}${made.expiresAt ? `, expires ${made.expiresAt}` : ''}`;
  process.stdout.write(`${what} ${made.name} (id ${made.id}; ${scope}):\n\n  ${made.token}\n\nIt is shown only now; viking keeps its hash.\n`);
}

async function create(args: CreateArgs): Promise<void> {
  let made: TokenView;
  const stacks = splitList(args.stacks);
  const domains = splitList(args.domains);
  const grant = {
    ...(args.role !== undefined ? { role: args.role as 'admin' | 'deployer' | 'reader' } : {}),
    ...(stacks ? { stacks } : {}),
    ...(domains ? { domains } : {}),
    ...(args.expires !== undefined ? { expires: args.expires } : {}),
  };
  if (args.etcd) {
    const [{ createToken, publicView }, { connectEtcd }] = await Promise.all([import('../../auth/tokens.js'), import('../../store/client.js')]);
    const client = connectEtcd(args.etcd);
    try {
      const t = await createToken(client, args.name, `${process.env.USER ?? 'someone'} (viking token create --etcd)`, grant);
      made = { ...publicView(t.record), token: t.token };
    } finally {
      client.close();
    }
  } else {
    made = await (await ApiClient.from(args)).post<TokenView>('/v1/tokens', { name: args.name, ...grant });
  }
  if (args.save) await writeConfig({ token: made.token!, ...(args.api ? { api: args.api } : {}) });
  if (args.json) return printJson(made);
  printMade(made, 'token');
  process.stdout.write(args.save ? `Saved in ${configPath()}.\n` : `Use it with: viking configure --token ${made.token}   (or VIKING_TOKEN=...)\n`);
}

export function tokenCommand(y: Argv): Argv {
  return y.command(
    'token',
    'create, list, rotate and revoke API tokens (viking token --help)',
    (a) =>
      a
        .command<CreateArgs>(
          'create <name>',
          'make a new API token (shown once)',
          (b) =>
            withApi(b)
              .positional('name', { type: 'string', demandOption: true, describe: 'who or what uses it, e.g. alice or ci' })
              .option('etcd', { type: 'string', describe: 'write it straight into etcd (URLs, comma separated) instead of asking the API' })
              .option('role', { type: 'string', choices: ['admin', 'deployer', 'reader'], describe: 'what it may do (default admin): admin everything; deployer push/scale/env/rollback/rm/logs of its stacks; reader every read' })
              .option('stacks', { type: 'string', describe: "stacks it is scoped to, comma separated; * as a wildcard (team-*); '*' for all. Deployers need it" })
              .option('domains', { type: 'string', describe: 'deployer only: wildcard or contested domains its pushes may claim (d.com,*.team.d.com)' })
              .option('expires', { type: 'string', describe: 'lifetime: 45s, 90m, 12h, 30d, 2w (default: never)' })
              .option('save', { type: 'boolean', describe: 'also save it (and --api) in the CLI config file' })
              .option('json', { type: 'boolean', describe: 'print JSON' }) as unknown as Argv<CreateArgs>,
          handled(create),
        )
        .command<ReadArgs>(
          ['list', 'ls'],
          'list the tokens: role, stacks, expiry (secrets are never kept)',
          (b) => withJson(b),
          handled(async (args: ReadArgs) => {
            const rows = await (await ApiClient.from(args)).get<TokenView[]>('/v1/tokens');
            if (args.json) return printJson(rows);
            process.stdout.write(`${formatTable(['ID', 'NAME', 'ROLE', 'STACKS', 'DOMAINS', 'EXPIRES', 'CREATED', 'BY'], rows.map((t) => tokenRow(t)))}\n`);
          }),
        )
        .command<ApiArgs & { id: string; expires?: string; json?: boolean }>(
          'rotate <id>',
          'give a token a new secret (shown once); the old secret stops working at once',
          (b) =>
            withApi(b.positional('id', { type: 'string', demandOption: true }))
              .option('expires', { type: 'string', describe: 'new lifetime from now (default: the lifetime it had)' })
              .option('json', { type: 'boolean', describe: 'print JSON' }) as unknown as Argv<ApiArgs & { id: string; expires?: string; json?: boolean }>,
          handled(async (args: ApiArgs & { id: string; expires?: string; json?: boolean }) => {
            const made = await (await ApiClient.from(args)).post<TokenView>(`/v1/tokens/${encodeURIComponent(args.id)}/rotate`, args.expires !== undefined ? { expires: args.expires } : {});
            if (args.json) return printJson(made);
            printMade(made, 'token rotated:');
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
        .demandCommand(1, 'name a token command: create, list, rotate or revoke'),
    () => {},
  );
}

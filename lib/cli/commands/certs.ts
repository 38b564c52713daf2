/**
 * `viking certs`: the TLS certificates every router serves.
 *
 *   viking certs [--json]                          list: domain, names, source, issuer, expiry, state, last error
 *   viking certs add DOMAIN --cert FILE --key FILE a custom certificate (wildcards: '*.example.com'), checked first
 *   viking certs rm DOMAIN                         remove one
 *
 * The key file is read here and sent to the API once; nothing prints it.
 */
import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withApi, withJson, type ApiArgs, type ReadArgs } from '../options.js';
import { VikingError } from '../../errors.js';
import type { CertSummary } from '../../certs/record.js';

interface AddArgs extends ApiArgs {
  domain: string;
  cert: string;
  key: string;
  json?: boolean;
}

/** "2027-02-28 (89 days)" or "-". */
export function expiry(notAfter: string | null, now = Date.now()): string {
  if (!notAfter) return '-';
  const days = Math.floor((Date.parse(notAfter) - now) / 86_400_000);
  return `${notAfter.slice(0, 10)} (${days >= 0 ? `${days} days` : 'expired'})`;
}

export function certRows(list: CertSummary[], now = Date.now()): string {
  return formatTable(
    ['DOMAIN', 'NAMES', 'SOURCE', 'ISSUER', 'EXPIRES', 'STATE', 'LAST ERROR'],
    list.map((c) => [c.domain, c.names.join(',') || '-', c.source, c.issuer ?? '-', expiry(c.notAfter, now), c.state, c.lastError ?? '-']),
  );
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function certsCommand(y: Argv): Argv {
  return y.command(
    'certs',
    'TLS certificates of the domains: list, add a custom one, remove (viking certs --help)',
    (a) =>
      a
        .command<ReadArgs>(
          ['ls', '$0'],
          'list the certificates (never their keys)',
          (b) => withJson(b),
          handled(async (args: ReadArgs) => {
            const list = await (await ApiClient.from(args)).get<CertSummary[]>('/v1/certs');
            if (args.json) return printJson(list);
            process.stdout.write(list.length === 0 ? 'no certificates yet\n' : `${certRows(list)}\n`);
          }),
        )
        .command<AddArgs>(
          'add <domain>',
          "add or replace a custom certificate for DOMAIN (e.g. app.example.com or '*.example.com')",
          (b) =>
            withApi(b)
              .positional('domain', { type: 'string', demandOption: true })
              .option('cert', { type: 'string', demandOption: true, describe: 'PEM file: the certificate first, then its chain' })
              .option('key', { type: 'string', demandOption: true, describe: 'PEM file: the private key (unencrypted)' })
              .option('json', { type: 'boolean', describe: 'print JSON' }) as unknown as Argv<AddArgs>,
          handled(async (args: AddArgs) => {
            const [cert, key] = await Promise.all([readPem(args.cert, 'certificate'), readPem(args.key, 'key')]);
            const added = await (await ApiClient.from(args)).post<CertSummary>('/v1/certs', { domain: args.domain, cert, key });
            if (args.json) return printJson(added);
            process.stdout.write(`certificate for ${added.domain} added (${added.names.join(', ')}; issuer ${added.issuer ?? '-'}; expires ${expiry(added.notAfter)}); every router serves it within seconds\n`);
          }),
        )
        .command<ApiArgs & { domain: string }>(
          ['rm <domain>', 'remove <domain>'],
          'remove the certificate of DOMAIN (its plain HTTP is no longer redirected)',
          (b) => withApi(b.positional('domain', { type: 'string', demandOption: true })) as unknown as Argv<ApiArgs & { domain: string }>,
          handled(async (args: ApiArgs & { domain: string }) => {
            const r = await (await ApiClient.from(args)).delete<CertSummary>(`/v1/certs/${encodeURIComponent(args.domain)}`);
            process.stdout.write(`certificate for ${r.domain} removed\n`);
          }),
        ),
    () => {},
  );
}

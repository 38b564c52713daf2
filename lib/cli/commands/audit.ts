/**
 * `viking audit [--stack S] [--since 1h] [-f] [--json]`: who changed what.
 *
 * Reads GET /v1/audit: the newest entries the token may see, oldest first.
 * With -f it asks again every second for entries written after the etcd
 * revision of the last answer (never by time, so an API host whose clock is
 * behind cannot hide an entry), until interrupted.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { StoredAuditEntry } from '../../audit/log.js';

interface AuditArgs extends ReadArgs {
  stack?: string;
  since?: string;
  follow?: boolean;
  limit?: number;
}

interface AuditAnswer {
  entries: StoredAuditEntry[];
  revision: string;
}

const HEADERS = ['TIME', 'TOKEN', 'FROM', 'REQUEST', 'STACK', 'STATUS', 'RESULT', 'RELEASE'];

/** One table row of an entry. */
export function auditRow(e: StoredAuditEntry): string[] {
  return [
    e.at,
    `${e.token.name} (${e.token.id})${e.user ? ` as ${e.user}` : ''}`,
    e.address,
    `${e.method} ${e.path}`,
    e.stack ?? '-',
    String(e.status),
    e.result,
    e.release ?? '-',
  ];
}

function query(args: AuditArgs, afterRevision?: string): string {
  const q = new URLSearchParams();
  if (args.stack) q.set('stack', args.stack);
  if (args.since && afterRevision === undefined) q.set('since', args.since);
  // --limit is for the first answer; following asks for everything new (up to the API's most a call).
  if (afterRevision !== undefined) {
    q.set('afterRevision', afterRevision);
    q.set('limit', '5000');
  } else if (args.limit) q.set('limit', String(args.limit));
  const s = q.toString();
  return `/v1/audit${s ? `?${s}` : ''}`;
}

export function auditCommand(y: Argv): Argv {
  return y.command<AuditArgs>(
    'audit',
    'who changed what: the audit log of every change (--stack, --since 1h, -f)',
    (a) =>
      withJson(a)
        .option('stack', { type: 'string', describe: 'only entries about this stack' })
        .option('since', { type: 'string', describe: 'only entries of the last 45s, 90m, 12h, 30d...' })
        .option('limit', { type: 'number', describe: 'most entries shown (default 200)' })
        .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new entries as they come' }) as unknown as Argv<AuditArgs>,
    handled(async (args: AuditArgs) => {
      const api = await ApiClient.from(args);
      let answer = await api.get<AuditAnswer>(query(args));
      if (args.json && !args.follow) return printJson(answer.entries);
      const print = (entries: StoredAuditEntry[], header: boolean): void => {
        if (args.json) {
          for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
          return;
        }
        const table = formatTable(HEADERS, entries.map(auditRow));
        const lines = table.split('\n');
        process.stdout.write(`${(header ? lines : lines.slice(1)).join('\n')}\n`);
      };
      print(answer.entries, true);
      if (!args.follow) return;
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      while (!stop) {
        await new Promise((r) => setTimeout(r, 1000));
        answer = await api.get<AuditAnswer>(query(args, answer.revision));
        if (answer.entries.length > 0) print(answer.entries, false);
      }
    }),
  );
}

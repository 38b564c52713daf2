/**
 * `viking logs STACK [NODE] [-f]`: the log of every replica, from whichever
 * host runs it, each line prefixed with its replica (`web.1 | ...`). Without
 * NODE, every node of the stack's live release. With -f new lines follow as
 * they are written, until Ctrl-C.
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient, readLines } from '../api-client.js';
import { handled } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import type { ReplicaLine } from '../../api/logs-route.js';
import type { JobRow } from '../../api/wire.js';
import type { AccessLine } from '../../router/access-log.js';
import { KEEP } from '../../router/access-hub.js';

interface LogsArgs extends ApiArgs {
  stack: string;
  node?: string;
  follow?: boolean;
  tail?: string;
  tag?: string;
  timestamps?: boolean;
  json?: boolean;
  access?: boolean;
}

export function logsCommand(y: Argv): Argv {
  return y.command<LogsArgs>(
    'logs <stack> [node]',
    'show the logs of every replica of a node (or of the whole stack); -f to follow',
    (a) =>
      withApi(a)
        .positional('stack', { type: 'string', demandOption: true })
        .positional('node', { type: 'string', describe: 'only this node (default: every node of the live release)' })
        .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new lines as they are written' })
        .option('tail', { alias: 'n', type: 'string', default: '100', describe: 'lines per replica to start with, or "all"' })
        .option('tag', { type: 'string', describe: 'a release other than the live one, e.g. v3' })
        .option('timestamps', { alias: 't', type: 'boolean', describe: 'show when each line was written' })
        .option('json', { type: 'boolean', describe: 'one JSON object per line' })
        .option('access', { type: 'boolean', describe: 'the routers\' access log of the nodes with access_log: true (every host\'s router), instead of the app\'s' })
        .example('$0 logs hello web -f', 'follow both replicas of hello\'s web node')
        .example('$0 logs hello --access -f', 'follow the requests every router sends to hello') as unknown as Argv<LogsArgs>,
    handled(async (args: LogsArgs) => {
      if (args.tail !== 'all' && !/^\d+$/.test(args.tail ?? '100')) throw new VikingError('VIKING_E_BAD_REQUEST', `--tail takes a number of lines or "all", not '${args.tail}'`);
      const api = await ApiClient.from(args);
      if (args.access) return accessLog(api, args);
      const stack = await api.get<{ current: string | null; jobs: JobRow[] }>(`/v1/stack/${encodeURIComponent(args.stack)}`);
      const tag = args.tag ?? stack.current ?? undefined;
      const nodes = args.node ? [args.node] : [...new Set(stack.jobs.filter((j) => !tag || j.tag === tag).map((j) => j.node))].sort();
      if (nodes.length === 0) throw new VikingError('VIKING_E_NOT_FOUND', `${args.stack} has no replicas running${tag ? ` in ${tag}` : ''}`);
      const labels = stack.jobs.filter((j) => nodes.includes(j.node)).map((j) => `${j.node}.${j.instance}`);
      let width = Math.max(5, ...labels.map((l) => l.length));
      const query = new URLSearchParams({ format: 'ndjson', tail: args.tail ?? '100' });
      if (args.follow) query.set('follow', '1');
      if (args.tag) query.set('tag', args.tag);
      await Promise.all(
        nodes.map(async (node) => {
          const res = await api.call('GET', `/v1/logs/${encodeURIComponent(args.stack)}/${encodeURIComponent(node)}?${query}`);
          await readLines(res, (text) => {
            if (args.json) return void process.stdout.write(`${text}\n`);
            const l = JSON.parse(text) as ReplicaLine;
            width = Math.max(width, l.replica.length);
            process.stdout.write(`${l.replica.padEnd(width)} | ${args.timestamps && l.time ? `${l.time} ` : ''}${l.line}\n`);
          });
        }),
      );
    }),
  );
}

/** `--access`: the routers' lines of the stack (or node), merged by the API from every host, one per request. */
async function accessLog(api: ApiClient, args: LogsArgs): Promise<void> {
  const tail = args.tail === 'all' ? KEEP : Math.min(Number(args.tail ?? '100'), KEEP);
  const query = new URLSearchParams({ tail: String(tail) });
  if (args.node) query.set('node', args.node);
  if (args.follow) query.set('follow', '1');
  const res = await api.call('GET', `/v1/access/${encodeURIComponent(args.stack)}?${query}`);
  await readLines(res, (text) => {
    if (args.json) return void process.stdout.write(`${text}\n`);
    process.stdout.write(`${accessText(JSON.parse(text) as AccessLine & { dropped?: number; where?: string; error?: string })}\n`);
  });
}

/** One line of the access log as text: time, router, replica, status, method, domain+path, duration, bytes. */
export function accessText(l: AccessLine & { dropped?: number; where?: string; error?: string }): string {
  const time = clock(l.time);
  if (l.error !== undefined) return `${time} ${l.router ?? '?'}: ${l.error}`;
  if (l.dropped !== undefined) return `${time} ${l.router ?? '?'}: ${l.dropped} line(s) dropped (${l.where === 'reader' ? 'read too slowly' : 'the router could not keep up'})`;
  const replica = l.replica ? `${l.replica}@${l.host}` : '(router)';
  return `${time} ${(l.router ?? '').padEnd(12)} ${replica.padEnd(16)} ${l.status} ${l.method.padEnd(6)} ${l.domain}${l.path}${l.path_cut ? '…' : ''} ${l.duration_ms.toFixed(1)}ms in=${l.bytes_in} out=${l.bytes_out}`;
}

const clock = (time: string): string => time.replace('T', ' ').replace('Z', '');

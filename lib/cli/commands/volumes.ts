/**
 * `viking volumes [STACK]`: every volume of the token's stacks, with its
 * host, node, path and size (--json for the API's answer).
 * `viking volume backup STACK NODE PATH > file.tar`: the volume as a tar,
 * streamed through the API from the host that holds it.
 * `viking volume restore STACK NODE PATH < file.tar`: stops the node's
 * containers on that host, replaces the volume's content with the tar's,
 * and lets the host start them again.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson, VikingError } from '../output.js';
import { withApi, withJson, type ApiArgs, type ReadArgs } from '../options.js';
import type { VolumeRow } from '../../ops/volume-ops.js';
import type { RestoreResult } from '../../ops/volume-ops.js';

interface VolumesArgs extends ReadArgs {
  stack?: string;
}

interface VolumeArgs extends ApiArgs {
  action: 'backup' | 'restore';
  stack: string;
  node: string;
  path: string;
}

export function formatBytes(n: number | null): string {
  if (n === null) return '?';
  if (n < 1024) return `${n}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)}${units[i]}`;
}

export function volumesCommand(y: Argv): Argv {
  return y
    .command<VolumesArgs>(
      'volumes [stack]',
      'list the volumes of every stack (or one): host, node, path, size',
      (a) => withJson(a.positional('stack', { type: 'string', describe: 'only this stack' })) as unknown as Argv<VolumesArgs>,
      handled(async (args: VolumesArgs) => {
        const api = await ApiClient.from(args);
        const rows = await api.get<VolumeRow[]>(`/v1/volumes${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`);
        if (args.json) return printJson(rows);
        if (rows.length === 0) {
          process.stdout.write('no volumes; a node gets one with volume: [/path] in the Vikingfile\n');
          return;
        }
        process.stdout.write(`${formatTable(['STACK', 'NODE', 'PATH', 'HOST', 'SIZE', 'VOLUME'], rows.map((r) => [r.stack, r.node, r.path, r.host, formatBytes(r.size), r.volume]))}\n`);
      }),
    )
    .command<VolumeArgs>(
      'volume <action> <stack> <node> <path>',
      'back a volume up to stdout as a tar, or restore it from stdin (the node is stopped meanwhile)',
      (a) =>
        withApi(a)
          .positional('action', { choices: ['backup', 'restore'] as const, demandOption: true })
          .positional('stack', { type: 'string', demandOption: true })
          .positional('node', { type: 'string', demandOption: true })
          .positional('path', { type: 'string', demandOption: true, describe: 'the volume path as the Vikingfile declares it, e.g. /data' })
          .example('$0 volume backup shop db /data > db.tar', 'a tar of the volume (entries data/...)')
          .example('$0 volume restore shop db /data < db.tar', 'stop db, put the tar back, start db') as unknown as Argv<VolumeArgs>,
      handled(async (args: VolumeArgs) => {
        const api = await ApiClient.from(args);
        const url = `/v1/volume/${encodeURIComponent(args.stack)}/${encodeURIComponent(args.node)}/${args.action}?path=${encodeURIComponent(args.path)}`;
        if (args.action === 'backup') {
          if (process.stdout.isTTY) throw new VikingError('VIKING_E_BAD_REQUEST', 'the backup is a tar archive: redirect it to a file (viking volume backup STACK NODE PATH > backup.tar)');
          const res = await api.call('GET', url);
          if (!res.body) throw new VikingError('VIKING_E_INTERNAL', 'the API sent no archive');
          await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), process.stdout);
          return;
        }
        if (process.stdin.isTTY) throw new VikingError('VIKING_E_BAD_REQUEST', 'restore reads the tar archive from stdin: viking volume restore STACK NODE PATH < backup.tar');
        const body = Readable.toWeb(process.stdin);
        const r = (await (await api.call('POST', url, body, { 'content-type': 'application/x-tar' })).json()) as RestoreResult;
        process.stdout.write(`restored ${formatBytes(r.bytes)} into ${r.stack}/${r.node}:${r.path} on ${r.host} (volume ${r.volume}); ${r.stopped} container(s) stopped, the host starts the node again (viking ps ${r.stack})\n`);
      }),
    );
}

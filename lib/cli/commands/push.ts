/**
 * `viking push [DIR]`: packs the stack directory (minus .vikingignore),
 * uploads it to the API and prints each stage as the cluster reports it,
 * then the release and the URLs that reach it. The token is checked before
 * anything is packed, so a refused push uploads nothing.
 */
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pack as packDir } from 'tar-fs';
import type { Argv } from 'yargs';
import { loadVikingfile } from '../../vikingfile/index.js';
import { MAX_SCALE_CEILING } from '../../store/settings.js';
import { ApiClient } from '../api-client.js';
import { loadIgnore } from '../ignore.js';
import { UploadProgress, formatBytes, sourceSize } from '../upload-progress.js';
import { handled } from '../output.js';
import { withApi, type ApiArgs } from '../options.js';
import { followProgress } from '../progress.js';
import type { PushResultLine } from '../../api/push-route.js';

interface PushArgs extends ApiArgs {
  dir: string;
  json?: boolean;
}

export function pushCommand(y: Argv): Argv {
  return y.command<PushArgs>(
    'push [dir]',
    'upload a stack directory, build its images and deploy it',
    (a) =>
      withApi(a)
        .positional('dir', { type: 'string', default: '.', describe: 'directory with the Vikingfile' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }) as unknown as Argv<PushArgs>,
    handled(async (args: PushArgs) => push(args)),
  );
}

async function push(args: PushArgs): Promise<void> {
  const dir = path.resolve(args.dir);
  // Checked here first: a typo is reported before anything is uploaded.
  // The cluster may allow more replicas than the default: it checks max-scale itself.
  const { vikingfile } = await loadVikingfile(dir, { maxScale: MAX_SCALE_CEILING });
  const api = await ApiClient.from(args);
  await api.get('/v1/whoami');
  const ignored = await loadIgnore(dir);
  const say = (line: string): void => {
    if (!args.json) process.stdout.write(`${line}\n`);
  };
  const size = await sourceSize(dir, ignored);
  say(`pushing ${vikingfile.stack} from ${dir} to ${api.base} (${size.files} files, ${formatBytes(size.bytes)})`);
  const started = Date.now();
  const progress = new UploadProgress(size.bytes, process.stderr, !args.json);
  // tar-fs streams are streamx, not node streams: a PassThrough makes them web-convertible.
  const tar = new PassThrough();
  (packDir(dir, { ignore: (name) => ignored(path.relative(dir, name)) }) as unknown as Readable).pipe(tar);
  tar.on('data', (chunk: Buffer) => progress.add(chunk.length));
  const res = await api.call('POST', '/v1/push', Readable.toWeb(tar), { 'content-type': 'application/x-tar' });
  say(`uploaded ${formatBytes(progress.done())} in ${Date.now() - started} ms`);
  const result = await followProgress<PushResultLine>(res, { json: args.json, say });
  const host = new URL(api.base).hostname;
  say(`-----> ${result.stack} release ${result.tag} deployed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // Pushed through a host started with --no-router: its router port means nothing.
  if (result.routerPort === 0 && result.domains.length > 0) say(`       ${result.domains.join(', ')}: served by the cluster's router hosts (viking hosts, ROUTER column)`);
  else for (const d of result.domains) {
    const port = result.routerPort === 80 ? '' : `:${result.routerPort}`;
    say(`       http://${d.replace(/^\*\./, 'www.')}${port}/    (curl -H 'Host: ${d.replace(/^\*\./, 'www.')}' http://${host}${port}/)`);
  }
}

/**
 * `viking push [DIR]`: packs the stack directory (minus .vikingignore),
 * uploads it to the API and prints each stage as the cluster reports it,
 * then the release and the URLs that reach it.
 */
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pack as packDir } from 'tar-fs';
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { loadVikingfile } from '../../vikingfile/index.js';
import { apiFetch, apiUrl, errorFromBody } from '../api-client.js';
import { loadIgnore } from '../ignore.js';
import { handled } from '../output.js';
import type { PushStreamLine } from '../../api/push-route.js';

interface PushArgs {
  dir: string;
  api?: string;
  json?: boolean;
}

export function pushCommand(y: Argv): Argv {
  return y.command<PushArgs>(
    'push [dir]',
    'upload a stack directory, build its images and deploy it',
    (a) =>
      a
        .positional('dir', { type: 'string', default: '.', describe: 'directory with the Vikingfile' })
        .option('api', { type: 'string', describe: 'API URL (default $VIKING_API or http://127.0.0.1:8791)' })
        .option('json', { type: 'boolean', describe: 'print progress events as JSON lines' }) as unknown as Argv<PushArgs>,
    handled(async (args: PushArgs) => push(args)),
  );
}

async function push(args: PushArgs): Promise<void> {
  const dir = path.resolve(args.dir);
  // Checked here first: a typo is reported before anything is uploaded.
  const { vikingfile } = await loadVikingfile(dir);
  const ignored = await loadIgnore(dir);
  const started = Date.now();
  let sent = 0;
  // tar-fs streams are streamx, not node streams: a PassThrough makes them web-convertible.
  const tar = new PassThrough();
  (packDir(dir, { ignore: (name) => ignored(path.relative(dir, name)) }) as unknown as Readable).pipe(tar);
  tar.on('data', (chunk: Buffer) => (sent += chunk.length));
  const base = apiUrl(args.api);
  const say = (line: string): void => {
    if (!args.json) process.stdout.write(`${line}\n`);
  };
  say(`pushing ${vikingfile.stack} from ${dir} to ${base}`);
  const res = await apiFetch(base, '/v1/push', {
    method: 'POST',
    headers: { 'content-type': 'application/x-tar', 'x-viking-user': process.env.USER ?? 'unknown' },
    body: Readable.toWeb(tar) as unknown as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  if (!res.ok) throw errorFromBody(await res.json().catch(() => ({})), res.status);
  say(`uploaded ${(sent / 1024).toFixed(1)} KiB in ${Date.now() - started} ms`);
  let result: Extract<PushStreamLine, { type: 'result' }> | undefined;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!text.trim()) continue;
      const line = JSON.parse(text) as PushStreamLine;
      if (args.json) process.stdout.write(`${text}\n`);
      if (line.type === 'progress') say(line.stage === 'build' || line.stage === 'registry' ? `  ${line.message}` : `-----> ${line.message}`);
      else if (line.type === 'error') throw errorFromBody(line, line.statusCode);
      else result = line;
    }
  }
  if (!result) throw new VikingError('VIKING_E_INTERNAL', 'the API closed the push without a result; check the host log');
  const host = new URL(base).hostname;
  say(`-----> ${result.stack} release ${result.tag} deployed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const d of result.domains) {
    const port = result.routerPort === 80 ? '' : `:${result.routerPort}`;
    say(`       http://${d.replace(/^\*\./, 'www.')}${port}/    (curl -H 'Host: ${d.replace(/^\*\./, 'www.')}' http://${host}${port}/)`);
  }
}

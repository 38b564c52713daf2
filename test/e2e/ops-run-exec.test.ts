/**
 * viking run, viking exec and volume backup/restore end to end on the real
 * parts: one etcd, two `viking host` processes (A, a master, which the CLI
 * talks to; B, which the stack's volume node `db` is placed on by its tag),
 * so every session and every archive crosses from A's API to B's and on to
 * B's Docker Engine.
 *
 *   - run streams stdout and stderr apart, returns the command's exit code,
 *     has the node's env and volume, and leaves no container behind;
 *     --detach leaves one running that `ps --all` lists, gone once it exits;
 *   - exec in an interactive session driven through a pseudo-terminal
 *     (util-linux `script`): the shell sees a tty, the exit code comes back;
 *     over the websocket with a TTY, a resize reaches the shell's terminal;
 *   - a volume backup restored after the data changed gives back exactly
 *     the bytes backed up (the node was stopped and started again).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { extract } from 'tar-stream';
import { WebSocket } from 'ws';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { NO_CONFIG, VIKING_BIN, runCli, startHostProcesses, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { fixedKey } from '../../lib/store/keys.js';
import { ONEOFF_LABEL } from '../../lib/ops/oneoff.js';

const stack = uniqueName('ops');
const tagB = uniqueName('tb');
const nameA = uniqueName('ops-a');
const nameB = uniqueName('ops-b');
let etcd: TestEtcd;
let client: Etcd3;
let a: HostProcess;
let b: HostProcess;
let work: string;
const started = Date.now();

const VIKINGFILE = `viking:
  name: ${stack}
deploy:
  db:
    image: viking/busybox
    run: sleep 100000
    volume: [/data]
    tags: [${tagB}]
    env:
      MARK: marked-${stack}
  web:
    image: viking/busybox
    run: sleep 100000
`;

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-ops-'));
  etcd = await startTestEtcd('ops');
  client = connectEtcd(etcd.url);
  [a, b] = (await startHostProcesses([
    { name: nameA, etcd: etcd.url, master: true, dataDir: path.join(work, 'a'), extra: ['--lease-ttl', '2'] },
    { name: nameB, etcd: etcd.url, dataDir: path.join(work, 'b'), extra: ['--lease-ttl', '2', '--tags', tagB] },
  ])) as [HostProcess, HostProcess];
  const src = path.join(work, 'src');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'Vikingfile'), VIKINGFILE);
  const push = await runCli(['push', src, '--api', a.api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);
  assert.equal(await client.get(fixedKey(stack, 'db')).string(), nameB, 'db is pinned to B, away from the API the CLI talks to');
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await removeHostContainers(nameA);
  await removeHostContainers(nameB);
  for (const host of [nameA, nameB]) {
    const left = await docker.listContainers({ all: true, filters: { label: [`${ONEOFF_LABEL.host}=${host}`] } });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  }
  await removeStackArtifacts(stack);
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
  process.stdout.write(`# ops-run-exec: ${((Date.now() - started) / 1000).toFixed(1)} s wall\n`);
});

const oneOffs = async (): Promise<Array<{ Id: string }>> =>
  docker.listContainers({ all: true, filters: { label: [`${ONEOFF_LABEL.host}=${nameB}`, `viking.stack=${stack}`] } });

/** The CLI with its stdin from `input` (a file) and its stdout into `output` (a file); stderr and the exit code back. */
async function cliFiles(args: string[], io: { input?: string; output?: string }): Promise<{ code: number; stderr: string; stdout: string }> {
  const inFd = io.input ? await open(io.input, 'r') : undefined;
  const outFd = io.output ? await open(io.output, 'w') : undefined;
  try {
    return await new Promise((resolve) => {
      const child = spawn(process.execPath, [VIKING_BIN, ...args], {
        stdio: [inFd ? inFd.fd : 'ignore', outFd ? outFd.fd : 'pipe', 'pipe'],
        env: { ...process.env, VIKING_CONFIG: NO_CONFIG, VIKING_TOKEN: a.token },
      });
      let stderr = '';
      let stdout = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code: code ?? -1, stderr, stdout }));
    });
  } finally {
    await inFd?.close();
    await outFd?.close();
  }
}

test('run: output streamed (stdout and stderr apart), the exit code returned, the env and volume there, the container removed', async () => {
  const r = await runCli(['run', stack, 'db', '--api', a.api, '--', 'sh', '-c', 'echo "out $MARK $VIKING_NODE"; echo err >&2; echo kept > /data/from-run; exit 7']);
  assert.equal(r.code, 7, `exit code of the command: ${r.stderr}`);
  assert.equal(r.stdout, `out marked-${stack} db\n`);
  assert.equal(r.stderr, 'err\n');
  assert.deepEqual(await oneOffs(), [], 'the one-off container is removed once it ended');
  // It ran on B with db's volume: an exec in db's replica (on B) reads what it wrote.
  const e = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'cat', '/data/from-run']);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, 'kept\n');
  // Viking's own failures are 125, apart from any command's code.
  const none = await runCli(['run', stack, 'nosuch', '--api', a.api, '--', 'true']);
  assert.equal(none.code, 125);
  assert.match(none.stderr, /VIKING_E_NOT_FOUND/);
  // Each session leaves an audit entry with its outcome.
  const audit = await waitFor('the audit entries of the runs', async () => {
    const res = await fetch(`${a.api}/v1/audit?stack=${stack}`, { headers: { authorization: `Bearer ${a.token}` } });
    const entries = ((await res.json()) as { entries: Array<{ route: string; result: string }> }).entries.filter((e) => e.route === '/v1/run/:stack/:node');
    return entries.length >= 2 ? entries : undefined;
  });
  assert.deepEqual(audit.map((e) => e.result), ['exit 7', 'VIKING_E_NOT_FOUND']);
});

test('run --detach: left running, listed by ps --all, gone once its command exits', async () => {
  const r = await runCli(['run', stack, 'db', '-d', '--api', a.api, '--', 'sleep', '600']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`started .* on ${nameB}`));
  const ps = await runCli(['ps', stack, '--all', '--api', a.api]);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, new RegExp(`${stack}\\s+v1\\s+db\\s+detached\\s+${nameB}\\s+Up`));
  const json = JSON.parse((await runCli(['ps', stack, '--all', '--json', '--api', a.api])).stdout) as { replicas: unknown[]; oneoffs: Array<{ command: string }> };
  assert.equal(json.replicas.length, 2);
  assert.deepEqual(json.oneoffs.map((o) => o.command), ['sleep 600']);
  // The slave on B never took it for a replica: db still has exactly one container of its own.
  const replicas = await docker.listContainers({ filters: { label: [`viking.host=${nameB}`, `viking.stack=${stack}`, 'viking.node=db'] } });
  assert.equal(replicas.length, 1);
  // Its command ends (killed here): Docker removes it, and ps --all lists it no more.
  const [left] = await oneOffs();
  await docker.getContainer(left!.Id).kill();
  await waitFor('the detached container to go once it exits', async () => (await oneOffs()).length === 0, 15_000, 200);
  const after = JSON.parse((await runCli(['ps', stack, '--all', '--json', '--api', a.api])).stdout) as { oneoffs: unknown[] };
  assert.deepEqual(after.oneoffs, []);
});

test('exec -it through a pseudo-terminal: the shell has a tty, the exit code comes back', async () => {
  const cli = `${process.execPath} ${VIKING_BIN} exec ${stack} db.1 -it --api ${a.api} -- sh`;
  const child = spawn('script', ['-qefc', cli, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VIKING_CONFIG: NO_CONFIG, VIKING_TOKEN: a.token } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  await waitFor('the shell prompt', () => /[#$] $/.test(out.trimEnd() + ' ') || out.includes('# '), 15_000);
  child.stdin.write('tty; echo "host=$VIKING_HOST"; exit 3\n');
  const code = await exited;
  assert.equal(code, 3, out);
  assert.match(out, /\/dev\/pts\/\d+/, 'the shell in the replica has a terminal');
  assert.match(out, new RegExp(`host=${nameB}`), 'it ran in the replica on B');

  const plain = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'sh', '-c', 'test -t 0 || echo no-tty; exit 4']);
  assert.equal(plain.code, 4);
  assert.equal(plain.stdout, 'no-tty\n');
});

test('exec over the websocket with a TTY: a resize reaches the terminal; stdin, output and the exit code', async () => {
  const q = new URLSearchParams({ cmd: JSON.stringify(['sh']), tty: '1', stdin: '1' });
  const ws = new WebSocket(`${a.api.replace('http', 'ws')}/v1/exec/${stack}/db/1?${q}`, { headers: { authorization: `Bearer ${a.token}` } });
  let out = '';
  let exit: number | undefined;
  let startedOn: string | undefined;
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) out += data.subarray(1).toString();
    else {
      const m = JSON.parse(data.toString()) as { type: string; code?: number; host?: string };
      if (m.type === 'exit') exit = m.code;
      if (m.type === 'started') startedOn = m.host;
    }
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ type: 'resize', cols: 123, rows: 45 }));
  // The resize and the first command race to the new exec (Docker sizes it once it started):
  // ask again each second until the size shows; what matters is that it arrives.
  let asked = 0;
  await waitFor('stty to print the new size', () => {
    if (out.includes('45 123')) return true;
    if (Date.now() - asked >= 1000) {
      asked = Date.now();
      ws.send(Buffer.from('stty size\n'), { binary: true });
    }
    return false;
  }, 10_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}; the terminal printed: ${JSON.stringify(out)}`);
  });
  ws.send(JSON.stringify({ type: 'resize', cols: 77, rows: 21 }));
  ws.send(Buffer.from('stty size; exit 5\n'), { binary: true });
  await waitFor('the exit frame', () => exit !== undefined, 10_000);
  assert.equal(exit, 5);
  assert.equal(startedOn, nameB);
  assert.match(out, /21 77/);

  // A reader may not exec: refused before the upgrade with the permission named.
  const reader = await runCli(['token', 'create', 'ops-reader', '--role', 'reader', '--api', a.api]);
  const readerToken = /vkt_[A-Za-z0-9_-]+/.exec(reader.stdout)?.[0];
  assert.ok(readerToken, reader.stdout + reader.stderr);
  const refused = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'true'], { VIKING_TOKEN: readerToken });
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /VIKING_E_FORBIDDEN.*stack:exec/);
});

/** The files of a tar, by name. */
async function tarFiles(file: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const x = extract();
  x.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      if (h.type === 'file') files.set(h.name, Buffer.concat(chunks));
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => x.on('finish', () => resolve()).on('error', reject));
  x.end(await readFile(file));
  await done;
  return files;
}

test('volumes: listed with host and size; backup then restore gives back the bytes, with the node stopped and started again', async () => {
  const seed = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'sh', '-c', 'head -c 300000 /dev/urandom > /data/blob && echo note > /data/note && sha256sum /data/blob']);
  assert.equal(seed.code, 0, seed.stderr);
  const sum = seed.stdout.split(' ')[0]!;

  const list = await runCli(['volumes', stack, '--json', '--api', a.api]);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Array<{ host: string; node: string; path: string; size: number }>;
  assert.equal(rows.length, 1, list.stdout);
  assert.equal(rows[0]!.host, nameB);
  assert.equal(rows[0]!.node, 'db');
  assert.equal(rows[0]!.path, '/data');
  assert.ok(rows[0]!.size >= 300_000, `size ${rows[0]!.size}`);

  const backup = path.join(work, 'db.tar');
  const bk = await cliFiles(['volume', 'backup', stack, 'db', '/data', '--api', a.api], { output: backup });
  assert.equal(bk.code, 0, bk.stderr);
  const files = await tarFiles(backup);
  assert.equal(createHash('sha256').update(files.get('data/blob') ?? '').digest('hex'), sum, 'the archive holds the bytes of the volume');
  assert.equal(files.get('data/note')?.toString(), 'note\n');

  const before = await docker.listContainers({ filters: { label: [`viking.host=${nameB}`, `viking.stack=${stack}`, 'viking.node=db'] } });
  const change = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'sh', '-c', 'rm /data/blob && echo junk > /data/junk']);
  assert.equal(change.code, 0, change.stderr);

  const wrong = await cliFiles(['volume', 'restore', stack, 'web', '/data', '--api', a.api], { input: backup });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /VIKING_E_NO_VOLUME/);

  const rs = await cliFiles(['volume', 'restore', stack, 'db', '/data', '--api', a.api], { input: backup });
  assert.equal(rs.code, 0, rs.stderr);
  assert.match(rs.stdout, new RegExp(`restored .* on ${nameB} .*1 container\\(s\\) stopped`));
  // The node was stopped for it and started again by B's slave: a new container.
  await waitFor(
    'db to run again in a new container',
    async () => {
      const now = await docker.listContainers({ filters: { label: [`viking.host=${nameB}`, `viking.stack=${stack}`, 'viking.node=db'] } });
      return now.length === 1 && now[0]!.Id !== before[0]!.Id && now[0]!.State === 'running';
    },
    20_000,
    200,
  );
  const check = await waitFor('exec in the restarted db', async () => {
    const r = await runCli(['exec', stack, 'db', '--api', a.api, '--', 'sh', '-c', 'sha256sum /data/blob; ls /data']);
    return r.code === 0 ? r : undefined;
  }, 20_000, 300);
  assert.equal(check.stdout, `${sum}  /data/blob\nblob\nfrom-run\nnote\n`, 'the bytes backed up, and nothing written after the backup');
});

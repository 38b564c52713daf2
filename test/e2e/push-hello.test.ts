/**
 * End to end on the real parts: etcd + one master `viking host` process,
 * `viking push` of vikingfiles/hello through the CLI, HTTP through the
 * router with `Host: hello.local` reaching both replicas, then a changed
 * app pushed and its new body served.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts, docker } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { routerGet } from '../helpers/http.js';
import { helloCopy as copyHello } from '../helpers/hello.js';


let etcd: TestEtcd;
let host: HostProcess;
let work: string;
const hostName = uniqueName('e2e');
// A unique stack name keeps this test's images apart from a real `hello` on the same daemon.
const stack = uniqueName('hello');

const get = (port: number, host: string, path?: string) => routerGet({ port, host, ...(path ? { path } : {}) });

const helloCopy = (dir: string, message: string): Promise<string> => copyHello({ dir, stack, message });

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-e2e-'));
  etcd = await startTestEtcd();
  host = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data') });
});

after(async () => {
  await host?.stop();
  await removeHostContainers(hostName);
  await removeStackArtifacts(stack);
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('unknown domains get a 404 that says what to do', async () => {
  const res = await get(host.routerPort, 'nothing.example');
  assert.equal(res.status, 404);
  assert.match(res.body, /no app for the domain nothing\.example/);
});

test('viking push serves both replicas through the router, then a new release', async () => {
  const v1 = await helloCopy(path.join(work, 'v1'), 'first release');
  const push1 = await runCli(['push', v1, '--api', host.api]);
  assert.equal(push1.code, 0, `push failed:\n${push1.stdout}\n${push1.stderr}`);
  assert.match(push1.stdout, /Step \d+\/\d+ : COPY/, 'build output is streamed');
  assert.match(push1.stdout, new RegExp(`${stack} release v1 deployed`));
  assert.match(push1.stdout, /http:\/\/hello\.local:\d+\//, 'the URL is printed');

  // Both replicas answer through the router: their hostnames differ.
  const seen = new Set<string>();
  await waitFor('both replicas of v1 to answer', async () => {
    const res = await get(host.routerPort, 'Hello.Local:80');
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /first release/);
    seen.add(/from (\S+):/.exec(res.body)?.[1] ?? '');
    return seen.has('web-1-v1') && seen.has('web-2-v1');
  });

  const ps = await runCli(['ps', stack, '--api', host.api, '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = JSON.parse(ps.stdout) as Array<{ node: string; state: string; host: string; tag: string }>;
  assert.deepEqual(rows.map((r) => [r.node, r.tag, r.state, r.host]), [['web', 'v1', 'running', hostName], ['web', 'v1', 'running', hostName]]);

  const v2 = await helloCopy(path.join(work, 'v2'), 'second release');
  const push2 = await runCli(['push', v2, '--api', host.api]);
  assert.equal(push2.code, 0, `second push failed:\n${push2.stdout}\n${push2.stderr}`);
  assert.match(push2.stdout, /release v2 deployed/);
  const res = await get(host.routerPort, 'hello.local');
  assert.equal(res.status, 200);
  assert.match(res.body, /second release/, 'the router switched to v2 when the push returned');

  // Each push left one audit entry naming the release it made.
  const audit = await waitFor('both pushes in the audit log', async () => {
    const r = await runCli(['audit', '--stack', stack, '--json', '--api', host.api]);
    const got = JSON.parse(r.stdout) as Array<{ route: string; result: string; release?: string; status: number }>;
    return got.length >= 2 ? got : undefined;
  });
  assert.deepEqual(audit.map((e) => [e.route, e.status, e.result, e.release]), [['/v1/push', 200, 'ok', 'v1'], ['/v1/push', 200, 'ok', 'v2']]);

  // The old release's containers are retired.
  await waitFor('v1 containers to be removed', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`viking.host=${hostName}`] } });
    return list.length === 2 && list.every((c) => c.Labels['viking.tag'] === 'v2');
  });
});

test('a Vikingfile error fails the push with its line and column, deploying nothing', async () => {
  const bad = await helloCopy(path.join(work, 'bad'), 'broken');
  const vf = await readFile(path.join(bad, 'Vikingfile'), 'utf8');
  await writeFile(path.join(bad, 'Vikingfile'), vf.replace('    scale: 2', '    scale: 0'));
  const push = await runCli(['push', bad, '--api', host.api]);
  assert.equal(push.code, 1);
  assert.match(push.stderr, /VIKING_E_VIKINGFILE_INVALID/);
  assert.match(push.stderr, /Vikingfile:\d+:\d+: .*scale/);
  const res = await get(host.routerPort, 'hello.local');
  assert.match(res.body, /second release/, 'the running release is untouched');
});

test('a failing build step fails the push with its output, and the running release keeps serving', async () => {
  const broken = await helloCopy(path.join(work, 'broken-build'), 'never served');
  const vf = await readFile(path.join(broken, 'Vikingfile'), 'utf8');
  await writeFile(path.join(broken, 'Vikingfile'), vf.replace('    COPY . /srv/app', '    COPY . /srv/app\n    RUN echo "npm ERR! missing script: build" >&2 && exit 1'));
  const push = await runCli(['push', broken, '--api', host.api]);
  assert.equal(push.code, 1);
  assert.match(push.stderr, /error VIKING_E_BUILD_FAILED: image app failed to build/);
  assert.match(push.stderr, /--- build output[^\n]*\n[\s\S]*npm ERR! missing script: build/);
  const res = await get(host.routerPort, 'hello.local');
  assert.equal(res.status, 200);
  assert.match(res.body, /second release/, 'the old release still serves');
  const ps = JSON.parse((await runCli(['ps', stack, '--api', host.api, '--json'])).stdout) as Array<{ tag: string }>;
  assert.ok(ps.every((r) => r.tag === 'v2'), `nothing of the failed release was scheduled: ${JSON.stringify(ps)}`);
});

test('an identical second push reuses every layer and is faster than the first', async () => {
  // A build step that does real work (as npm install would): the cache is what saves it.
  const dir = await helloCopy(path.join(work, 'cache'), 'cached');
  const vf = await readFile(path.join(dir, 'Vikingfile'), 'utf8');
  await writeFile(path.join(dir, 'Vikingfile'), vf.replace('    COPY . /srv/app', '    COPY . /srv/app\n    RUN i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done'));
  const t0 = Date.now();
  const first = await runCli(['push', dir, '--api', host.api]);
  const firstMs = Date.now() - t0;
  assert.equal(first.code, 0, first.stderr);
  const t1 = Date.now();
  const second = await runCli(['push', dir, '--api', host.api]);
  const secondMs = Date.now() - t1;
  assert.equal(second.code, 0, second.stderr);
  const steps = second.stdout.split('\n').filter((l) => /app \| Step \d+\/\d+ : /.test(l) && !/: FROM /.test(l)).length;
  const cached = second.stdout.split('\n').filter((l) => /app \|\s+---> Using cache/.test(l)).length;
  assert.ok(steps >= 2);
  assert.equal(cached, steps, `every step after FROM hits the cache:\n${second.stdout}`);
  assert.ok(secondMs < firstMs, `second push ${secondMs} ms, first ${firstMs} ms`);
});

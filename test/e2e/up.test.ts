/**
 * `viking up`, the one-command cluster, as a user runs it: in the
 * foreground, its own etcd, registry and master host, the first API token
 * saved in the CLI config; a push is served through its router; and Ctrl-C
 * (SIGINT) stops everything it started: the host, its containers, the
 * registry and etcd. up-nginx.test.ts runs it with `--router-engine nginx`:
 * then nginx's master process runs while up serves, and is gone after Ctrl-C.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VIKING_BIN, runCli } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { helloCopy } from '../helpers/hello.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePort } from '../../lib/net.js';
import type { RouterEngine } from '../../lib/router/router.js';

/** up-nginx.test.ts runs this file with `viking up --router-engine nginx`. */
const ENGINE = (process.env.VIKING_TEST_ROUTER_ENGINE ?? 'node') as RouterEngine;

const name = uniqueName('up');
const stack = uniqueName('uphello');
let work: string;
let up: ChildProcess;
let output = '';
let exited: Promise<number | null>;
let etcdPort: number;
let registryPort: number;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-up-'));
  etcdPort = await freePort();
  registryPort = await freePort();
});

after(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  await removeHostContainers(name);
  await removeStackArtifacts(stack);
  await rm(work, { recursive: true, force: true });
});

test('viking up runs a cluster in one command, serves a push, and Ctrl-C stops all it started', async () => {
  const config = path.join(work, 'config.json');
  up = spawn(process.execPath, [
    VIKING_BIN, 'up', '--data-dir', path.join(work, 'data'), '--name', name, '--router-port', '0', '--api-port', '0',
    '--etcd-port', String(etcdPort), '--registry-port', String(registryPort),
    ...(ENGINE === 'nginx' ? ['--router-engine', 'nginx'] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIKING_CONFIG: config } });
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  exited = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
  const ready = await waitFor('viking up to be ready', () => /ready router=(\d+) api=(\d+)/.exec(output), 90_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n--- viking up said ---\n${output}`);
  });
  const routerPort = Number(ready[1]);
  const apiPort = Number(ready[2]);

  const saved = JSON.parse(await readFile(config, 'utf8')) as { api: string; token: string };
  assert.equal(saved.api, `http://127.0.0.1:${apiPort}`);
  assert.match(saved.token, /^vkt_/);

  const dir = await helloCopy({ dir: path.join(work, 'hello'), stack, message: 'up and running', domain: `${stack}.local` });
  // The CLI finds the API and token in the config `viking up` wrote: no --api, no token.
  const push = await runCli(['push', dir], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' });
  assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
  assert.match(push.stdout, new RegExp(`-> registry: The push refers to repository \\[127\\.0\\.0\\.1:${registryPort}/${stack}/app\\]`));
  const res = await routerGet({ port: routerPort, host: `${stack}.local` });
  assert.equal(res.status, 200);
  assert.match(res.body, /up and running/);

  // viking hosts names the router's ports and its engine.
  const hosts = await runCli(['hosts'], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' });
  assert.equal(hosts.code, 0, hosts.stderr);
  const httpsPort = Number(/https=(\d+)/.exec(output)?.[1]);
  assert.ok(httpsPort > 0, `viking up said its HTTPS port: ${output}`);
  assert.match(hosts.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '', new RegExp(`\\s:${routerPort} tls:${httpsPort} ${ENGINE}\\s`));
  const rows = JSON.parse((await runCli(['hosts', '--json'], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' })).stdout) as Array<{ name: string; routerPort: number; httpsPort?: number; routerEngine?: string }>;
  assert.deepEqual(rows.filter((r) => r.name === name).map((r) => [r.routerPort, r.httpsPort, r.routerEngine]), [[routerPort, httpsPort, ENGINE]]);

  const pids = await childPids(up.pid!);
  assert.ok(pids.etcd && pids.registry, `etcd and the registry run as children: ${JSON.stringify(pids)}`);
  const masters = ENGINE === 'nginx' ? await nginxMasters(path.join(work, 'data')) : [];
  if (ENGINE === 'nginx') assert.equal(masters.length, 1, `one nginx master process of this up serves: ${JSON.stringify(masters)}`);
  up.kill('SIGINT');
  assert.equal(await exited, 0, output);
  assert.equal(alive(pids.etcd!), false, 'etcd stopped');
  assert.equal(alive(pids.registry!), false, 'the registry stopped');
  for (const pid of masters) assert.equal(alive(pid), false, `nginx's master process (${pid}) stopped`);
  if (ENGINE === 'nginx') assert.deepEqual(await nginxMasters(path.join(work, 'data')), [], 'no nginx of this up is left');
  const left = await docker.listContainers({ all: true, filters: { label: [`viking.host=${name}`] } });
  assert.deepEqual(left, [], 'its containers are gone');
});

/** nginx master processes of a data dir: their command line (retitled by nginx) names it. */
async function nginxMasters(dataDir: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    if (cmd.includes('nginx: master process') && cmd.includes(dataDir)) out.push(Number(entry));
  }
  return out;
}

/** The etcd and docker-registry processes `viking up` started (children of its pid). */
async function childPids(parent: number): Promise<{ etcd?: number; registry?: number }> {
  const { readdir } = await import('node:fs/promises');
  const out: { etcd?: number; registry?: number } = {};
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== parent) continue;
    const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (/(^|\/)etcd$/.test(cmd[0] ?? '')) out.etcd = Number(entry);
    if (/docker-registry$/.test(cmd[0] ?? '')) out.registry = Number(entry);
  }
  return out;
}

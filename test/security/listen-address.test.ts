/**
 * Issue 9, item 10 (part): a one-machine `viking up` listens on the address
 * it is given, 127.0.0.1 by default, not on every interface.
 *
 * Before, its API listened on 0.0.0.0 and so did its router: anyone on the
 * machine's networks could reach the API of a laptop's test cluster. Here a
 * real `viking up` runs (etcd, registry, router workers, API) and serves a
 * pushed app; every TCP socket its process tree listens on is read from
 * /proc/net/tcp{,6} and must be on loopback, the app's published port too,
 * and a connection to the router and API ports on another local address of
 * this machine (the docker0 bridge's) must be refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { VIKING_BIN, runCli } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { helloCopy } from '../helpers/hello.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePort } from '../../lib/net.js';

const name = uniqueName('listen');
const stack = uniqueName('lis');
let work: string;
let up: ChildProcess | undefined;
let output = '';

/** A local, non-loopback IPv4 address of this machine (docker0's, or any other), if there is one. */
function otherLocalAddress(): string | undefined {
  const all = Object.entries(os.networkInterfaces()).flatMap(([ifname, list]) => (list ?? []).map((a) => ({ ifname, ...a })));
  const v4 = all.filter((a) => a.family === 'IPv4' && !a.internal);
  return (v4.find((a) => a.ifname === 'docker0') ?? v4[0])?.address;
}

/** Every pid in the tree under `root`, root included. */
async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

/** `ip:port` of every TCP socket in LISTEN state that one of `pids` holds. */
async function listeningSockets(pids: number[]): Promise<string[]> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    }
  }
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue; // 0A: LISTEN
      out.push(decodeAddress(f[1]!));
    }
  }
  return out;
}

/** `0100007F:1F90` -> `127.0.0.1:8080`; IPv6 as hex groups. */
function decodeAddress(hex: string): string {
  const [addr, port] = hex.split(':') as [string, string];
  const p = parseInt(port, 16);
  if (addr.length === 8) return `${[3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.')}:${p}`;
  const words = addr.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
  const v6 = words.join('').match(/.{4}/g)!.join(':');
  return `[${v6}]:${p}`;
}

const isLoopback = (a: string): boolean => a.startsWith('127.') || a.startsWith('[0000:0000:0000:0000:0000:0000:0000:0001]') || a.startsWith('[0000:0000:0000:0000:0000:ffff:7f');

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-sec-listen-'));
});

after(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  await removeHostContainers(name);
  await removeStackArtifacts(stack);
  await rm(work, { recursive: true, force: true });
});

test('nothing viking up starts listens beyond 127.0.0.1 by default', async () => {
  const config = path.join(work, 'config.json');
  up = spawn(process.execPath, [
    VIKING_BIN, 'up', '--data-dir', path.join(work, 'data'), '--name', name, '--router-port', '0', '--api-port', '0',
    '--etcd-port', String(await freePort()), '--registry-port', String(await freePort()),
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIKING_CONFIG: config } });
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => up!.once('exit', (code) => resolve(code)));
  const ready = await waitFor('viking up to be ready', () => /ready router=(\d+) api=(\d+)/.exec(output), 60_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}\n--- viking up said ---\n${output}`);
  });
  const routerPort = Number(ready[1]);
  const apiPort = Number(ready[2]);

  const dir = await helloCopy({ dir: path.join(work, 'hello'), stack, message: 'only on loopback', domain: `${stack}.local`, edit: (v) => v.replace('scale: 2', 'scale: 1') });
  const push = await runCli(['push', dir], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' });
  assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
  assert.match((await routerGet({ port: routerPort, host: `${stack}.local` })).body, /only on loopback/);

  const pids = await processTree(up.pid!);
  const sockets = await listeningSockets(pids);
  // The router, the API, etcd (client and peer) and the registry at least.
  assert.ok(sockets.length >= 5, `listening sockets of ${pids.length} processes: ${sockets.join(', ')}`);
  assert.ok(sockets.includes(`127.0.0.1:${routerPort}`), sockets.join(', '));
  assert.ok(sockets.includes(`127.0.0.1:${apiPort}`), sockets.join(', '));
  assert.deepEqual(sockets.filter((s) => !isLoopback(s)), [], 'every listening socket is on loopback');

  // The app's container publishes its port on loopback too.
  const [c] = await docker.listContainers({ filters: { label: [`viking.host=${name}`, `viking.stack=${stack}`] } });
  assert.ok(c);
  assert.deepEqual(c.Ports.filter((p) => p.PublicPort).map((p) => p.IP), ['127.0.0.1']);

  // From another local address of this machine, neither the router nor the API answers.
  const other = otherLocalAddress();
  if (other) {
    assert.equal(await connects('127.0.0.1', routerPort), true, 'control: loopback connects');
    assert.equal(await connects(other, routerPort), false, `router reachable on ${other}`);
    assert.equal(await connects(other, apiPort), false, `API reachable on ${other}`);
  }

  up.kill('SIGINT');
  assert.equal(await exited, 0, output);
});

/**
 * The nginx engine's process life (lib/router/nginx-plane.ts) with real etcd,
 * the real nginx binary and real HTTP backends: nginx stops with the process
 * that runs it (even one SIGKILLed), comes back when killed from outside,
 * acknowledges a route change only once it runs it, stops the nginx an
 * earlier run left behind, says how to install a missing binary, and does
 * not reload for a snapshot it would render the same.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd, readJSON } from '../../lib/store/client.js';
import { portsKey, routerKey, stackKey } from '../../lib/store/keys.js';
import type { RouterAck, StackRecord } from '../../lib/store/records.js';
import { Router } from '../../lib/router/router.js';
import { childrenOf } from '../../lib/router/nginx-plane.js';
import { VikingError } from '../../lib/errors.js';
import { call, endpointFor, putRoute, startBackend, type Backend, type Echo } from '../helpers/router-fixtures.js';

const NGINX = '/usr/sbin/nginx';
/** dist/, where the compiled lib/ lives (this file runs from dist/test/integration). */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let etcd: TestEtcd;
let client: Etcd3;
let tmp: string;
const backends: Backend[] = [];
const routers: Router[] = [];
const children: ChildProcess[] = [];
/** nginx masters and workers no Router here stops (the "earlier run", the SIGKILLed host's): killed in after() if a test left one. */
const ownNginx: number[] = [];

before(async () => {
  etcd = await startTestEtcd('nginx-life');
  client = connectEtcd(etcd.url);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'viking-nginx-life-'));
});

after(async () => {
  for (const r of routers) await r.stop().catch(() => undefined);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Workers outlive a SIGKILLed master: take them too (only processes that still are nginx).
  for (const pid of ownNginx) for (const p of [...childrenOf(pid), pid]) if (!gone(p) && readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('nginx')) signal(p, 'SIGKILL');
  await Promise.all(backends.map((b) => b.close()));
  client?.close();
  await etcd?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** True when no such process runs (exited, or a zombie nobody reaped yet). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  backends.push(b);
  return b;
}

/** Who answered a request for `host` on the router's port. */
async function who(port: number, host: string): Promise<string> {
  const res = await call(port, host);
  assert.equal(res.status, 200, `${host}: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as Echo).name;
}

/** Resolves when nothing accepts connections on the port any more. */
async function refused(port: number): Promise<boolean> {
  try {
    await call(port, 'anything.test');
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

async function acked(hostName: string): Promise<bigint> {
  const ack = await readJSON<RouterAck>(client, routerKey(hostName));
  return ack ? BigInt(ack.revision) : 0n;
}

async function startRouter(hostName: string, dataDir: string, extra: { port?: number } = {}): Promise<{ router: Router; port: number }> {
  const router = new Router({ client, hostName, dataDir, port: extra.port ?? 0, host: '127.0.0.1', workers: 2, engine: 'nginx', nginxBinary: NGINX });
  routers.push(router);
  const port = await router.start();
  router.attachAcks({ put: async (k, v) => void (await client.put(k).value(v)) });
  return { router, port };
}

/** Resolves once the router serves `rev` and has written it to /routers/<host>. */
const served = (router: Router, hostName: string, rev: string): Promise<unknown> =>
  waitFor(`${hostName} to serve and ack revision ${rev}`, async () => BigInt(router.servedRevision ?? 0) >= BigInt(rev) && (await acked(hostName)) >= BigInt(rev));

describe('nginx engine: process life', () => {
  test('SIGKILL of the process running the Router stops its nginx (master and workers) and frees the port', async () => {
    const be = await backend('killed-host');
    await putRoute(client, { stack: 'life-kill', current: 'v1', domains: ['kill.life.test'], endpoints: [endpointFor('life-kill', 'web', 'v1', 1, be.port)] });
    const script = path.join(tmp, 'host.mjs');
    await writeFile(
      script,
      [
        `import { Router } from ${JSON.stringify(pathToFileURL(path.join(DIST, 'lib/router/router.js')).href)};`,
        `import { connectEtcd } from ${JSON.stringify(pathToFileURL(path.join(DIST, 'lib/store/client.js')).href)};`,
        'const [url, dataDir, binary] = process.argv.slice(2);',
        "const router = new Router({ client: connectEtcd(url), hostName: 'life-killed', dataDir, port: 0, host: '127.0.0.1', workers: 2, engine: 'nginx', nginxBinary: binary });",
        'const port = await router.start();',
        "process.stdout.write(JSON.stringify({ port, master: router.nginxMasterPid, workers: router.workerPids() }) + '\\n');",
        'setInterval(() => {}, 1 << 30);',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [script, etcd.url, path.join(tmp, 'killed'), NGINX], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const info = await new Promise<{ port: number; master: number; workers: number[] }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { port: number; master: number; workers: number[] });
      });
      child.once('exit', (code) => reject(new Error(`the host process exited (${code}) before it served: ${err}`)));
    });
    ownNginx.push(info.master, ...info.workers);
    assert.ok(info.master > 1, 'an nginx master');
    assert.equal(info.workers.length, 2);
    assert.deepEqual(childrenOf(info.master).sort(), [...info.workers].sort());
    assert.equal(await who(info.port, 'kill.life.test'), 'killed-host', 'nginx serves before the kill');

    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    const pids = [info.master, ...info.workers];
    await waitFor(`nginx ${pids.join(', ')} to exit after its host process was SIGKILLed (alive: ${pids.filter((p) => !gone(p)).join(', ')})`, () => pids.every(gone), 5000);
    await waitFor(`port ${info.port} to stop answering`, () => refused(info.port), 3000);
  });

  describe('one router in this process', () => {
    const hostName = 'life-main';
    let router: Router;
    let port: number;

    before(async () => {
      const be = await backend('main-1');
      const rev = await putRoute(client, { stack: 'life-main', current: 'v1', domains: ['main.life.test'], endpoints: [endpointFor('life-main', 'web', 'v1', 1, be.port)] });
      ({ router, port } = await startRouter(hostName, path.join(tmp, 'main')));
      await served(router, hostName, rev);
      assert.equal(await who(port, 'main.life.test'), 'main-1');
    });

    test('nginx SIGKILLed from outside is started again and serves the current routes, a route added while it was down too', async () => {
      const master = router.nginxMasterPid!;
      const workers = router.workerPids();
      assert.ok(master > 1);
      assert.equal(workers.length, 2);
      signal(master, 'SIGKILL');
      await waitFor('the plane to see its nginx exit', () => router.nginxMasterPid === 0, 5000);
      const be = await backend('while-down');
      const rev = await putRoute(client, { stack: 'life-down', current: 'v1', domains: ['down.life.test'], endpoints: [endpointFor('life-down', 'web', 'v1', 1, be.port)] });
      await waitFor('a new nginx master', () => (router.nginxMasterPid ?? 0) > 1 && router.nginxMasterPid !== master, 15_000);
      await served(router, hostName, rev);
      // The killed master's workers must not keep serving its configuration (nor hold the port).
      await waitFor(`the killed master's workers ${workers.join(', ')} to exit`, () => workers.every(gone), 5000);
      assert.equal(router.workerPids().length, 2);
      assert.equal(await who(port, 'down.life.test'), 'while-down');
      assert.equal(await who(port, 'main.life.test'), 'main-1');
    });

    test('a route change is acknowledged only once nginx runs it: requests right after the ack reach the new endpoint only', async () => {
      const stack = 'life-ack';
      const host = 'ack.life.test';
      let previous = await backend('ack-0');
      let prevEndpoint = endpointFor(stack, 'web', 'v1', 100, previous.port);
      await served(router, hostName, await putRoute(client, { stack, current: 'v1', domains: [host], endpoints: [prevEndpoint] }));
      assert.equal(await who(port, host), 'ack-0');
      for (let i = 1; i <= 5; i++) {
        const next = await backend(`ack-${i}`);
        const nextEndpoint = endpointFor(stack, 'web', 'v1', 100 + i, next.port);
        // One transaction: the new endpoint in, the old one out (as a deploy's last step would leave it).
        const rev = (await client.if(stackKey(stack), 'Version', '>', 0).then(client.put(portsKey(nextEndpoint)).value(JSON.stringify(nextEndpoint)), client.delete().key(portsKey(prevEndpoint))).commit()).header.revision;
        const pidsBefore = router.workerPids();
        await waitFor(`ack of revision ${rev}`, async () => (await acked(hostName)) >= BigInt(rev), 20_000, 5);
        assert.ok(BigInt(router.servedRevision ?? 0) >= BigInt(rev));
        const oldHits = previous.hits;
        const seen = new Map<string, number>();
        for (let n = 0; n < 50; n++) {
          const name = await who(port, host);
          seen.set(name, (seen.get(name) ?? 0) + 1);
        }
        assert.deepEqual([...seen], [[`ack-${i}`, 50]], `round ${i}: every request after the ack reaches the new endpoint`);
        assert.equal(previous.hits, oldHits, `round ${i}: the removed endpoint got no request`);
        assert.ok(router.workerPids().some((p) => !pidsBefore.includes(p)), `round ${i}: nginx reloaded (new workers)`);
        previous = next;
        prevEndpoint = nextEndpoint;
      }
    });

    test('a snapshot that changes nothing nginx sees does not reload it, and the served revision still moves on', async () => {
      const stack = 'life-same';
      const be = await backend('same');
      const rev0 = await putRoute(client, { stack, current: 'v1', domains: ['same.life.test'], endpoints: [endpointFor(stack, 'web', 'v1', 1, be.port)] });
      await served(router, hostName, rev0);
      const master = router.nginxMasterPid;
      const workers = router.workerPids().sort();
      const config = await readFile(path.join(tmp, 'main', 'nginx', 'nginx.conf'), 'utf8');
      const record = (await readJSON<StackRecord>(client, stackKey(stack)))!;
      for (let i = 2; i <= 4; i++) {
        const rev = (await client.put(stackKey(stack)).value(JSON.stringify({ ...record, lastRelease: i })).exec()).header.revision;
        await served(router, hostName, rev);
        assert.equal(router.nginxMasterPid, master);
        assert.deepEqual(router.workerPids().sort(), workers, `put ${i}: no reload (same worker pids)`);
      }
      assert.equal(await readFile(path.join(tmp, 'main', 'nginx', 'nginx.conf'), 'utf8'), config, 'the configuration was not rewritten');
      assert.equal(await who(port, 'same.life.test'), 'same');
      // The check can fail: a change nginx sees does reload.
      const other = await backend('same-2');
      await served(router, hostName, await putRoute(client, { stack, current: 'v1', endpoints: [endpointFor(stack, 'web', 'v1', 2, other.port)], domains: ['same.life.test'] }));
      assert.notDeepEqual(router.workerPids().sort(), workers, 'a new endpoint reloads nginx');
    });
  });

  test('an nginx an earlier run left with the same data dir is stopped when a new Router starts, and the new one serves', async () => {
    const dataDir = path.join(tmp, 'orphan');
    const prefix = path.join(dataDir, 'nginx');
    const be = await backend('orphan-new');
    const rev = await putRoute(client, { stack: 'life-orphan', current: 'v1', domains: ['orphan.life.test'], endpoints: [endpointFor('life-orphan', 'web', 'v1', 1, be.port)] });
    const first = await startRouter('life-orphan-1', dataDir);
    await served(first.router, 'life-orphan-1', rev);
    await first.router.stop();
    routers.splice(routers.indexOf(first.router), 1);
    await waitFor('the first router to free its port', () => refused(first.port), 5000);
    // The "earlier run": its host process is gone, its nginx (from the same configuration) runs on, as a daemon.
    // A stopped plane removed its run directory (logs, drain flag); a lost host process would have left it.
    await mkdir((await readFile(path.join(prefix, 'drain-dir'), 'utf8')).trim(), { recursive: true });
    const started = spawn(NGINX, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], { stdio: 'ignore' });
    const code = await new Promise<number | null>((r) => started.once('exit', (c) => r(c)));
    assert.equal(code, 0, 'nginx started as a daemon');
    const orphan = await waitFor('the orphan nginx pid file', async () => Number((await readFile(path.join(prefix, 'nginx.pid'), 'utf8').catch(() => '')).trim()));
    ownNginx.push(orphan);
    await waitFor('the orphan to start its workers', () => childrenOf(orphan).length === 2, 5000);
    const orphanWorkers = childrenOf(orphan);
    ownNginx.push(...orphanWorkers);
    const res = await call(first.port, 'orphan.life.test');
    assert.equal(res.status, 200, 'the orphan holds the port and proxies');

    // A new host process on the same port with the same data dir.
    const second = await startRouter('life-orphan-2', dataDir, { port: first.port });
    assert.equal(second.port, first.port);
    assert.ok(gone(orphan), 'the orphan master was stopped');
    await waitFor('the orphan workers to exit', () => orphanWorkers.every(gone), 5000);
    assert.notEqual(second.router.nginxMasterPid, orphan);
    await served(second.router, 'life-orphan-2', rev);
    assert.equal(await who(second.port, 'orphan.life.test'), 'orphan-new');
    assert.equal(Number((await readFile(path.join(prefix, 'nginx.pid'), 'utf8')).trim()), second.router.nginxMasterPid, 'the pid file names the new nginx');
  });

  test('metrics off: nginx writes no request log until a node asks for its access log, then logs that node only', async () => {
    const hostName = 'life-quiet';
    const be = await backend('quiet-1');
    const rev = await putRoute(client, { stack: 'life-quiet', current: 'v1', domains: ['quiet.life.test'], endpoints: [endpointFor('life-quiet', 'web', 'v1', 1, be.port)] });
    const router = new Router({ client, hostName, dataDir: path.join(tmp, 'quiet'), port: 0, host: '127.0.0.1', workers: 1, engine: 'nginx', nginxBinary: NGINX, metrics: false });
    routers.push(router);
    const port = await router.start();
    router.attachAcks({ put: async (k, v) => void (await client.put(k).value(v)) });
    await served(router, hostName, rev);
    const conf = (): Promise<string> => readFile(path.join(tmp, 'quiet', 'nginx', 'nginx.conf'), 'utf8');
    assert.match(await conf(), /^\s*access_log off;$/m);
    assert.doesNotMatch(await conf(), /requests\.log/);
    for (let i = 0; i < 5; i++) assert.equal(await who(port, 'quiet.life.test'), 'quiet-1');

    // The same stack, now with access_log: true for its node: the log is rendered, and its requests are logged.
    const rev2 = await putRoute(client, { stack: 'life-quiet', current: 'v1', domains: ['quiet.life.test'], endpoints: [endpointFor('life-quiet', 'web', 'v1', 1, be.port)], accessLog: ['web'] });
    await served(router, hostName, rev2);
    assert.match(await conf(), /access_log \S+requests\.log vk if=\$vk_route;/);
    for (let i = 0; i < 3; i++) assert.equal(await who(port, 'quiet.life.test'), 'quiet-1');
    await waitFor('3 access lines', () => router.accessLog.tail('life-quiet', 'web', 100).length === 3, 5000);
    assert.equal(router.accessLog.tail('life-quiet', 'web', 100).filter((l) => l.includes('"status":200')).length, 3);
  });

  test("a missing nginx binary: start() rejects with VIKING_E_NGINX_MISSING, naming the flag and how to install nginx", async () => {
    const router = new Router({ client, hostName: 'life-missing', dataDir: path.join(tmp, 'missing'), port: 0, host: '127.0.0.1', workers: 1, engine: 'nginx', nginxBinary: '/nonexistent/nginx' });
    routers.push(router);
    await assert.rejects(router.start(), (err: unknown) => {
      assert.ok(err instanceof VikingError, String(err));
      assert.equal(err.code, 'VIKING_E_NGINX_MISSING');
      assert.match(err.message, /\/nonexistent\/nginx/);
      assert.match(err.message, /--router-engine nginx/);
      assert.match(err.message, /--router-engine node/);
      assert.match(err.message, /apt-get install nginx/);
      return true;
    });
  });
});

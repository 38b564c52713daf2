/**
 * A router's graceful stop on both engines (STOP_DRAIN_MS, lib/router/engine.ts),
 * with real etcd, real HTTP backends and real keep-alive clients: no request
 * sent into a kept-alive connection is lost while the router stops.
 *
 * Why it matters: a stop closes every idle kept-alive connection. A client
 * that sends its next request on one just then gets a reset, and a POST is
 * then lost without the client knowing whether the app got it. Eight
 * clients POST back to back, each on one kept-alive connection, while the
 * router stops: each must end on a refused connection (the port closed: safe
 * to send elsewhere), having seen an answer with `Connection: close` first.
 * A reset is allowed only on a connection opened while the listening socket
 * closed (the kernel had accepted it, no server read its request). The Node
 * engine refuses new connections from the start of its stop; nginx takes
 * them until it stops and answers them with `Connection: close`.
 * Without the drain window both engines reset 2-7 requests sent on kept-alive
 * connections per stop here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { Router, type RouterEngine } from '../../lib/router/router.js';
import { endpointFor, putRoute, startBackend, type Backend } from '../helpers/router-fixtures.js';

let etcd: TestEtcd;
let client: Etcd3;
let tmp: string;
const backends: Backend[] = [];
const routers: Router[] = [];

before(async () => {
  etcd = await startTestEtcd('graceful-stop');
  client = connectEtcd(etcd.url);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'viking-graceful-stop-'));
});

after(async () => {
  for (const r of routers) await r.stop().catch(() => undefined);
  await Promise.all(backends.map((b) => b.close()));
  client?.close();
  await etcd?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** One POST on the agent's connection: its status and whether it said `Connection: close`, or the error code, marked when the request went into a reused connection. */
function post(port: number, host: string, agent: http.Agent): Promise<{ status?: number; close?: boolean; error?: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { host }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, close: res.headers.connection === 'close' }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: `${err.code ?? err.message} on a reused connection` }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: req.reusedSocket ? `${err.code ?? err.message} on a reused connection` : (err.code ?? err.message) }));
    // A request nobody answers or closes (a connection lost between a stopping router's processes) is a failure too.
    req.setTimeout(5000, () => req.destroy(Object.assign(new Error('no answer in 5 s'), { code: 'ETIMEDOUT' })));
    req.end('x');
  });
}

const cases: Array<{ name: string; engine: RouterEngine; workers: number }> = [
  { name: 'node engine, in the host process', engine: 'node', workers: 0 },
  { name: 'node engine, 2 worker processes', engine: 'node', workers: 2 },
  { name: 'nginx engine, 2 workers', engine: 'nginx', workers: 2 },
];

for (const c of cases) {
  test(`${c.name}: a graceful stop answers Connection: close first; no request sent into a kept-alive connection is reset`, async () => {
    const stack = `stop-${c.engine}-${c.workers}`;
    const host = `${stack}.test`;
    const be = await startBackend(stack);
    backends.push(be);
    const rev = await putRoute(client, { stack, current: 'v1', domains: [host], endpoints: [endpointFor(stack, 'web', 'v1', 1, be.port)] });
    const router = new Router({ client, hostName: stack, dataDir: path.join(tmp, stack), port: 0, httpsPort: 0, host: '127.0.0.1', workers: c.workers, engine: c.engine });
    routers.push(router);
    const port = await router.start();
    await waitFor(`${stack} to serve revision ${rev}`, () => BigInt(router.servedRevision ?? 0) >= BigInt(rev));

    const outcomes = new Map<string, number>();
    const count = (what: string): void => void outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    let stopping = false;
    /** Clients that got an answer saying `Connection: close` once the stop began. */
    let warned = 0;
    const loop = async (): Promise<void> => {
      let sawClose = false;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (;;) {
          const res = await post(port, host, agent);
          count(res.error ?? String(res.status));
          if (res.error === 'ECONNREFUSED') return;
          if (stopping && res.close && !sawClose) {
            sawClose = true;
            warned++;
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await waitFor('the clients to be busy', () => (outcomes.get('200') ?? 0) > 200, 10_000, 5);
    stopping = true;
    await router.stop();
    routers.splice(routers.indexOf(router), 1);
    await Promise.all(loops);
    const summary = JSON.stringify(Object.fromEntries(outcomes));
    // A connection the kernel completed while the listening socket closed is reset unread (no server saw its
    // request): only a request sent into an open, kept-alive connection may be lost, and none is.
    assert.deepEqual([...outcomes.keys()].filter((k) => k !== '200' && k !== 'ECONNREFUSED' && k !== 'ECONNRESET'), [], `only answers, refused and reset new connections: ${summary}`);
    assert.equal(outcomes.get('ECONNREFUSED'), 8, `every client ends on a closed port: ${summary}`);
    assert.equal(warned, 8, `every client's connection was closed by an answer saying so: ${summary}`);
  });
}

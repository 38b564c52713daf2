/**
 * The router against a real etcd and real HTTP backends, run twice: serving
 * from the host process (workers: 0) and from two worker processes (the
 * default on a multi-core host). Routes come only from etcd keys, as a push
 * and the slaves write them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd, readJSON } from '../../lib/store/client.js';
import { domainKey, portsKey, routerKey, stackKey } from '../../lib/store/keys.js';
import type { RouterAck } from '../../lib/store/records.js';
import { Router, type RouterEngine } from '../../lib/router/router.js';

/** router-routing-nginx.test.ts runs this file against the nginx engine (nginx with 2 workers, the Node server as its fallback). */
const ENGINE = (process.env.VIKING_TEST_ROUTER_ENGINE ?? 'node') as RouterEngine;
import { freePort } from '../../lib/net.js';
import { call, echo, endpointFor, openUpgrade, putRoute, rawCall, startBackend, type Backend, type Echo } from '../helpers/router-fixtures.js';

let etcd: TestEtcd;
let client: Etcd3;
let dataDir: string;

before(async () => {
  etcd = await startTestEtcd('router');
  client = connectEtcd(etcd.url);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-router-'));
});

after(async () => {
  client?.close();
  await etcd?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

for (const workers of ENGINE === 'nginx' ? [2] : [0, 2]) {
  describe(`router (${ENGINE} engine) with ${workers === 0 ? 'no worker processes' : `${workers} worker processes`}`, () => {
    const ns = `w${workers}`;
    const hostName = `router-${ns}`;
    let router: Router;
    let port: number;
    let a: Backend;
    let b: Backend;
    let v2: Backend;

    /** Resolves once every server of the router serves `rev` or later (and has acknowledged it in etcd). */
    const served = (rev: string): Promise<unknown> =>
      waitFor(`router to serve revision ${rev}`, async () => {
        const ack = await readJSON<RouterAck>(client, routerKey(hostName));
        return ack && BigInt(ack.revision) >= BigInt(rev) && BigInt(router.servedRevision ?? 0) >= BigInt(rev);
      });

    before(async () => {
      [a, b, v2] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('v2')]);
      await putRoute(client, { stack: `${ns}-shop`, current: 'v1', domains: [`shop.${ns}.test`, `www.shop.${ns}.test`], endpoints: [endpointFor(`${ns}-shop`, 'web', 'v1', 1, a.port), endpointFor(`${ns}-shop`, 'web', 'v1', 2, b.port)] });
      const rev = await putRoute(client, { stack: `${ns}-help`, current: 'v1', domains: [`*.help.${ns}.test`], endpoints: [endpointFor(`${ns}-help`, 'web', 'v1', 1, b.port)] });
      router = new Router({ client, hostName, dataDir: path.join(dataDir, ns), port: 0, host: '127.0.0.1', workers, engine: ENGINE });
      port = await router.start();
      router.attachAcks({ put: async (k, v) => void (await client.put(k).value(v)) });
      await served(rev);
      assert.equal(router.workerPids().length, workers);
    });

    after(async () => {
      await router?.stop();
      await Promise.all([a, b, v2].map((x) => x?.close()));
    });

    test('exact domains, case-insensitive and with the port stripped', async () => {
      for (const host of [`shop.${ns}.test`, `SHOP.${ns.toUpperCase()}.Test:8080`, `www.shop.${ns}.test.`]) {
        const res = await call(port, host);
        assert.equal(res.status, 200, `${host}: ${res.body}`);
        assert.match((JSON.parse(res.body) as Echo).name, /^[ab]$/, host);
      }
    });

    test('wildcard domains match exactly one label below them, not the bare domain nor deeper names', async () => {
      const res = await call(port, `docs.help.${ns}.test`);
      assert.equal(res.status, 200);
      assert.equal((JSON.parse(res.body) as Echo).name, 'b');
      for (const host of [`help.${ns}.test`, `a.b.help.${ns}.test`]) assert.equal((await call(port, host)).status, 404, host);
    });

    test('unknown domains get a 404 that names the domain and says what to do', async () => {
      const res = await call(port, 'Nothing.Example:81', { headers: { accept: 'text/html' } });
      assert.equal(res.status, 404);
      assert.match(res.headers['content-type'] ?? '', /text\/html/);
      assert.match(res.body, /no app for the domain nothing\.example/);
      assert.match(res.body, /domains:/);
      const plain = await call(port, 'nothing.example');
      assert.match(plain.body, /^404 No app here: /);
    });

    test('requests are spread over both replicas', async () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < 40; i++) {
        const res = await call(port, `shop.${ns}.test`);
        const name = (JSON.parse(res.body) as Echo).name;
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      assert.deepEqual([...seen.keys()].sort(), ['a', 'b']);
      for (const [name, n] of seen) assert.ok(n >= 10, `${name} got only ${n} of 40`);
    });

    test('hop-by-hop headers are dropped both ways and X-Forwarded-* are set', async () => {
      const res = await call(port, `shop.${ns}.test:8080`, {
        path: '/h?x=1',
        headers: { connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=1', te: 'trailers', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'gopher', 'x-app': 'kept' },
      });
      const seen = JSON.parse(res.body) as Echo;
      assert.equal(seen.url, '/h?x=1');
      assert.equal(seen.headers.host, `shop.${ns}.test:8080`);
      assert.equal(seen.headers['x-app'], 'kept');
      // nginx drops only the hop-by-hop headers it knows, not the ones a Connection header lists (README, router engines).
      if (ENGINE === 'node') assert.equal(seen.headers['x-hop'], undefined);
      assert.equal(seen.headers.te, undefined);
      assert.equal(seen.headers['keep-alive'], undefined);
      // The client is no trusted proxy (none are configured): its X-Forwarded-For is replaced, not extended.
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], `shop.${ns}.test:8080`);
      assert.equal(res.headers['keep-alive'], 'timeout=65', 'the router speaks for its own connection, not the app\'s');
      assert.match(String(res.headers['x-backend']), /^[ab]$/);
    });

    test('request bodies stream through both ways', async () => {
      const body = Buffer.alloc(3 * 1024 * 1024, 7);
      const res = await call(port, `shop.${ns}.test`, { method: 'POST', path: '/upload', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 200);
      const seen = JSON.parse(res.body) as Echo;
      assert.equal(seen.method, 'POST');
      assert.equal(seen.bodyBytes, body.length);
      const chunked = await new Promise<Echo>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/c', headers: { host: `shop.${ns}.test`, 'transfer-encoding': 'chunked' }, agent: false }, (r) => {
          let t = '';
          r.on('data', (d: Buffer) => (t += d.toString()));
          r.on('end', () => resolve(JSON.parse(t) as Echo));
        });
        req.on('error', reject);
        req.write('hello ');
        req.end('world');
      });
      assert.equal(chunked.bodyBytes, 11);
    });

    test('a refused connection is retried on another replica; with none left the 502 says why', async () => {
      const dead = await freePort();
      const rev = await putRoute(client, { stack: `${ns}-half`, current: 'v1', domains: [`half.${ns}.test`], endpoints: [endpointFor(`${ns}-half`, 'web', 'v1', 1, dead), endpointFor(`${ns}-half`, 'web', 'v1', 2, a.port)] });
      await served(rev);
      for (let i = 0; i < 12; i++) {
        const res = await call(port, `half.${ns}.test`);
        assert.equal(res.status, 200, `request ${i}: ${res.body}`);
      }
      const post = await call(port, `half.${ns}.test`, { method: 'POST' });
      assert.equal(post.status, 200, 'a bodiless POST whose connect failed is safe to retry');
      const rev2 = await putRoute(client, { stack: `${ns}-gone`, current: 'v1', domains: [`gone.${ns}.test`], endpoints: [endpointFor(`${ns}-gone`, 'web', 'v1', 1, dead)] });
      await served(rev2);
      const res = await call(port, `gone.${ns}.test`);
      assert.equal(res.status, 502);
      assert.match(res.body, new RegExp(`${ns}-gone/web did not answer.*connection refused.*127\\.0\\.0\\.1:${dead}.*viking ps ${ns}-gone`));
    });

    test('a node without a healthy instance answers 503 naming it', async () => {
      const rev = await putRoute(client, { stack: `${ns}-empty`, current: 'v1', domains: [`empty.${ns}.test`] });
      await served(rev);
      const res = await call(port, `empty.${ns}.test`);
      assert.equal(res.status, 503);
      assert.match(res.body, new RegExp(`${ns}-empty/web has no healthy instance`));
    });

    test('only the current release takes traffic; switching it moves all traffic at once', async () => {
      const rev = await putRoute(client, { stack: `${ns}-shop`, current: 'v1', domains: [`shop.${ns}.test`, `www.shop.${ns}.test`], endpoints: [endpointFor(`${ns}-shop`, 'web', 'v2', 1, v2.port)] });
      await served(rev);
      for (let i = 0; i < 10; i++) assert.notEqual((JSON.parse((await call(port, `shop.${ns}.test`)).body) as Echo).name, 'v2', 'a warming release gets nothing');
      const stack = JSON.parse((await client.get(stackKey(`${ns}-shop`)).string()) ?? '{}') as { current: string };
      stack.current = 'v2';
      const switched = (await client.put(stackKey(`${ns}-shop`)).value(JSON.stringify(stack)).exec()).header.revision;
      await served(switched);
      for (let i = 0; i < 10; i++) assert.equal((JSON.parse((await call(port, `shop.${ns}.test`)).body) as Echo).name, 'v2');
    });

    test('a websocket stays connected and echoes while other routes change', async () => {
      const rev = await putRoute(client, { stack: `${ns}-chat`, current: 'v1', domains: [`chat.${ns}.test`], endpoints: [endpointFor(`${ns}-chat`, 'web', 'v1', 1, a.port)] });
      await served(rev);
      const { socket, head } = await openUpgrade(port, `chat.${ns}.test`);
      assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/, 'the app\'s own 101 reaches the client');
      assert.match(head, /X-Backend: a/);
      let closed = false;
      socket.on('close', () => (closed = true));
      assert.equal(await echo(socket, 'before'), 'before');
      for (let i = 0; i < 15; i++) {
        // Other stacks come and go, and so do their endpoints and domains.
        const r = await putRoute(client, { stack: `${ns}-churn${i}`, current: 'v1', domains: [`churn${i}.${ns}.test`], endpoints: [endpointFor(`${ns}-churn${i}`, 'web', 'v1', 1, b.port)] });
        if (i % 3 === 2) await client.delete().key(domainKey(`churn${i - 1}.${ns}.test`));
        if (i % 5 === 4) await client.delete().key(portsKey(endpointFor(`${ns}-churn${i}`, 'web', 'v1', 1, b.port)));
        await served(r);
        assert.equal(await echo(socket, `message ${i}`), `message ${i}`);
      }
      assert.equal((await call(port, `churn3.${ns}.test`)).status, 200, 'the new routes serve meanwhile');
      assert.equal(closed, false, 'the websocket was never closed');
      socket.destroy();
    });

    test('an upgrade to an unknown domain gets a 404 on the raw socket', async () => {
      const answer = await rawCall(port, `GET /ws HTTP/1.1\r\nHost: nope.${ns}.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 404 No app here/);
      assert.match(answer, /no app for the domain nope/);
    });

    if (workers > 0) test('a worker process that dies is replaced and gets the current routes', async () => {
      const [victim] = router.workerPids();
      assert.ok(victim);
      process.kill(victim, 'SIGKILL');
      await waitFor('a new worker to replace the killed one', () => {
        const pids = router.workerPids();
        return pids.length === workers && !pids.includes(victim) && router.servedRevision !== undefined;
      }, 15_000);
      const rev = await putRoute(client, { stack: `${ns}-late`, current: 'v1', domains: [`late.${ns}.test`], endpoints: [endpointFor(`${ns}-late`, 'web', 'v1', 1, a.port)] });
      await served(rev);
      for (let i = 0; i < 20; i++) {
        // Fresh connections land on every worker in turn: all of them must know every route.
        assert.equal((await call(port, `late.${ns}.test`)).status, 200);
        assert.equal((await call(port, `shop.${ns}.test`)).status, 200);
      }
    });

    test('a request without Host gets the 404 page', async () => {
      const answer = await rawCall(port, 'GET / HTTP/1.0\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 404/);
      assert.match(answer, /no Host header/);
    });
  });
}

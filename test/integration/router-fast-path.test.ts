/**
 * The router's raw fast path on real sockets: every response framing an app
 * can use, pipelining, bodies, backpressure, retries, broken apps, and the
 * hand-over to node:http for what the fast path leaves alone. The apps here
 * are raw TCP servers, so each test controls the exact bytes they answer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { RouterServer } from '../../lib/router/server.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import { freePort } from '../../lib/net.js';
import { call, endpointFor, rawCall, startBackend, type Backend, type Echo } from '../helpers/router-fixtures.js';
import { waitFor } from '../helpers/wait.js';

/** A raw app: `answer` gets each request head (and its body) and writes whatever bytes it likes. */
interface RawApp {
  port: number;
  heads: string[];
  connections: number;
  closed: number;
  server: net.Server;
}

async function rawApp(answer: (socket: net.Socket, head: string, body: Buffer, app: RawApp) => void): Promise<RawApp> {
  const app = { heads: [] as string[], connections: 0, closed: 0 } as RawApp;
  app.server = net.createServer((socket) => {
    app.connections++;
    socket.on('close', () => app.closed++);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.subarray(end + 4, end + 4 + length);
        buf = buf.subarray(end + 4 + length);
        app.heads.push(head);
        answer(socket, head, body, app);
      }
    });
  });
  await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', () => r()));
  app.port = (app.server.address() as AddressInfo).port;
  return app;
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

let server: RouterServer;
let port: number;
const apps: RawApp[] = [];
let echoBackend: Backend;
const routes: Array<[string, number[]]> = [];

function snapshot(): RouteSnapshot {
  return {
    revision: '1',
    domains: routes.map(([d]) => [d, { stack: d.split('.')[0]!, node: 'web', kind: 'container' }]),
    stacks: [],
    endpoints: routes.flatMap(([d, ports]) => ports.map((p, i) => endpointFor(d.split('.')[0]!, 'web', 'v1', i + 1, p))),
    sites: [],
  };
}

async function route(domain: string, ...ports: number[]): Promise<void> {
  routes.push([domain, ports]);
  server.apply(snapshot());
}

before(async () => {
  server = new RouterServer({ upstream: { headersTimeoutMs: 1500 } });
  port = await server.listen(0, '127.0.0.1');
  echoBackend = await startBackend('echo');
  await route('echo.fast.test', echoBackend.port);
});

after(async () => {
  await server.close(500);
  await echoBackend.close();
  for (const a of apps) a.server.close();
});

async function app(answer: Parameters<typeof rawApp>[0]): Promise<RawApp> {
  const a = await rawApp(answer);
  apps.push(a);
  return a;
}

test('chunked answers pass through byte for byte, trailers included, and the app connection is reused', async () => {
  const a = await app((s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n'));
  await route('chunked.fast.test', a.port);
  for (let i = 0; i < 3; i++) {
    const agent = new http.Agent({ keepAlive: true });
    const trailers = await new Promise<{ body: string; trailers: NodeJS.Dict<string>; te: string | undefined }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, headers: { host: 'chunked.fast.test' }, agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ body, trailers: res.trailers, te: res.headers['transfer-encoding'] }));
      }).on('error', reject);
    });
    agent.destroy();
    assert.equal(trailers.body, 'hello world');
    assert.equal(trailers.te, 'chunked');
    assert.equal(trailers.trailers['x-sum'], '42');
  }
  assert.equal(a.connections, 1, 'one app connection for all three requests');
});

test('an answer delimited by closing the connection arrives whole, re-chunked, and the client connection stays open', async () => {
  const a = await app((s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ');
    setTimeout(() => s.end('this body'), 30);
  });
  await route('close.fast.test', a.port);
  const agent = new http.Agent({ keepAlive: true });
  const res = await call(port, 'close.fast.test', { agent });
  agent.destroy();
  assert.equal(res.status, 200);
  assert.equal(res.body, 'all of this body');
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.headers.connection, 'keep-alive');
});

test('informational answers are skipped; HEAD, 204 and 304 have no body; keep-alive survives all', async () => {
  const a = await app((s, head) => {
    const path = head.split(' ')[1];
    if (head.startsWith('HEAD ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
    else if (path === '/early') s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + ok('final'));
    else if (path === '/empty') s.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
    else if (path === '/same') s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 100\r\n\r\n');
    else s.write(ok('0123456789'));
  });
  await route('framing.fast.test', a.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const early = await call(port, 'framing.fast.test', { path: '/early', agent });
  assert.deepEqual([early.status, early.body], [200, 'final']);
  const headRes = await call(port, 'framing.fast.test', { method: 'HEAD', agent });
  assert.deepEqual([headRes.status, headRes.body, headRes.headers['content-length']], [200, '', '10']);
  const empty = await call(port, 'framing.fast.test', { path: '/empty', agent });
  assert.deepEqual([empty.status, empty.body, empty.headers['x-a']], [204, '', '1']);
  const same = await call(port, 'framing.fast.test', { path: '/same', agent });
  assert.deepEqual([same.status, same.body], [304, '']);
  const after304 = await call(port, 'framing.fast.test', { agent });
  assert.deepEqual([after304.status, after304.body], [200, '0123456789'], 'the connection is still in step after a 304 with a Content-Length');
  agent.destroy();
  assert.equal(a.connections, 1);
});

test('pipelined requests are answered in order on one connection', async () => {
  const answer = await rawCall(port, ['/1', '/2', '/3'].map((p, i) => `GET ${p} HTTP/1.1\r\nHost: echo.fast.test\r\n${i === 2 ? 'Connection: close\r\n' : ''}\r\n`).join(''));
  const urls = [...answer.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(urls, ['/1', '/2', '/3']);
  assert.equal(answer.match(/HTTP\/1\.1 200 OK/g)?.length, 3);
});

test('request bodies with a Content-Length stream through; big answers survive a slow reader', async () => {
  const body = Buffer.alloc(2 * 1024 * 1024 + 3, 1);
  const res = await call(port, 'echo.fast.test', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal((JSON.parse(res.body) as Echo).bodyBytes, body.length);
  const big = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  const a = await app((s) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
    s.write(big);
  });
  await route('big.fast.test', a.port);
  const got = await new Promise<Buffer>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, headers: { host: 'big.fast.test' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // Read slowly so the router has to hold the app back.
        res.pause();
        setTimeout(() => res.resume(), 1);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });
  assert.equal(createHash('sha1').update(got).digest('hex'), createHash('sha1').update(big).digest('hex'));
});

test('a connection that leaves the fast path (website, unknown domain, HTTP/1.0, chunked upload) still proxies afterwards', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await call(port, 'echo.fast.test', { agent })).status, 200);
  assert.equal((await call(port, 'unknown.fast.test', { agent })).status, 404, 'handed to node:http');
  for (let i = 0; i < 3; i++) {
    const res = await call(port, 'echo.fast.test', { agent, path: `/after/${i}` });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as Echo).url, `/after/${i}`);
  }
  agent.destroy();
  const old = await rawCall(port, 'GET /ten HTTP/1.0\r\nHost: echo.fast.test\r\n\r\n');
  assert.match(old, /^HTTP\/1\.1 200 OK/);
  assert.match(old, /"url":"\/ten"/);
});

test('a request smuggling attempt (Content-Length with Transfer-Encoding) is refused by node:http and reaches no app', async () => {
  const before = echoBackend.hits;
  const answer = await rawCall(port, 'POST / HTTP/1.1\r\nHost: echo.fast.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.fast.test\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400/);
  assert.equal(echoBackend.hits, before);
});

test('an app that drops connections without answering: GETs are retried elsewhere, a POST with a body gets a 502', async () => {
  const rude = await app((s) => s.destroy());
  await route('flaky.fast.test', rude.port, echoBackend.port);
  for (let i = 0; i < 10; i++) assert.equal((await call(port, 'flaky.fast.test')).status, 200, `GET ${i}`);
  let saw502 = false;
  for (let i = 0; i < 10 && !saw502; i++) {
    const res = await call(port, 'flaky.fast.test', { method: 'POST', body: 'order=1' });
    if (res.status === 502) {
      saw502 = true;
      assert.match(res.body, /flaky\/web did not answer: the app closed the connection without answering/);
    } else assert.equal(res.status, 200);
  }
  assert.ok(saw502, 'a POST reaching the rude app is not replayed');
});

test('refused connections are retried, then answered with a 502 naming the endpoint', async () => {
  const dead = await freePort();
  await route('dead.fast.test', dead);
  const res = await call(port, 'dead.fast.test', { headers: { accept: 'text/html' } });
  assert.equal(res.status, 502);
  assert.match(res.headers['content-type'] ?? '', /text\/html/);
  assert.match(res.body, new RegExp(`connection refused \\(127\\.0\\.0\\.1:${dead}`));
  await route('half.fast.test', dead, echoBackend.port);
  for (let i = 0; i < 6; i++) assert.equal((await call(port, 'half.fast.test', { method: 'POST', body: 'x' })).status, 200, 'a refused connect is safe to retry, even with a body');
});

test('malformed answers give a 502; an app too slow to answer gives a 504', async () => {
  const broken = await app((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'));
  await route('broken.fast.test', broken.port);
  const res = await call(port, 'broken.fast.test');
  assert.equal(res.status, 502);
  assert.match(res.body, /invalid answer: bad content-length/);
  const slow = await app(() => {});
  await route('slow.fast.test', slow.port);
  const started = Date.now();
  const late = await call(port, 'slow.fast.test');
  assert.equal(late.status, 504);
  assert.match(late.body, /slow\/web did not answer in time/);
  assert.ok(Date.now() - started < 5000);
});

test('a client that goes away mid-answer makes the router drop the app connection', async () => {
  let appSocket: net.Socket | undefined;
  const a = await app((s) => {
    appSocket = s;
    // A streaming answer (like server-sent events): a line every 20 ms.
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial');
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('data: tick\n\n')), 20);
  });
  await route('abandon.fast.test', a.port);
  await new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, headers: { host: 'abandon.fast.test' }, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
  });
  await waitFor('the app connection to be closed', () => appSocket !== undefined && a.closed === 1, 5000);
});

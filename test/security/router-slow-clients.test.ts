/**
 * Slow clients against a real router (issue 9, item 6): a slowloris client
 * that sends its request head one byte at a time must lose its connection
 * when the head deadline (counted from the head's first byte) passes, on
 * the fast path and on the node:http path it hands connections to; an idle
 * kept-alive connection closes after the idle timeout; and past the
 * per-worker connection cap a new client gets a clean 503 with
 * `connection: close` while those already connected are served.
 *
 * Timeouts are shortened through the router's options so the test is quick.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RouterServer } from '../../lib/router/server.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import { call, endpointFor, startBackend, type Backend } from '../helpers/router-fixtures.js';

const HEAD_MS = 1000;
const IDLE_MS = 1500;
const MAX_CONNECTIONS = 6;

let server: RouterServer;
let port: number;
let backend: Backend;

before(async () => {
  backend = await startBackend('slow-clients');
  server = new RouterServer({ clientTimeouts: { headMs: HEAD_MS, idleMs: IDLE_MS }, maxConnections: MAX_CONNECTIONS, upstream: { headersTimeoutMs: 1000 } });
  port = await server.listen(0, '127.0.0.1');
  const snap: RouteSnapshot = {
    revision: '1',
    domains: [['app.slow.test', { stack: 'app', node: 'web', kind: 'container' }]],
    stacks: [],
    endpoints: [endpointFor('app', 'web', 'v1', 1, backend.port)],
    sites: [],
  };
  server.apply(snap);
});

after(async () => {
  await server.close(200);
  await backend.close();
});

interface Loris {
  socket: net.Socket;
  /** Resolves with how long the connection lived, in ms, and what the router sent. */
  closed: Promise<{ ms: number; received: string }>;
}

/**
 * A slowloris client: sends `prefix` at once, then one byte of `drip` every
 * `everyMs` (a header line that never ends), until the router closes.
 */
function slowloris(prefix: string, everyMs = 100, drip = 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'): Loris {
  const socket = net.connect({ host: '127.0.0.1', port });
  const started = Date.now();
  let received = '';
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', () => {});
  socket.on('connect', () => {
    socket.write(prefix);
    timer = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write(drip[i++ % drip.length]!);
    }, everyMs);
  });
  const closed = new Promise<{ ms: number; received: string }>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ ms: Date.now() - started, received });
    });
  });
  // Safety net for the old behaviour (the connection would live on): end the test instead of hanging.
  setTimeout(() => socket.destroy(), 15_000).unref();
  return { socket, closed };
}

test('fast path: a client dripping its head one byte at a time is cut at the head deadline, not kept alive by each byte', async () => {
  const loris = slowloris('GET / HTTP/1.1\r\nHost: app.slow.test\r\n');
  const { ms, received } = await loris.closed;
  assert.ok(ms >= HEAD_MS - 50, `closed too early (${ms} ms)`);
  assert.ok(ms < HEAD_MS + 1500, `the connection lived ${ms} ms although the head deadline is ${HEAD_MS} ms`);
  assert.ok(received === '' || /^HTTP\/1\.1 408 /.test(received), `unexpected answer ${JSON.stringify(received.slice(0, 40))}`);
});

test('a connection that never sends a byte is closed at the head deadline, not held for the idle timeout', async () => {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  setTimeout(() => socket.destroy(), 10_000).unref();
  const started = Date.now();
  const ms = await new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
  assert.ok(ms < HEAD_MS + 1000, `a silent connection lived ${ms} ms`);
  assert.match(received, /^HTTP\/1\.1 408 /);
});

test('node:http path: after a hand-over, a dripped head is cut at the same deadline', async () => {
  // The first request goes to node:http (unknown domain: 404) and keeps the connection; the second head drips.
  const loris = slowloris('GET / HTTP/1.1\r\nHost: unknown.slow.test\r\n\r\nGET / HTTP/1.1\r\nHost: app.slow.test\r\n');
  const { ms, received } = await loris.closed;
  assert.match(received, /^HTTP\/1\.1 404 /, 'the first request was answered by node:http');
  assert.ok(ms < HEAD_MS + 2000, `the connection lived ${ms} ms although the head deadline is ${HEAD_MS} ms`);
});

test('an idle kept-alive connection closes after the idle timeout, on both paths', async () => {
  for (const host of ['app.slow.test', 'unknown.slow.test']) {
    const socket = net.connect({ host: '127.0.0.1', port });
    const started = Date.now();
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    const ms = await new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    assert.match(received, /^HTTP\/1\.1 (200|404) /, host);
    assert.ok(ms >= IDLE_MS - 100 && ms < IDLE_MS + 1500, `${host}: idle connection closed after ${ms} ms (idle timeout ${IDLE_MS} ms)`);
  }
});

test('a slow but steady chunked upload (node:http path) is not cut by the app-answer timeout', async () => {
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let out = '';
    s.setEncoding('latin1');
    s.on('error', reject);
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('connect', async () => {
      s.write('POST /upload HTTP/1.1\r\nHost: app.slow.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
      // 2 s of upload against a 1 s answer timeout (the head itself was quick).
      for (let i = 0; i < 5; i++) {
        s.write('400\r\n' + 'u'.repeat(1024) + '\r\n');
        await new Promise((r) => setTimeout(r, 400));
      }
      s.write('0\r\n\r\n');
    });
  });
  assert.match(answer, /^HTTP\/1\.1 200 /, answer.slice(0, 120));
  assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '')).bodyBytes, 5 * 1024);
});

test('past the connection cap a new client gets 503 with connection: close; the connected ones are still served', async () => {
  const held: net.Socket[] = [];
  try {
    // Fill the cap with kept-alive connections that each made one request.
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      await new Promise<void>((resolve) => {
        s.once('data', () => resolve());
        s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: app.slow.test\r\n\r\n'));
      });
      held.push(s);
    }
    assert.equal(server.openConnections, MAX_CONNECTIONS);
    const refused = await call(port, 'app.slow.test').catch((err: Error) => ({ status: 0, headers: {}, body: err.message }));
    assert.equal(refused.status, 503, `got ${JSON.stringify(refused)}`);
    assert.equal((refused.headers as Record<string, string>).connection, 'close');
    assert.match(refused.body, /connection limit/);
    // One of those connected asks again: it is served.
    const again = await new Promise<string>((resolve) => {
      held[0]!.once('data', (d: Buffer) => resolve(d.toString('latin1')));
      held[0]!.write('GET /again HTTP/1.1\r\nHost: app.slow.test\r\n\r\n');
    });
    assert.match(again, /^HTTP\/1\.1 200 /);
    // One leaves: a newcomer gets in.
    held.pop()!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await call(port, 'app.slow.test')).status, 200);
  } finally {
    for (const s of held) s.destroy();
  }
});

/**
 * Request smuggling through the router (issue 9, item 1), replayed end to
 * end: a real RouterServer on loopback, a real node:http app behind it on a
 * kept-alive (pooled) upstream connection, attackers on raw sockets and a
 * victim with an Authorization header right after them. The app must never
 * see a request the router did not frame itself, and the victim's request
 * must reach the app as its own request, never as the body of another.
 *
 * Also here (item 10): X-Forwarded-For from an untrusted client is replaced
 * on both router paths, and a head with more header fields than the limit
 * gets 431 on both paths instead of being cut.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { RouterServer } from '../../lib/router/server.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import { call, endpointFor, rawCall } from '../helpers/router-fixtures.js';
import { waitFor } from '../helpers/wait.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  connection: number;
}

/** The app: a node:http server that records every request it parses, on which connection. */
const seen: Seen[] = [];
let connections = 0;
const app = http.createServer((req, res) => {
  const connection = (req.socket as net.Socket & { viking?: number }).viking ?? -1;
  const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '', connection };
  seen.push(entry);
  req.setEncoding('latin1');
  req.on('data', (d: string) => (entry.body += d));
  req.on('end', () => {
    const body = JSON.stringify({ url: entry.url, body: entry.body, xff: req.headers['x-forwarded-for'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
/** Bytes the app received on all its connections. */
let appBytes = 0;
app.on('connection', (s: net.Socket & { viking?: number }) => {
  s.viking = ++connections;
  s.on('data', (d: Buffer) => (appBytes += d.length));
});
// Refuses every upgrade with a 403 and keeps reading the connection, as many apps do.
app.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '', connection: -2 });
  socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden');
  // Anything after a refused upgrade on this socket (bytes that came with the head, or later): note each request line.
  const note = (d: Buffer): void => {
    for (const m of d.toString('latin1').matchAll(/^([A-Z]+) (\S+) HTTP\/1\.1\r$/gm)) seen.push({ method: m[1]!, url: m[2]!, headers: {}, body: '', connection: -2 });
  };
  note(head);
  socket.on('data', note);
  socket.on('error', () => {});
});

let server: RouterServer;
let port: number;
let appPort: number;

before(async () => {
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  appPort = (app.address() as AddressInfo).port;
  server = new RouterServer({ trustedProxies: ['127.0.0.2'] });
  port = await server.listen(0, '127.0.0.1');
  const snap: RouteSnapshot = {
    revision: '1',
    domains: [['app.smuggle.test', { stack: 'app', node: 'web', kind: 'container' }]],
    stacks: [],
    endpoints: [endpointFor('app', 'web', 'v1', 1, appPort)],
    sites: [],
  };
  server.apply(snap);
});

after(async () => {
  await server.close(200);
  app.closeAllConnections();
  await new Promise<void>((r) => app.close(() => r()));
});

/** Sends raw bytes on a fresh connection and collects the answer until the router closes or `ms` pass. */
function send(bytes: string, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(Buffer.from(bytes, 'latin1')));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, ms);
    s.on('end', done);
    s.on('error', done);
  });
}

/** The victim: a normal client whose request (with its credentials) must reach the app as its own. */
async function victim(tag: string): Promise<void> {
  const answer = await Promise.race([
    call(port, 'app.smuggle.test', { path: `/victim-${tag}`, headers: { authorization: `Bearer secret-${tag}`, cookie: `session=${tag}` } }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the victim's request ${tag} got no answer: swallowed by a smuggled request?`)), 3000)),
  ]);
  assert.equal(answer.status, 200);
  assert.equal(JSON.parse(answer.body).url, `/victim-${tag}`);
  const mine = seen.filter((s) => s.url === `/victim-${tag}`);
  assert.equal(mine.length, 1, 'the app saw the victim request exactly once');
  assert.equal(mine[0]!.headers.authorization, `Bearer secret-${tag}`);
  assert.equal(mine[0]!.body, '');
}

const smuggled = (tag: string): string => `GET /smuggled-${tag} HTTP/1.1\r\nHost: app.smuggle.test\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 300\r\n\r\n`;

function assertNoSmuggling(tag: string): void {
  const bad = seen.filter((s) => s.url.startsWith('/smuggled') || s.url.startsWith(`/admin-${tag}`));
  assert.deepEqual(bad.map((s) => `${s.method} ${s.url}`), [], 'the app saw a request the router never framed');
}

test('warm-up: the app connection is pooled (one upstream connection serves consecutive requests)', async () => {
  const before = connections;
  for (let i = 0; i < 3; i++) assert.equal((await call(port, 'app.smuggle.test', { path: `/warm-${i}` })).status, 200);
  assert.equal(connections - before, 1, 'consecutive requests reuse one kept-alive upstream connection');
});

test('the node:http path reuses its app connection too (HTTP/1.0 clients, chunked uploads)', async () => {
  await rawCall(port, 'GET /general-warm HTTP/1.0\r\nHost: app.smuggle.test\r\n\r\n');
  const before = connections;
  for (let i = 0; i < 3; i++) {
    const raw = await rawCall(port, `GET /general-${i} HTTP/1.0\r\nHost: app.smuggle.test\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.equal(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).url, `/general-${i}`);
  }
  assert.equal(connections, before, 'consecutive requests reuse the kept-alive upstream connection');
});

const connectionLists: Array<[string, (body: string) => string]> = [
  ['Connection: content-length before the length', (b) => `POST /upload HTTP/1.1\r\nHost: app.smuggle.test\r\nConnection: content-length\r\nContent-Length: ${b.length}\r\n\r\n${b}`],
  ['Connection: keep-alive, Content-Length after the length', (b) => `POST /upload HTTP/1.1\r\nHost: app.smuggle.test\r\nContent-Length: ${b.length}\r\nConnection: keep-alive, Content-Length\r\n\r\n${b}`],
  ['Connection: Content-Length, Host', (b) => `POST /upload HTTP/1.1\r\nHost: app.smuggle.test\r\nConnection: Content-Length, Host\r\nContent-Length: ${b.length}\r\n\r\n${b}`],
];

for (const [name, attack] of connectionLists) {
  test(`${name}: the body stays a body on the pooled connection; the next client's request is its own`, async () => {
    const tag = name.replace(/\W+/g, '-');
    const body = smuggled(tag);
    const answer = await send(attack(body), 800);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const upload = await waitFor('the upload at the app', () => seen.find((s) => s.url === '/upload' && s.body === body));
    assert.equal(upload.headers['content-length'], String(body.length), 'the app got the Content-Length the router framed the body with');
    await victim(tag);
    assertNoSmuggling(tag);
  });
}

const badLengths: Array<[string, string]> = [
  ['Content-Length: 5\\v', '5\v'],
  ['Content-Length: 5\\xA0', '5\xa0'],
  ['Content-Length: 5\\f', '5\f'],
  ['Content-Length: \\v5', '\v5'],
];

for (const [name, value] of badLengths) {
  test(`${name} is refused with 400 and reaches no app`, async () => {
    const tag = `cl-${name.replace(/\W+/g, '-')}`;
    const before = seen.length;
    const bytesBefore = appBytes;
    const answer = await send(`POST /bad-length HTTP/1.1\r\nHost: app.smuggle.test\r\nContent-Length: ${value}\r\n\r\nhello${smuggled(tag)}`);
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(seen.length, before, 'nothing reached the app');
    assert.equal(appBytes, bytesBefore, 'the router refused it itself: not one byte went to the app');
    await victim(tag);
    assertNoSmuggling(tag);
  });
}

test('a refused upgrade opens no tunnel: bytes sent after it never reach the app', async () => {
  const tag = 'upgrade';
  const answer = await send(
    'GET /ws HTTP/1.1\r\nHost: app.smuggle.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' +
      `GET /admin-${tag} HTTP/1.1\r\nHost: app.smuggle.test\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n`,
    1500,
  );
  await waitFor('the upgrade request at the app', () => seen.find((s) => s.url === '/ws'));
  // Give a tunnel, if any, the time to carry the pipelined request.
  await new Promise((r) => setTimeout(r, 300));
  assertNoSmuggling(tag);
  assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(answer, /\r\n\r\nforbidden$/, 'the refusal is relayed whole, and nothing after it');
  assert.match(answer, /connection: close/i);
  await victim(tag);
});

test('X-Forwarded-For from a client that is not a trusted proxy is replaced, on both router paths', async () => {
  // Fast path (HTTP/1.1).
  const fast = JSON.parse((await call(port, 'app.smuggle.test', { path: '/xff-fast', headers: { 'x-forwarded-for': '6.6.6.6' } })).body);
  assert.equal(fast.xff, '127.0.0.1');
  // node:http path (HTTP/1.0 is left to it).
  const raw = await rawCall(port, 'GET /xff-general HTTP/1.0\r\nHost: app.smuggle.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.equal(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).xff, '127.0.0.1');
});

test('X-Forwarded-For from a configured trusted proxy is extended, on both router paths', async () => {
  const viaProxy = (head: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, () => s.write(head));
      let out = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        out += d;
        const end = out.indexOf('\r\n\r\n');
        const len = Number(/content-length: (\d+)/i.exec(out)?.[1] ?? -1);
        if (end !== -1 && len >= 0 && out.length >= end + 4 + len) {
          s.destroy();
          resolve(out.slice(end + 4, end + 4 + len));
        }
      });
      s.on('error', reject);
    });
  const fast = JSON.parse(await viaProxy('GET /xff-trusted HTTP/1.1\r\nHost: app.smuggle.test\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n'));
  assert.equal(fast.xff, '203.0.113.9, 127.0.0.2');
  const general = JSON.parse(await viaProxy('GET /xff-trusted-general HTTP/1.0\r\nHost: app.smuggle.test\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n'));
  assert.equal(general.xff, '203.0.113.9, 127.0.0.2');
});

test('more header fields than the limit get 431 on both router paths, never a cut head', async () => {
  const many = Array.from({ length: 120 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  for (const version of ['HTTP/1.1', 'HTTP/1.0']) {
    const before = seen.length;
    // The Content-Length is last: node:http's maxHeadersCount used to drop it, and the body became a request.
    const body = smuggled(`h431-${version}`);
    const answer = await send(`POST /many ${version}\r\nHost: app.smuggle.test\r\n${many}Content-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(answer, /^HTTP\/1\.1 431 /, `${version}: ${answer.slice(0, 60)}`);
    assert.equal(seen.length, before, 'nothing reached the app');
  }
  await victim('h431');
  assertNoSmuggling('h431');
});

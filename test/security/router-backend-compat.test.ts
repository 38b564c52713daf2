/**
 * Liberal in what the router accepts from apps (issue 9, item 9): answers
 * nginx and curl accept must not become 502s, and the router re-frames
 * them for its client. Each case is a real backend on loopback answering
 * exactly that way: raw TCP servers writing exact bytes, and busybox's own
 * httpd running a CGI script (its CGI answers have bare-LF header lines after
 * the status line and a body that ends when the connection closes).
 *
 * A body that ends at close is re-chunked for an HTTP/1.1 client, so the
 * client's connection stays open for its next request, on the fast path;
 * the node:http path (HTTP/1.0 clients, chunked uploads) reads answers with
 * the same parser and serves the same answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { RouterServer } from '../../lib/router/server.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import { endpointFor, rawCall } from '../helpers/router-fixtures.js';
import { freePort } from '../../lib/net.js';
import { waitFor } from '../helpers/wait.js';

/** A backend that answers every request head with `answer` and then closes (or not). */
async function rawBackend(answer: string, close: boolean): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buf = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\r\n\r\n')) return;
      buf = '';
      if (close) socket.end(answer, 'latin1');
      else socket.write(answer, 'latin1');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return server;
}

const cases: Array<[string, string, boolean, string]> = [
  ['busybox CGI style: HTTP/1.0 status, bare-LF header lines, body until close', 'HTTP/1.0 200 OK\r\nContent-type: text/plain\n\nhello from cgi\n', true, 'hello from cgi\n'],
  ['bare LF everywhere, status line included', 'HTTP/1.1 200 OK\nContent-Type: text/plain\nX-A: 1\n\nbare lf', true, 'bare lf'],
  ['mixed CRLF and LF, blank line CRLF', 'HTTP/1.1 200 OK\nContent-Type: text/plain\r\n\r\nmixed', true, 'mixed'],
  ['HTTP/1.1 with no length: body until close', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close, and some more bytes', true, 'until close, and some more bytes'],
  ['HTTP/1.0 with a Content-Length and no keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nlength', true, 'length'],
  ['HTTP/1.0 with keep-alive and a Content-Length', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka', false, 'ka'],
];

let server: RouterServer;
let port: number;
const backends: net.Server[] = [];
const domains: Array<[string, number]> = [];
let busybox: ChildProcess | undefined;
let cgiRoot = '';

function apply(): void {
  const snap: RouteSnapshot = {
    revision: String(domains.length),
    domains: domains.map(([d]) => [d, { stack: d.split('.')[0]!, node: 'web', kind: 'container' }]),
    stacks: [],
    endpoints: domains.map(([d, p]) => endpointFor(d.split('.')[0]!, 'web', 'v1', 1, p)),
    sites: [],
  };
  server.apply(snap);
}

before(async () => {
  server = new RouterServer({ upstream: { headersTimeoutMs: 3000 } });
  port = await server.listen(0, '127.0.0.1');
  for (let i = 0; i < cases.length; i++) {
    const b = await rawBackend(cases[i]![1], cases[i]![2]);
    backends.push(b);
    domains.push([`c${i}.compat.test`, (b.address() as AddressInfo).port]);
  }
  apply();
});

after(async () => {
  await server.close(200);
  for (const b of backends) b.close();
  busybox?.kill();
  if (cgiRoot) await rm(cgiRoot, { recursive: true, force: true });
});

/** Two requests on one kept-alive client connection; resolves with the raw bytes and whether the router kept it open. */
function twoOnOneConnection(host: string, pathname = '/'): Promise<{ raw: string; closedEarly: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let raw = '';
    let sentSecond = false;
    let closedEarly = false;
    s.setEncoding('latin1');
    s.on('error', reject);
    s.on('connect', () => s.write(`GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    s.on('data', (d: string) => {
      raw += d;
      const answers = raw.split(/HTTP\/1\.1 200 /).length - 1;
      const complete = (text: string): boolean => /\r\n0\r\n\r\n$/.test(text) || /content-length: (\d+)\r\n/i.test(text);
      if (!sentSecond && answers === 1 && complete(raw)) {
        sentSecond = true;
        s.write(`GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      }
    });
    s.on('end', () => {
      if (!sentSecond) closedEarly = true;
      resolve({ raw, closedEarly });
    });
    setTimeout(() => {
      s.destroy();
      resolve({ raw, closedEarly: !sentSecond });
    }, 5000).unref();
  });
}

/** Decodes a response's chunked body (or takes it whole). */
function bodyOf(answer: string): string {
  const end = answer.indexOf('\r\n\r\n');
  const head = answer.slice(0, end);
  let rest = answer.slice(end + 4);
  const cl = /content-length: (\d+)/i.exec(head);
  if (cl) return rest.slice(0, Number(cl[1]));
  if (!/transfer-encoding: chunked/i.test(head)) return rest;
  let out = '';
  for (;;) {
    const nl = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

for (let i = 0; i < cases.length; i++) {
  const [name, , , body] = cases[i]!;
  test(`${name}: served on the fast path to a kept-alive HTTP/1.1 client, twice on one connection`, async () => {
    const { raw, closedEarly } = await twoOnOneConnection(`c${i}.compat.test`);
    assert.equal(closedEarly, false, `the router closed the client connection after the first answer:\n${raw}`);
    const answers = raw.split(/(?=HTTP\/1\.1 \d{3} )/);
    assert.equal(answers.length, 2, raw);
    for (const a of answers) {
      assert.match(a, /^HTTP\/1\.1 200 /);
      assert.equal(bodyOf(a), body);
    }
    assert.doesNotMatch(answers[0]!, /connection: close/i, 'the first answer keeps the client connection');
  });

  test(`${name}: served on the node:http path to an HTTP/1.0 client`, async () => {
    const raw = await rawCall(port, `GET / HTTP/1.0\r\nHost: c${i}.compat.test\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 200 /, raw.slice(0, 200));
    assert.equal(bodyOf(raw), body);
  });
}

test('a chunked upload (node:http path) gets a bare-LF, close-delimited answer, re-chunked, on a kept-alive connection', async () => {
  const raw = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let out = '';
    s.setEncoding('latin1');
    s.on('error', reject);
    s.on('connect', () => s.write('POST /up HTTP/1.1\r\nHost: c0.compat.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'));
    s.on('data', (d: string) => {
      out += d;
      if (/\r\n0\r\n\r\n$/.test(out)) {
        s.destroy();
        resolve(out);
      }
    });
    setTimeout(() => (s.destroy(), resolve(out)), 3000).unref();
  });
  assert.match(raw, /^HTTP\/1\.1 200 /, raw.slice(0, 200));
  assert.match(raw, /transfer-encoding: chunked/i);
  assert.doesNotMatch(raw, /connection: close/i, 'the client connection stays open');
  assert.equal(bodyOf(raw), 'hello from cgi\n');
});

test('a real busybox httpd CGI answer reaches a kept-alive HTTP/1.1 client (fast path), twice on one connection', async (t) => {
  const bin = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!bin) return t.skip('busybox is not installed');
  cgiRoot = await mkdtemp(path.join(os.tmpdir(), 'viking-cgi-'));
  await mkdir(path.join(cgiRoot, 'cgi-bin'));
  const script = path.join(cgiRoot, 'cgi-bin', 'hello');
  // A CGI writes its own header lines with bare LFs, as shell scripts do.
  await writeFile(script, '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\necho "hello from busybox cgi $REQUEST_METHOD"\n');
  await chmod(script, 0o755);
  const cgiPort = await freePort('127.0.0.1');
  busybox = spawn(bin, ['httpd', '-f', '-p', `127.0.0.1:${cgiPort}`, '-h', cgiRoot], { stdio: 'ignore' });
  await waitFor('busybox httpd to listen', () => new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: cgiPort }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  }), 5000);
  domains.push(['cgi.compat.test', cgiPort]);
  apply();
  // What busybox really sends: a status line, then the CGI's bare-LF header lines.
  const direct = await rawCall(cgiPort, 'GET /cgi-bin/hello HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(direct, /^HTTP\/1\.[01] 200 OK\r\n/);
  assert.match(direct, /Content-Type: text\/plain\n\n/);
  const fast = await twoOnOneConnection('cgi.compat.test', '/cgi-bin/hello');
  assert.match(fast.raw, /^HTTP\/1\.1 200 /, fast.raw.slice(0, 200));
  assert.equal(fast.closedEarly, false, fast.raw);
  const answers = fast.raw.split(/(?=HTTP\/1\.1 \d{3} )/);
  assert.equal(answers.length, 2, fast.raw);
  for (const a of answers) assert.equal(bodyOf(a), 'hello from busybox cgi GET\n');
});

test('a real busybox httpd CGI answer reaches an HTTP/1.0 client (node:http path)', async () => {
  const general = await rawCall(port, 'GET /cgi-bin/hello HTTP/1.0\r\nHost: cgi.compat.test\r\n\r\n');
  assert.match(general, /^HTTP\/1\.1 200 /, general.slice(0, 200));
  assert.equal(bodyOf(general), 'hello from busybox cgi GET\n');
});

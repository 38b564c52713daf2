/**
 * HTTPS on the router against real parts: a real etcd holding the routes
 * and the certificates (/certs/pem/), two real router worker processes, a
 * test CA made with openssl, real backends, and real TLS clients
 * (node:tls, node:https, node:http2 and curl --cacert), so the chain a
 * client checks is the one the router serves.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import https from 'node:https';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { makeTestCa, type Issued, type TestCa } from '../helpers/test-ca.js';
import { call, endpointFor, putRoute, startBackend, type Backend, type Echo } from '../helpers/router-fixtures.js';
import { connectEtcd } from '../../lib/store/client.js';
import { certKey, stackKey } from '../../lib/store/keys.js';
import type { StackRecord } from '../../lib/store/records.js';
import { checkCertificate } from '../../lib/certs/custom.js';
import { Router, type RouterEngine } from '../../lib/router/router.js';

/** router-tls-nginx.test.ts runs this same file against the nginx engine. */
const ENGINE = (process.env.VIKING_TEST_ROUTER_ENGINE ?? 'node') as RouterEngine;

const run = promisify(execFile);

let etcd: TestEtcd;
let client: Etcd3;
let dataDir: string;
let ca: TestCa;
let backend: Backend;
let router: Router;
let port: number;
let tlsPort: number;
let shop: Issued;
let wildcard: Issued;
let special: Issued;
let hsts: Issued;

const D = 'tlsi.test';

async function putCert(domain: string, c: Issued): Promise<void> {
  await client.put(certKey(domain)).value(JSON.stringify(checkCertificate(domain, c.certPem, c.keyPem)));
}

/** The leaf a fresh handshake for `servername` gets, or the handshake's error. */
function handshake(servername: string, o: { alpn?: string[]; timeoutMs?: number } = {}): Promise<{ cert: X509Certificate; alpn: string | false } | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername, ca: ca.certPem, ALPNProtocols: o.alpn ?? ['http/1.1'] }, () => {
      const raw = s.getPeerX509Certificate();
      s.destroy();
      resolve({ cert: raw!, alpn: s.alpnProtocol ?? false });
    });
    s.on('error', (err) => resolve(err));
    setTimeout(() => (s.destroy(), resolve(new Error('handshake hung'))), o.timeoutMs ?? 5000).unref();
  });
}

function get(host: string, p = '/', o: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: tlsPort, servername: host, path: p, method: o.method ?? 'GET', headers: { host, ...o.headers }, ca: ca.certPem, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

before(async () => {
  etcd = await startTestEtcd('router-tls');
  client = connectEtcd(etcd.url);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-tls-'));
  ca = await makeTestCa();
  [shop, wildcard, special, backend] = await Promise.all([
    ca.leaf([`shop.${D}`, `www.shop.${D}`]),
    ca.leaf([`*.apps.${D}`]),
    ca.leaf([`special.apps.${D}`]),
    startBackend('tls-app'),
  ]);
  hsts = await ca.leaf([`hsts.${D}`]);
  // A node with `hsts: 600` in its Vikingfile: the stack record carries it for the router.
  await putRoute(client, { stack: 'tls-hsts', current: 'v1', domains: [`hsts.${D}`], endpoints: [endpointFor('tls-hsts', 'web', 'v1', 1, backend.port)] });
  const rec = JSON.parse((await client.get(stackKey('tls-hsts')).string())!) as StackRecord;
  await client.put(stackKey('tls-hsts')).value(JSON.stringify({ ...rec, hsts: { web: 600 } } satisfies StackRecord));
  await putCert(`hsts.${D}`, hsts);
  await putRoute(client, { stack: 'tls-shop', current: 'v1', domains: [`shop.${D}`, `nocert.${D}`], endpoints: [endpointFor('tls-shop', 'web', 'v1', 1, backend.port)] });
  await putRoute(client, { stack: 'tls-apps', current: 'v1', domains: [`*.apps.${D}`], endpoints: [endpointFor('tls-apps', 'web', 'v1', 1, backend.port)] });
  await putCert(`shop.${D}`, shop);
  await putCert(`*.apps.${D}`, wildcard);
  await putCert(`special.apps.${D}`, special);
  router = new Router({ client, hostName: 'router-tls', dataDir, port: 0, httpsPort: -1, host: '127.0.0.1', workers: 2, engine: ENGINE });
  port = await router.start();
  tlsPort = router.httpsPort;
  assert.ok(tlsPort > 0 && tlsPort !== port);
});

after(async () => {
  await router?.stop();
  await backend?.close();
  client?.close();
  await etcd?.stop();
  await ca?.remove();
  await rm(dataDir, { recursive: true, force: true });
});

describe(`TLS router (${ENGINE} engine)`, () => {
  test('SNI picks the most specific certificate: exact names before the wildcard, on every worker', async () => {
    for (let i = 0; i < 6; i++) {
      for (const [name, want] of [[`shop.${D}`, shop], [`www.shop.${D}`, shop], [`x.apps.${D}`, wildcard], [`special.apps.${D}`, special], [`SHOP.${D.toUpperCase()}`, shop]] as const) {
        const got = await handshake(name);
        assert.ok(!(got instanceof Error), `${name}: ${String(got)}`);
        assert.equal(got.cert.fingerprint256, new X509Certificate(want.certPem).fingerprint256, name);
      }
    }
  });

  test('a name without a certificate (or no name at all) fails the handshake at once, no hang', async () => {
    for (const name of [`nocert.${D}`, `a.b.apps.${D}`, 'unknown.example']) {
      const t0 = Date.now();
      const got = await handshake(name);
      assert.ok(got instanceof Error && got.message !== 'handshake hung', `${name}: ${String(got)}`);
      assert.ok(Date.now() - t0 < 2000, `${name} took ${Date.now() - t0} ms`);
    }
    const noSni = await new Promise<Error | null>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: ca.certPem, rejectUnauthorized: false }, () => (s.destroy(), resolve(null)));
      s.on('error', resolve);
    });
    assert.ok(noSni instanceof Error, 'a handshake without SNI must fail');
    // The router still serves after those.
    assert.equal((await get(`shop.${D}`)).status, 200);
  });

  test('HTTPS requests reach the app with X-Forwarded-Proto: https, on the fast path and the node:http path', async () => {
    const fast = await get(`shop.${D}`, '/hello?x=1');
    assert.equal(fast.status, 200, fast.body);
    const echo = JSON.parse(fast.body) as Echo;
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(echo.url, '/hello?x=1');
    // Chunked upload: served by node:http.
    const chunked = await get(`x.apps.${D}`, '/up', { method: 'POST', body: 'abcdef', headers: { 'transfer-encoding': 'chunked' } });
    assert.equal(chunked.status, 200, chunked.body);
    const e2 = JSON.parse(chunked.body) as Echo;
    assert.equal(e2.headers['x-forwarded-proto'], 'https');
    assert.equal(e2.bodyBytes, 6);
    // Plain HTTP for a domain without a certificate stays plain, proto http.
    const plain = await call(port, `nocert.${D}`);
    assert.equal(plain.status, 200);
    assert.equal((JSON.parse(plain.body) as Echo).headers['x-forwarded-proto'], 'http');
  });

  test('curl checks the chain against the test root and gets the app over HTTP/1.1 and HTTP/2', async () => {
    for (const version of ['--http1.1', '--http2']) {
      const { stdout } = await run('curl', ['-sS', version, '--cacert', ca.certFile, '--resolve', `shop.${D}:${tlsPort}:127.0.0.1`, '-w', '\n%{http_version} %{http_code}', `https://shop.${D}:${tlsPort}/c`]);
      const [body, status] = stdout.split('\n');
      assert.equal(status, version === '--http2' ? '2 200' : '1.1 200', stdout);
      assert.equal((JSON.parse(body!) as Echo).headers['x-forwarded-proto'], 'https');
    }
  });

  test('plain HTTP is redirected to HTTPS once a certificate covers the domain, except ACME challenges', async () => {
    const r = await call(port, `shop.${D}`, { path: '/a/b?c=d' });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, `https://shop.${D}:${tlsPort}/a/b?c=d`);
    const w = await call(port, `x.apps.${D}`, { method: 'POST', body: 'x' });
    assert.equal(w.status, 308);
    assert.equal(w.headers.location, `https://x.apps.${D}:${tlsPort}/`);
    const acme = await call(port, `shop.${D}`, { path: '/.well-known/acme-challenge/tok' });
    assert.notEqual(acme.status, 308);
    // A Host that only a wildcard matches, with characters that would move a Location elsewhere: never redirected.
    for (const host of [`evil#x.apps.${D}`, `evil@x.apps.${D}`, `evil\\x.apps.${D}`]) {
      const r2 = await call(port, host);
      assert.notEqual(r2.status, 308, `${host}: ${String(r2.headers.location)}`);
    }
  });

  test('HSTS only for the node that opted in, only over HTTPS, on both request paths', async () => {
    const fast = await get(`hsts.${D}`);
    assert.equal(fast.status, 200, fast.body);
    assert.equal(fast.headers['strict-transport-security'], 'max-age=600');
    const general = await get(`hsts.${D}`, '/up', { method: 'POST', body: 'x', headers: { 'transfer-encoding': 'chunked' } });
    assert.equal(general.status, 200, general.body);
    assert.equal(general.headers['strict-transport-security'], 'max-age=600');
    const other = await get(`shop.${D}`);
    assert.equal(other.headers['strict-transport-security'], undefined);
    const plain = await call(port, `hsts.${D}`, { path: '/.well-known/acme-challenge/x' });
    assert.equal(plain.headers['strict-transport-security'], undefined);
    const { stdout } = await run('curl', ['-sS', '--http2', '-D', '-', '-o', '/dev/null', '--cacert', ca.certFile, '--resolve', `hsts.${D}:${tlsPort}:127.0.0.1`, `https://hsts.${D}:${tlsPort}/`]);
    assert.match(stdout, /^HTTP\/2 200/);
    assert.match(stdout, /strict-transport-security: max-age=600/);
  });

  test('ALPN: h2 when offered, http/1.1 for a client that offers only that', async () => {
    const h2 = await handshake(`shop.${D}`, { alpn: ['h2', 'http/1.1'] });
    assert.ok(!(h2 instanceof Error));
    assert.equal(h2.alpn, 'h2');
    const h1 = await handshake(`shop.${D}`, { alpn: ['http/1.1'] });
    assert.ok(!(h1 instanceof Error));
    assert.equal(h1.alpn, 'http/1.1');
  });

  test('HTTP/2 requests (GET and a POST body without Content-Length) are proxied, several streams on one session', async () => {
    const session = http2.connect(`https://shop.${D}:${tlsPort}`, { ca: ca.certPem, host: '127.0.0.1', servername: `shop.${D}` } as http2.SecureClientSessionOptions);
    try {
      const one = (p: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': p, ':method': method, ':authority': `shop.${D}` });
          let status = 0;
          let text = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (d: string) => (text += d));
          req.on('end', () => resolve({ status, body: text }));
          req.on('error', reject);
          req.end(body);
        });
      const all = await Promise.all([one('/h2/1'), one('/h2/2'), one('/h2/3', 'POST', 'x'.repeat(5000))]);
      for (const a of all) {
        assert.equal(a.status, 200, a.body);
        assert.equal((JSON.parse(a.body) as Echo).headers['x-forwarded-proto'], 'https');
      }
      assert.equal((JSON.parse(all[2]!.body) as Echo).bodyBytes, 5000);
    } finally {
      session.close();
    }
  });

  test('websockets over TLS: the upgrade reaches the app and bytes flow both ways', async () => {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: `shop.${D}`, ca: ca.certPem, ALPNProtocols: ['http/1.1'] }, () => {
        s.write(`GET /ws HTTP/1.1\r\nHost: shop.${D}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      let buf = '';
      const onData = (d: Buffer): void => {
        buf += d.toString('latin1');
        if (!buf.includes('\r\n\r\n')) return;
        s.off('data', onData);
        if (!buf.startsWith('HTTP/1.1 101')) return reject(new Error(buf));
        resolve(s);
      };
      s.on('data', onData);
      s.on('error', reject);
    });
    const got = await new Promise<string>((resolve) => {
      let t = '';
      socket.on('data', (d: Buffer) => {
        t += d.toString();
        if (t.length >= 12) resolve(t);
      });
      socket.write('hello-ws-tls');
    });
    assert.equal(got, 'hello-ws-tls');
    socket.destroy();
  });

  test('a worker that dies is replaced, and the new one serves HTTPS with the certificates at once', async () => {
    const [victim, other] = router.workerPids();
    process.kill(victim!, 'SIGKILL');
    await waitFor('a new worker beside the survivor', () => {
      const pids = router.workerPids();
      return pids.length === 2 && !pids.includes(victim!) && pids.includes(other!);
    });
    await waitFor('every worker to serve shop over TLS', async () => {
      for (let i = 0; i < 10; i++) {
        const got = await handshake(`shop.${D}`);
        if (got instanceof Error) return false;
      }
      return true;
    });
    // Certificates reach a new worker before its first snapshot, so it never listens without them.
    for (let i = 0; i < 10; i++) assert.ok(!((await handshake(`x.apps.${D}`)) instanceof Error));
  });

  test('a certificate changes without a restart: every worker serves the new one, and a removed one stops being served', async () => {
    const pids = router.workerPids();
    const master = router.nginxMasterPid;
    const fresh = await ca.leaf([`shop.${D}`, `www.shop.${D}`]);
    const want = new X509Certificate(fresh.certPem).fingerprint256;
    assert.notEqual(want, new X509Certificate(shop.certPem).fingerprint256);
    await putCert(`shop.${D}`, fresh);
    // Ten fresh handshakes in a row all get the new one (the two workers share them round-robin).
    await waitFor('every worker to serve the new certificate', async () => {
      for (let i = 0; i < 10; i++) {
        const got = await handshake(`shop.${D}`);
        if (got instanceof Error || got.cert.fingerprint256 !== want) return false;
      }
      return true;
    });
    // nginx reloads: new workers, old ones finish their requests, the master stays.
    if (ENGINE === 'nginx') assert.equal(router.nginxMasterPid, master, 'nginx was not restarted');
    else assert.deepEqual(router.workerPids(), pids, 'no worker was restarted');
    await client.delete().key(certKey(`special.apps.${D}`));
    await waitFor('special.apps to fall back to the wildcard', async () => {
      const got = await handshake(`special.apps.${D}`);
      return !(got instanceof Error) && got.cert.fingerprint256 === new X509Certificate(wildcard.certPem).fingerprint256;
    });
    await client.delete().key(certKey(`shop.${D}`));
    await waitFor('shop to lose its certificate and its redirect', async () => {
      const got = await handshake(`shop.${D}`, { timeoutMs: 2000 });
      const plain = await call(port, `shop.${D}`);
      return got instanceof Error && plain.status === 200;
    });
  });
});

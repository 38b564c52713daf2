/**
 * HTTPS end to end on real `viking host` processes: two hosts (127.0.0.2
 * and 127.0.0.3) share one etcd; a stack whose node sets `hsts: 600` is
 * pushed to the first, and a custom certificate (from a test CA made with
 * openssl) is added through the second host's API with `viking certs add`.
 * Then both routers serve the app over HTTPS (curl checks the chain against
 * the test root, HTTP/1.1 and HTTP/2), the app in its container sees
 * X-Forwarded-Proto: https, HSTS comes from the Vikingfile, plain HTTP is
 * redirected, and `viking certs rm` takes all of it back on both routers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcesses, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const run = promisify(execFile);

let etcd: TestEtcd;
let hostA: HostProcess;
let hostB: HostProcess;
let work: string;
let ca: TestCa;
const names = { a: uniqueName('tlsa'), b: uniqueName('tlsb') };
const stack = uniqueName('tls');
const web = `web.${stack}.test`;

function plain(ip: string, port: number, host: string, urlPath = '/'): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: ip, port, path: urlPath, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
    }).on('error', reject);
  });
}

/** curl over HTTPS to one router, the chain checked against the test root; headers and body. */
async function curl(ip: string, port: number, version: '--http1.1' | '--http2'): Promise<{ head: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', version, '--max-time', '5', '--cacert', ca.certFile, '--resolve', `${web}:${port}:${ip}`, '-D', '-', `https://${web}:${port}/`]);
  const split = stdout.indexOf('\r\n\r\n');
  return { head: stdout.slice(0, split), body: stdout.slice(split + 4) };
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-https-'));
  etcd = await startTestEtcd();
  ca = await makeTestCa();
  [hostA, hostB] = (await startHostProcesses([
    { name: names.a, etcd: etcd.url, ip: '127.0.0.2', master: true, dataDir: path.join(work, 'a') },
    { name: names.b, etcd: etcd.url, ip: '127.0.0.3', dataDir: path.join(work, 'b') },
  ])) as [HostProcess, HostProcess];
  assert.ok(hostA.httpsPort > 0 && hostB.httpsPort > 0, 'both hosts serve HTTPS');
});

after(async () => {
  await Promise.all([hostA?.stop(), hostB?.stop()]);
  await Promise.all([removeHostContainers(names.a), removeHostContainers(names.b)]);
  await removeStackArtifacts(stack);
  await etcd?.stop();
  await ca?.remove();
  await rm(work, { recursive: true, force: true });
});

test('a certificate added through one host is served by both routers, with redirect, HSTS and X-Forwarded-Proto', { timeout: 240_000 }, async () => {
  const app = path.join(work, 'app');
  await mkdir(app, { recursive: true });
  await writeFile(
    path.join(app, 'server.js'),
    `require('node:http').createServer((req, res) => res.end(req.url === '/health' ? 'ok' : 'proto=' + req.headers['x-forwarded-proto'] + ' host=' + req.headers.host)).listen(Number(process.env.PORT || 80));\n`,
  );
  await writeFile(
    path.join(app, 'Vikingfile'),
    `viking:
  name: ${stack}
build:
  app: |
    FROM viking/node
    COPY . /srv/app
deploy:
  web:
    image: viking:${stack}/app
    expose: [80]
    run: node server.js
    cwd: /srv/app
    health: /health
    domains: [${web}]
    hsts: 600
`,
  );
  const push = await runCli(['push', app, '--api', hostA.api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);
  const routers = [['A', '127.0.0.2', hostA], ['B', '127.0.0.3', hostB]] as const;
  for (const [label, ip, h] of routers) {
    await waitFor(`router ${label} to serve the app over plain HTTP`, async () => (await plain(ip, h.routerPort, web)).status === 200, 30_000);
  }

  const leaf = await ca.leaf([web]);
  const add = await runCli(['certs', 'add', web, '--cert', leaf.certFile, '--key', leaf.keyFile, '--api', hostB.api]);
  assert.equal(add.code, 0, add.stderr);

  for (const [label, ip, h] of routers) {
    const h1 = await waitFor(`router ${label} to serve HTTPS with the new certificate`, async () => {
      try {
        return await curl(ip, h.httpsPort, '--http1.1');
      } catch {
        return undefined;
      }
    }, 20_000);
    assert.match(h1.head, /^HTTP\/1\.1 200/);
    assert.equal(h1.body, `proto=https host=${web}:${h.httpsPort}`, 'the app in its container sees X-Forwarded-Proto: https');
    assert.match(h1.head, /strict-transport-security: max-age=600/i);
    const h2 = await curl(ip, h.httpsPort, '--http2');
    assert.match(h2.head, /^HTTP\/2 200/);
    assert.equal(h2.body, `proto=https host=${web}:${h.httpsPort}`, 'HTTP/2 :authority becomes the Host header');
    const redirect = await plain(ip, h.routerPort, web, '/x?y=1');
    assert.equal(redirect.status, 308, label);
    assert.equal(redirect.location, `https://${web}:${h.httpsPort}/x?y=1`);
  }

  const list = await runCli(['certs', '--json', '--api', hostA.api]);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes(leaf.keyPem.split('\n')[1]!), 'no key in the CLI output');
  assert.deepEqual((JSON.parse(list.stdout) as Array<{ domain: string; source: string }>).map((c) => [c.domain, c.source]), [[web, 'custom']]);

  const rmCert = await runCli(['certs', 'rm', web, '--api', hostA.api]);
  assert.equal(rmCert.code, 0, rmCert.stderr);
  for (const [label, ip, h] of routers) {
    await waitFor(`router ${label} to drop the certificate and the redirect`, async () => {
      const r = await plain(ip, h.routerPort, web);
      const tlsFails = await curl(ip, h.httpsPort, '--http1.1').then(() => false, () => true);
      return r.status === 200 && r.body === `proto=http host=${web}` && tlsFails;
    }, 20_000);
  }
});

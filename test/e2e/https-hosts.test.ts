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
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli, type HostProcess } from '../helpers/host-process.js';
import { startTwoHosts, nodeAppVikingfile, type TwoHosts } from '../helpers/two-hosts.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const run = promisify(execFile);

let cluster: TwoHosts;
let hostA: HostProcess;
let hostB: HostProcess;
let work: string;
let ca: TestCa;
const stack = uniqueName('tls');
const web = `web.${stack}.test`;

async function plain(ip: string, port: number, host: string, urlPath = '/'): Promise<{ status: number; location: string | undefined; body: string }> {
  const res = await routerGet({ ip, port, host, path: urlPath });
  return { status: res.status, location: res.headers.location, body: res.body };
}

/** curl over HTTPS to one router, the chain checked against the test root; headers and body. */
async function curl(ip: string, port: number, version: '--http1.1' | '--http2'): Promise<{ head: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', version, '--max-time', '5', '--cacert', ca.certFile, '--resolve', `${web}:${port}:${ip}`, '-D', '-', `https://${web}:${port}/`]);
  const split = stdout.indexOf('\r\n\r\n');
  return { head: stdout.slice(0, split), body: stdout.slice(split + 4) };
}

before(async () => {
  ca = await makeTestCa();
  cluster = await startTwoHosts({ prefix: 'tls', stack });
  ({ a: hostA, b: hostB, work } = cluster);
  assert.ok(hostA.httpsPort > 0 && hostB.httpsPort > 0, 'both hosts serve HTTPS');
});

after(async () => {
  await cluster?.stop();
  await ca?.remove();
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
    nodeAppVikingfile({ stack, domains: [web], web: '    hsts: 600\n' }),
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

/**
 * Static websites through the router, on a real etcd and the real API:
 * router A runs on the host that built the release and serves from the
 * pushed source; router B runs on another host, fetches the files from A's
 * /v1 API, caches them and serves the same bytes with the same ETags. Every
 * traversal attempt is refused and never returns a byte from outside the
 * document root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { call, rawCall } from '../helpers/router-fixtures.js';
import { connectEtcd } from '../../lib/store/client.js';
import { connectDocker } from '../../lib/docker/client.js';
import { domainKey, hostKey, stackKey } from '../../lib/store/keys.js';
import type { DomainRecord, HostRecord, ReleaseRecord, StackRecord } from '../../lib/store/records.js';
import { Router, type RouterEngine } from '../../lib/router/router.js';
import { createApi } from '../../lib/api/server.js';

/** website-serving-nginx.test.ts runs this file against the nginx engine (nginx in front, the Node server serving the files as its fallback). */
const ENGINE = (process.env.VIKING_TEST_ROUTER_ENGINE ?? 'node') as RouterEngine;

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
const STACK = 'docs-site';

let etcd: TestEtcd;
let client: Etcd3;
let work: string;
let api: FastifyInstance;
let routerA: Router;
let routerB: Router;
let portA: number;
let portB: number;
const big = randomBytes(1024 * 1024 + 17);
const releases: ReleaseRecord[] = [];

/** Writes a release's source the way a push leaves it: the whole tree, with the website inside. */
async function makeSource(tag: string, title: string): Promise<string> {
  const src = path.join(work, 'a', 'stacks', STACK, tag);
  const www = path.join(src, 'site');
  await mkdir(path.join(www, 'docs'), { recursive: true });
  await writeFile(path.join(src, 'Vikingfile'), `# ${SECRET}\n`);
  await writeFile(path.join(src, 'secret.txt'), `${SECRET}\n`);
  await writeFile(path.join(www, 'index.html'), `<!doctype html><title>${title}</title><h1>${title}</h1>\n`);
  await writeFile(path.join(www, 'style.css'), 'body { color: #123; }\n');
  await writeFile(path.join(www, 'app.js'), 'console.log("hi");\n');
  await writeFile(path.join(www, 'data.json'), '{"ok":true}\n');
  await writeFile(path.join(www, 'big.bin'), big);
  await writeFile(path.join(www, 'docs', 'index.html'), '<h1>docs</h1>\n');
  await writeFile(path.join(www, 'docs', 'guide.html'), '<h1>guide</h1>\n');
  await writeFile(path.join(www, '404.html'), '<h1>custom not found</h1>\n');
  await writeFile(path.join(www, '.env'), `PASSWORD=${SECRET}\n`);
  await symlink('docs/guide.html', path.join(www, 'link-in'));
  await symlink('../secret.txt', path.join(www, 'link-out'));
  await symlink('/etc/passwd', path.join(www, 'link-abs'));
  await symlink('..', path.join(www, 'dir-out'));
  return src;
}

async function release(tag: string, title: string): Promise<string> {
  const source = await makeSource(tag, title);
  releases.push({ tag, number: releases.length + 1, at: new Date().toISOString(), by: 'test', images: {}, source, builtOn: 'site-a' });
  const stack: StackRecord = {
    name: STACK, current: tag, lastRelease: releases.length, releases, domains: { www: ['www.site.test', '*.pages.site.test'] }, websites: { www: 'site' },
  };
  return (await client.put(stackKey(STACK)).value(JSON.stringify(stack)).exec()).header.revision;
}

before(async () => {
  etcd = await startTestEtcd('website');
  client = connectEtcd(etcd.url);
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-website-'));
  api = createApi({ client, docker: connectDocker(), dataDir: path.join(work, 'a'), hostName: 'site-a', maxUploadBytes: 1 << 20, routerPort: 0 });
  await api.listen({ port: 0, host: '127.0.0.1' });
  const hostA: Partial<HostRecord> = { name: 'site-a', ip: '127.0.0.1', api: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}` };
  await client.put(hostKey('site-a')).value(JSON.stringify(hostA));
  for (const d of ['www.site.test', '*.pages.site.test']) {
    const rec: DomainRecord = { stack: STACK, node: 'www', kind: 'website' };
    await client.put(domainKey(d)).value(JSON.stringify(rec));
  }
  await release('v1', 'Release One');
  routerA = new Router({ client, hostName: 'site-a', dataDir: path.join(work, 'a'), port: 0, host: '127.0.0.1', workers: 2, engine: ENGINE });
  routerB = new Router({ client, hostName: 'site-b', dataDir: path.join(work, 'b'), port: 0, host: '127.0.0.1', workers: 0, engine: ENGINE });
  [portA, portB] = await Promise.all([routerA.start(), routerB.start()]);
});

after(async () => {
  await routerA?.stop();
  await routerB?.stop();
  await api?.close();
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('the builder host serves index.html with its content type, a strong ETag and revalidation', async () => {
  const res = await call(portA, 'WWW.Site.Test:8080');
  assert.equal(res.status, 200);
  assert.match(res.body, /<h1>Release One<\/h1>/);
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(String(res.headers.etag), /^"[A-Za-z0-9_-]{27}"$/);
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  const again = await call(portA, 'www.site.test', { path: '/index.html', headers: { 'if-none-match': String(res.headers.etag) } });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  assert.equal(again.headers.etag, res.headers.etag);
  const changed = await call(portA, 'www.site.test', { headers: { 'if-none-match': '"something-else"' } });
  assert.equal(changed.status, 200);
});

test('content types, HEAD, directories, links inside, big files, wildcard domains', async () => {
  const types: Array<[string, string]> = [['/style.css', 'text/css; charset=utf-8'], ['/app.js', 'text/javascript; charset=utf-8'], ['/data.json', 'application/json; charset=utf-8'], ['/big.bin', 'application/octet-stream']];
  for (const [p, type] of types) assert.equal((await call(portA, 'www.site.test', { path: p })).headers['content-type'], type, p);
  const head = await call(portA, 'www.site.test', { method: 'HEAD', path: '/app.js' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String('console.log("hi");\n'.length));
  assert.equal(head.body, '');
  const dir = await call(portA, 'www.site.test', { path: '/docs?x=1' });
  assert.equal(dir.status, 301);
  assert.equal(dir.headers.location, '/docs/?x=1');
  assert.match((await call(portA, 'www.site.test', { path: '/docs/' })).body, /<h1>docs<\/h1>/);
  assert.match((await call(portA, 'www.site.test', { path: '/link-in' })).body, /<h1>guide<\/h1>/);
  const missing = await call(portA, 'www.site.test', { path: '/nope.html' });
  assert.equal(missing.status, 404);
  assert.match(missing.body, /custom not found/, "the site's own 404.html");
  const bigRes = await new Promise<Buffer>((resolve, reject) => {
    void import('node:http').then(({ default: http }) => {
      http.get({ host: '127.0.0.1', port: portA, path: '/big.bin', headers: { host: 'www.site.test' }, agent: false }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve(Buffer.concat(chunks)));
      }).on('error', reject);
    });
  });
  assert.equal(createHash('sha1').update(bigRes).digest('hex'), createHash('sha1').update(big).digest('hex'));
  assert.match((await call(portA, 'anything.pages.site.test')).body, /Release One/);
  assert.equal((await call(portA, 'any.thing.pages.site.test')).status, 404, 'a wildcard covers one label only');
  const post = await call(portA, 'www.site.test', { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

/** Every way out of the root, sent raw so nothing normalises the target first. */
const attacks: Array<[string, RegExp]> = [
  ['/../secret.txt', /^HTTP\/1\.1 400/],
  ['/%2e%2e/secret.txt', /^HTTP\/1\.1 400/],
  ['/%2E%2E%2Fsecret.txt', /^HTTP\/1\.1 400/],
  ['/..%2fsecret.txt', /^HTTP\/1\.1 400/],
  ['/docs/%2e%2e/%2e%2e/secret.txt', /^HTTP\/1\.1 400/],
  ['http://www.site.test/../secret.txt', /^HTTP\/1\.1 400/],
  ['//etc/passwd', /^HTTP\/1\.1 404/],
  ['/%2fetc%2fpasswd', /^HTTP\/1\.1 404/],
  ['/link-out', /^HTTP\/1\.1 (403|404)/],
  ['/link-abs', /^HTTP\/1\.1 (403|404)/],
  ['/dir-out/secret.txt', /^HTTP\/1\.1 (403|404)/],
  ['/dir-out/Vikingfile', /^HTTP\/1\.1 (403|404)/],
  ['/.env', /^HTTP\/1\.1 404/],
];

for (const [router, label] of [['A', 'the builder host'], ['B', 'another host']] as const) {
  test(`${label}: traversal attempts (.., %2e%2e, absolute paths, symlinks, dotfiles) are refused`, async () => {
    const port = router === 'A' ? portA : portB;
    if (router === 'B') await waitFor('router B to have fetched the website', async () => (await call(portB, 'www.site.test')).status === 200, 30_000);
    for (const [target, status] of attacks) {
      const answer = await rawCall(port, `GET ${target} HTTP/1.1\r\nHost: www.site.test\r\nConnection: close\r\n\r\n`);
      assert.match(answer, status, `${target}: ${answer.slice(0, 200)}`);
      assert.ok(!answer.includes(SECRET), `${target} leaked the secret`);
      assert.ok(!answer.includes('root:x:0:0'), `${target} leaked /etc/passwd`);
    }
    if (router === 'A') {
      assert.match(await rawCall(portA, 'GET /link-out HTTP/1.1\r\nHost: www.site.test\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 403[\s\S]*symbolic link/);
    }
  });
}

test('another host fetched the files once from the builder and serves the same bytes and ETags', async () => {
  for (const p of ['/', '/style.css', '/docs/guide.html', '/big.bin']) {
    const [a, b] = await Promise.all([call(portA, 'www.site.test', { path: p }), call(portB, 'www.site.test', { path: p })]);
    assert.equal(b.status, 200, p);
    assert.equal(b.body, a.body, p);
    assert.equal(b.headers.etag, a.headers.etag, `${p}: same ETag on every router`);
    assert.equal(b.headers['content-type'], a.headers['content-type'], p);
  }
  const cached = await readdir(path.join(work, 'b', 'websites', STACK, 'www'));
  assert.deepEqual(cached, ['v1']);
  const links = await readdir(path.join(work, 'b', 'websites', STACK, 'www', 'v1'));
  assert.ok(links.includes('link-in') && !links.includes('link-out') && !links.includes('dir-out'), `links out of the root are not shipped: ${links.join(' ')}`);
});

test('a new release replaces the files on every router with no failed request in between', async () => {
  const rev = await release('v2', 'Release Two');
  const statuses = new Map<number, number>();
  await waitFor('both routers to serve release two', async () => {
    const [a, b] = await Promise.all([call(portA, 'www.site.test'), call(portB, 'www.site.test')]);
    for (const r of [a, b]) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    return /Release Two/.test(a.body) && /Release Two/.test(b.body);
  }, 30_000, 20);
  assert.deepEqual([...statuses.keys()], [200], 'the old files serve until the new ones are there');
  assert.ok(BigInt(routerB.servedRevision ?? 0) >= BigInt(rev));
  const cached = (await readdir(path.join(work, 'b', 'websites', STACK, 'www'))).sort();
  assert.deepEqual(cached, ['v1', 'v2'], 'the previous release is kept, nothing older');
});

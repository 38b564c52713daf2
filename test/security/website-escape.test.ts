/**
 * Issue 9, item 2: a website's files must never come from outside its release.
 *
 * The attack: a pushed tree holds a relative link that dangles while the
 * upload sits in `uploads/<id>/` (so the old check kept it) but, once the
 * tree moves one level deeper to `stacks/<stack>/<tag>/`, lands on a file of
 * the host. Used as the document root, it made every router (and the public
 * /v1/source) hand out the host's secret. Replayed here against a real etcd,
 * the real API over HTTP, and two real routers (the builder host's, serving
 * from the pushed source, and another host's, fetching through /v1/source).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { extract, pack } from 'tar-stream';
import type { FastifyInstance } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { docker } from '../helpers/docker.js';
import { call } from '../helpers/router-fixtures.js';
import { connectEtcd } from '../../lib/store/client.js';
import { domainKey, hostKey, stackKey } from '../../lib/store/keys.js';
import type { DomainRecord, HostRecord, StackRecord } from '../../lib/store/records.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { Router } from '../../lib/router/router.js';

const SECRET = 'ADMIN-TOKEN-vk_secret_0123456789';
const HOST = `esc-a-${process.pid}`;

let etcd: TestEtcd;
let client: Etcd3;
let work: string;
let dataDir: string;
let api: FastifyInstance;
let apiUrl: string;
let token: string;
let routerA: Router;
let routerB: Router;
let portA: number;
let portB: number;

type Entry = { name: string; type?: 'file' | 'symlink' | 'directory'; content?: string; linkname?: string };

function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) {
    if (e.type === 'symlink') p.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
    else if (e.type === 'directory') p.entry({ name: e.name, type: 'directory' });
    else p.entry({ name: e.name }, e.content ?? '');
  }
  p.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

/** Entries of a tar answer: name -> content ('' for folders and links). */
async function untar(body: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = extract();
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.set(h.name.replace(/\/$/, ''), h.type === 'symlink' ? `-> ${h.linkname}` : Buffer.concat(chunks).toString());
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    Readable.from([body]).pipe(ex);
  });
  return out;
}

function vikingfile(stack: string, domain: string): Entry {
  return { name: 'Vikingfile', content: `viking: { name: ${stack} }\ndeploy:\n  www:\n    type: website\n    document_root: ./public\n    domains: [${domain}]\n` };
}

async function push(entries: Entry[]): Promise<{ status: number; text: string }> {
  const res = await fetch(`${apiUrl}/v1/push`, {
    method: 'POST',
    body: await tarOf(entries),
    headers: { 'content-type': 'application/x-tar', authorization: `Bearer ${token}` },
  });
  return { status: res.status, text: await res.text() };
}

async function source(stack: string, tag: string, node = 'www'): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${apiUrl}/v1/source/${stack}/${tag}/website/${node}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  etcd = await startTestEtcd('website-escape');
  client = connectEtcd(etcd.url);
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-escape-'));
  dataDir = path.join(work, 'data');
  // The host's secret, where the moved tree's link lands: <dataDir>/adminconf/config.json.
  await mkdir(path.join(dataDir, 'adminconf'), { recursive: true });
  await writeFile(path.join(dataDir, 'adminconf', 'config.json'), JSON.stringify({ token: SECRET }));
  api = createApi({ client, docker, dataDir, hostName: HOST, maxUploadBytes: 1 << 20, routerPort: 0 });
  await api.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const rec: Partial<HostRecord> = { name: HOST, ip: '127.0.0.1', api: apiUrl };
  await client.put(hostKey(HOST)).value(JSON.stringify(rec));
  token = (await createToken(client, 'escape-test')).token;
  routerA = new Router({ client, hostName: HOST, dataDir, port: 0, host: '127.0.0.1', workers: 0 });
  routerB = new Router({ client, hostName: `esc-b-${process.pid}`, dataDir: path.join(work, 'b'), port: 0, host: '127.0.0.1', workers: 0 });
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

let canaries = 0;
/** Waits until both routers serve what etcd holds now (a canary domain written last is visible), and B fetched `domain`. */
async function settle(domain: string): Promise<void> {
  const canary = `canary-${++canaries}.test`;
  const rec: DomainRecord = { stack: 'canary', node: 'www', kind: 'website' };
  await client.put(domainKey(canary)).value(JSON.stringify(rec));
  await waitFor('both routers to catch up with etcd', () => [routerA, routerB].every((r) => r.routes?.lookup(canary) !== undefined));
  await waitFor(`router B to be done fetching ${domain}`, () => {
    const r = routerB.routes?.lookup(domain);
    return r?.kind !== 'website' || !/being fetched/.test(r.site?.problem ?? '');
  }, 15_000);
}

/** Every way the secret could come back: both routers, the public source route, the CLI's view of it. */
async function assertNoLeak(stack: string, domain: string): Promise<void> {
  await settle(domain);
  for (const port of [portA, portB]) {
    for (const p of ['/config.json', '/', '/public/config.json', '/adminconf/config.json']) {
      const res = await call(port, domain, { path: p });
      assert.ok(!res.body.includes(SECRET), `router ${port === portA ? 'A' : 'B'} ${p} leaked the secret: ${res.status}`);
    }
  }
  for (const tag of ['v1', 'v2']) {
    const src = await source(stack, tag);
    assert.ok(!src.body.includes(SECRET), `/v1/source/${stack}/${tag} leaked the secret`);
  }
}

test('a document root linked through a dangling-in-uploads path is refused at push, naming the link', async () => {
  // `s -> .` lets the text of the link stay inside the tree (s/s/s/../../.. normalises to '.'),
  // while the kernel climbs three real folders: from uploads/<id> that is a missing folder
  // (the old check kept it as "dangling, harmless"), from stacks/<stack>/<tag> it is <dataDir>.
  const res = await push([
    vikingfile('esc', 'esc.test'),
    { name: 's', type: 'symlink', linkname: '.' },
    { name: 'public', type: 'symlink', linkname: 's/s/s/../../../adminconf' },
  ]);
  await assertNoLeak('esc', 'esc.test');
  assert.equal(res.status, 400, res.text);
  const body = JSON.parse(res.text) as { code: string; message: string };
  assert.equal(body.code, 'VIKING_E_UPLOAD_INVALID');
  assert.match(body.message, /link 'public'/);
  assert.ok(!res.text.includes(SECRET));
  assert.equal(await client.get(stackKey('esc')).string(), null, 'no release was made');
});

test('a file link inside a real document root that escapes after the move is refused too', async () => {
  const res = await push([
    vikingfile('esc2', 'esc2.test'),
    { name: 's', type: 'symlink', linkname: '.' },
    { name: 'public/index.html', content: '<h1>hi</h1>' },
    { name: 'public/config.json', type: 'symlink', linkname: '../s/s/s/../../../adminconf/config.json' },
  ]);
  await assertNoLeak('esc2', 'esc2.test');
  assert.equal(res.status, 400, res.text);
  const body = JSON.parse(res.text) as { code: string; message: string };
  assert.equal(body.code, 'VIKING_E_UPLOAD_INVALID');
  assert.match(body.message, /link 'public\/config\.json'/);
});

test('dangling links are refused, naming the link', async () => {
  const res = await push([
    vikingfile('dangle', 'dangle.test'),
    { name: 'public/index.html', content: '<h1>hi</h1>' },
    { name: 'public/missing', type: 'symlink', linkname: 'not-there.html' },
  ]);
  assert.equal(res.status, 400, res.text);
  const body = JSON.parse(res.text) as { code: string; message: string };
  assert.equal(body.code, 'VIKING_E_UPLOAD_INVALID');
  assert.match(body.message, /link 'public\/missing' points to 'public\/not-there\.html'.*dangling/);
});

test('a release already on disk whose document root leads out is served by no router and not by /v1/source', async () => {
  // Belt and braces: a tree that got past the upload checks (an older viking, a hand-made release).
  const dir = path.join(dataDir, 'stacks', 'old', 'v1');
  await mkdir(dir, { recursive: true });
  await symlink('../../../adminconf', path.join(dir, 'public'));
  const stack: StackRecord = {
    name: 'old', current: 'v1', lastRelease: 1, domains: { www: ['old.test'] }, websites: { www: 'public' },
    releases: [{ tag: 'v1', number: 1, at: new Date().toISOString(), by: 'test', images: {}, source: dir, builtOn: HOST }],
  };
  await client.put(stackKey('old')).value(JSON.stringify(stack));
  const dom: DomainRecord = { stack: 'old', node: 'www', kind: 'website' };
  await client.put(domainKey('old.test')).value(JSON.stringify(dom));
  const a = await waitFor('router A to know old.test', async () => {
    const r = await call(portA, 'old.test', { path: '/config.json' });
    return r.status === 503 ? r : undefined;
  });
  assert.match(a.body, /leads out of the release/);
  const src = await source('old', 'v1');
  assert.equal(src.status, 404);
  assert.match(src.body.toString(), /leads out of the release/);
  // Router B keeps trying to fetch and keeps failing: never a byte of the secret.
  await waitFor('router B to have tried', async () => (await call(portB, 'old.test')).status === 503);
  await assertNoLeak('old', 'old.test');
});

test('/v1/source ships only what the router serves, and only releases that can still go live', async () => {
  const res = await push([
    vikingfile('dots', 'dots.test'),
    { name: 'public/index.html', content: '<h1>dots</h1>' },
    { name: 'public/.env', content: `PASSWORD=${SECRET}` },
    { name: 'public/.git/config', content: `[remote] token=${SECRET}` },
    { name: 'public/.well-known/security.txt', content: 'Contact: mailto:sec@dots.test' },
    { name: 'public/sub/.hidden', content: SECRET },
    { name: 'public/sub/page.html', content: '<p>page</p>' },
    { name: 'public/env-link', type: 'symlink', linkname: '.env' },
    { name: 'public/through-hidden', type: 'symlink', linkname: '.git/../index.html' },
    { name: 'public/page-link', type: 'symlink', linkname: 'sub/page.html' },
    { name: 'public/out-link', type: 'symlink', linkname: '../Vikingfile' },
  ]);
  assert.equal(res.status, 200, res.text);
  assert.match(res.text, /"type":"result"/, res.text);
  const src = await source('dots', 'v1');
  assert.equal(src.status, 200, src.body.toString());
  const entries = await untar(src.body);
  const names = [...entries.keys()].filter((n) => n !== '.' && n !== '').sort();
  assert.deepEqual(names, ['.well-known', '.well-known/security.txt', 'index.html', 'page-link', 'sub', 'sub/page.html']);
  assert.ok(!src.body.includes(SECRET), 'no dotfile content in the archive');
  // The router agrees: dotfiles 404, the link to one does not reveal it through the archive's copy either.
  const b = await waitFor('router B to serve dots.test', async () => {
    const r = await call(portB, 'dots.test');
    return r.status === 200 ? r : undefined;
  }, 30_000);
  assert.match(b.body, /dots/);
  for (const port of [portA, portB]) {
    assert.equal((await call(port, 'dots.test', { path: '/.env' })).status, 404);
    assert.equal((await call(port, 'dots.test', { path: '/.git/config' })).status, 404);
    assert.equal((await call(port, 'dots.test', { path: '/.well-known/security.txt' })).status, 200);
    assert.equal((await call(port, 'dots.test', { path: '/page-link' })).status, 200);
  }
  // Not in the history (never pushed, or a failed push): nothing, whatever the tag.
  for (const tag of ['v2', 'v9']) {
    const missing = await source('dots', tag);
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.body.toString()) as { code: string }).code, 'VIKING_E_NOT_FOUND');
  }
});

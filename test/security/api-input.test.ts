/**
 * Issue 9, item 10 (the API's part): what the API accepts. Through a real
 * fastify (real HTTP and inject) on a real etcd:
 *
 *   - unknown JSON properties were silently dropped (fastify's ajv removed
 *     them): `{name, admin: true}` made a token; now 400
 *     VIKING_E_UNKNOWN_PROPERTY naming the property, nothing changed;
 *   - a JSON body over the limit got 400; now 413 VIKING_E_BODY_TOO_LARGE;
 *   - `viking rm` left the stack's images on the hosts; now the images built
 *     for the stack go (and only those: another stack's stay).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { baseImages, docker, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { buildImages } from '../../lib/builder/builder.js';
import { parseVikingfile } from '../../lib/vikingfile/index.js';
import { REGISTRY_KEY, hostKey, imageKey, stackKey } from '../../lib/store/keys.js';
import { startRegistry } from '../../lib/registry/registry-process.js';
import { freePort } from '../../lib/net.js';
import type { HostRecord, StackRecord } from '../../lib/store/records.js';

let etcd: TestEtcd;
let client: Etcd3;
let app: FastifyInstance;
let dir: string;
let token: string;
let base: string;
const HOST = uniqueName('input');
const stack = uniqueName('gone');
const other = uniqueName('stays');

/** Every key but the audit log's (a refused change is recorded there, by design: test/integration/audit-log.test.ts). */
async function dump(): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await client.getAll().strings()).filter(([k]) => !k.startsWith('/audit/')).sort());
}

async function call(o: InjectOptions): Promise<{ status: number; json: any }> {
  const res = await app.inject({ ...o, headers: { authorization: `Bearer ${token}`, ...(o.headers ?? {}) } });
  return { status: res.statusCode, json: res.json() };
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-input-'));
  etcd = await startTestEtcd('input');
  client = connectEtcd(etcd.url);
  app = createApi({ client, docker, dataDir: dir, hostName: HOST, maxUploadBytes: 1024 * 1024, routerPort: 1, rolloutTimeoutMs: 1500 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  token = (await createToken(client, 'test')).token;
  const rec: HostRecord = {
    name: HOST, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: true, api: base, routerPort: 1,
    draining: false, startedAt: new Date().toISOString(), version: 'test',
  };
  await client.put(hostKey(HOST)).value(JSON.stringify(rec));
  const shop: StackRecord = { name: 'shop', current: null, lastRelease: 0, releases: [], domains: {}, websites: {} };
  await client.put(stackKey('shop')).value(JSON.stringify(shop));
});

after(async () => {
  await app?.close();
  await removeStackArtifacts(stack);
  await removeStackArtifacts(other);
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the routes added for these limits need a token like every other, and a refused call changes nothing', async () => {
  const before = await dump();
  for (const o of [
    { method: 'GET', url: '/v1/settings' },
    { method: 'POST', url: '/v1/settings', payload: { maxScale: 1 } },
    { method: 'POST', url: '/v1/local/cleanup', payload: { stack: 'shop', images: [], removeVolumes: true } },
    { method: 'DELETE', url: '/v1/stack/shop?volumes=1' },
    { method: 'POST', url: '/v1/rebalance', payload: {} },
  ] as InjectOptions[]) {
    for (const t of [undefined, 'garbage']) {
      const res = await app.inject({ ...o, headers: t ? { authorization: `Bearer ${t}` } : {} });
      assert.equal(res.statusCode, 401, `${o.method} ${o.url}`);
      assert.equal(res.json().code, 'VIKING_E_UNAUTHORIZED');
    }
  }
  assert.deepEqual(await dump(), before);
  const settings = await call({ method: 'GET', url: '/v1/settings' });
  assert.deepEqual(settings.json, { maxScale: 100, auditMaxEntries: 10_000, auditMaxAgeDays: 90 });
});

test('an unknown JSON property is refused with 400 VIKING_E_UNKNOWN_PROPERTY naming it, and changes nothing', async () => {
  const cases: Array<[InjectOptions, string]> = [
    [{ method: 'POST', url: '/v1/tokens', payload: { name: 'mallory', admin: true } }, 'admin'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 1 }, force: true } }, 'force'],
    [{ method: 'POST', url: '/v1/env/shop', payload: { set: { A: '1' }, sett: { B: '2' } } }, 'sett'],
    [{ method: 'POST', url: `/v1/server/${HOST}/drain`, payload: { drain: true, forever: true } }, 'forever'],
    [{ method: 'POST', url: '/v1/rollback/shop', payload: { release: 'v1', dryRun: true } }, 'dryRun'],
    [{ method: 'POST', url: '/v1/settings', payload: { maxScale: 5, minScale: 1 } }, 'minScale'],
    [{ method: 'POST', url: '/v1/local/cleanup', payload: { stack: 'shop', images: [], removeVolumes: true, everything: true } }, 'everything'],
    [{ method: 'GET', url: '/v1/ps?stack=shop&all=1' }, 'all'],
    [{ method: 'DELETE', url: '/v1/stack/shop?purge=1' }, 'purge'],
    [{ method: 'POST', url: '/v1/rebalance', payload: { dryRun: false, volumes: true } }, 'volumes'],
  ];
  const before = await dump();
  for (const [o, property] of cases) {
    const r = await call(o);
    assert.equal(r.status, 400, `${o.method} ${o.url}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.code, 'VIKING_E_UNKNOWN_PROPERTY', `${o.method} ${o.url}: ${JSON.stringify(r.json)}`);
    assert.ok(r.json.message.includes(`"${property}"`), r.json.message);
    assert.equal(r.json.details.property, property);
  }
  assert.deepEqual(await dump(), before, 'nothing was written: no token, no drain, no settings, no scale');
  // The same requests without the stray property are accepted (the schemas did not just refuse everything).
  const made = await call({ method: 'POST', url: '/v1/tokens', payload: { name: 'mallory' } });
  assert.equal(made.status, 200);
});

test('a JSON body over the limit is refused with 413 VIKING_E_BODY_TOO_LARGE over real HTTP', async () => {
  const huge = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
  const before = await dump();
  for (const url of ['/v1/tokens', '/v1/env/shop', '/v1/settings']) {
    const res = await fetch(`${base}${url}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: huge });
    assert.equal(res.status, 413, url);
    const body = (await res.json()) as { code: string; statusCode: number; message: string };
    assert.equal(body.code, 'VIKING_E_BODY_TOO_LARGE');
    assert.equal(body.statusCode, 413);
    assert.match(body.message, /1 MiB/);
  }
  assert.deepEqual(await dump(), before);
});

test("rm removes the images built for the stack on the host and in the registry, and not another stack's", async (t) => {
  await baseImages();
  const registry = `127.0.0.1:${await freePort()}`;
  const reg = await startRegistry({ address: registry, dataDir: path.join(dir, 'registry') });
  t.after(() => reg.stop());
  await client.put(REGISTRY_KEY).value(registry);
  const build = async (name: string): Promise<string> => {
    const vf = parseVikingfile([`viking: {name: ${name}}`, 'build:', '  app: |', '    FROM viking/busybox', `    RUN echo ${name} > /built`, 'deploy:', `  web: {image: "viking:${name}/app"}`, ''].join('\n'));
    const refs = await buildImages({ docker, stack: name, tag: 'v1', images: vf.images, contextDir: dir, resolveOther: async () => '', registry });
    return refs.app!;
  };
  const inRegistry = async (ref: string): Promise<number> => {
    const [repo, tag] = ref.slice(registry.length + 1).split(':') as [string, string];
    const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    return res.status;
  };
  const mine = await build(stack);
  const theirs = await build(other);
  await client.put(imageKey(stack, 'v1', 'app')).value(mine);
  await client.put(imageKey(other, 'v1', 'app')).value(theirs);
  const rec: StackRecord = { name: stack, current: null, lastRelease: 1, releases: [], domains: {}, websites: {}, incarnation: '0123456789abcdef' };
  await client.put(stackKey(stack)).value(JSON.stringify(rec));
  assert.ok(await docker.getImage(mine).inspect());
  assert.equal(await inRegistry(mine), 200, 'pushed to the registry');

  const res = await fetch(`${base}/v1/stack/${stack}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string; message?: string; images?: number });
  const result = lines.at(-1)!;
  assert.equal(result.type, 'result', JSON.stringify(lines));
  assert.equal(result.images, 1);
  assert.ok(lines.some((l) => l.message === `${HOST}: 1 image(s) removed`), JSON.stringify(lines));
  await assert.rejects(docker.getImage(mine).inspect(), (e: { statusCode?: number }) => e.statusCode === 404, 'the stack\'s image is gone');
  assert.ok(await docker.getImage(theirs).inspect(), "another stack's image stays");
  assert.ok(lines.some((l) => l.message === 'registry: 1 image(s) deleted'), JSON.stringify(lines));
  assert.equal(await inRegistry(mine), 404, 'gone from the registry');
  assert.equal(await inRegistry(theirs), 200, "another stack's stays in the registry");
  assert.equal(await client.getAll().prefix(`/images/${stack}/`).count(), 0);

  // A host is never asked to remove an image that is not the stack's.
  const refused = await call({ method: 'POST', url: '/v1/local/cleanup', payload: { stack, images: [theirs], removeVolumes: false } });
  assert.equal(refused.status, 400);
  assert.ok(await docker.getImage(theirs).inspect());
});

/**
 * The /v1 API against a real etcd, through fastify's inject (and real HTTP
 * for the host-to-host calls): every route's auth (401 and nothing
 * changes), its schema (bad input -> 400 with a VIKING_E_ code), its error
 * codes, and what it answers. No host process runs here: cluster state is
 * written into etcd the way hosts, dispatch and slaves write it.
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
import { docker } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { ERROR_CODES } from '../../lib/errors.js';
import { deployKey, domainKey, hostKey, imageKey, procKey, runKey, stackKey, stackLockKey } from '../../lib/store/keys.js';
import type { HostRecord, JobSpec, NodeTemplate, ReleaseRecord, StackRecord } from '../../lib/store/records.js';

let etcd: TestEtcd;
let client: Etcd3;
let app: FastifyInstance;
let dir: string;
let token: string;
let base: string;
const HOST_A = 'api-a';
const HOST_B = 'api-b';

const web: NodeTemplate = {
  node: 'web', image: 'viking-shop/app:v1', expose: [80], volumes: [], env: { GREETING: 'Hello' }, service: false,
  tags: [], prefer: [], memory: 0, cpu: 0, scale: 2,
};
const db: NodeTemplate = { ...web, node: 'db', tags: ['ssd'], scale: 1, env: {} };

function release(tag: string, nodes?: Record<string, NodeTemplate>): ReleaseRecord {
  return {
    tag, number: Number(tag.slice(1)), at: new Date().toISOString(), by: 'test', images: { app: `viking-shop/app:${tag}` },
    source: '/nowhere', builtOn: HOST_A, origin: { kind: 'push' }, ...(nodes ? { nodes } : {}),
    domains: { web: ['shop.local'] }, websites: {}, env: {},
  };
}

function host(name: string, draining = false): HostRecord {
  return {
    name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: name === HOST_A,
    api: base, routerPort: 1, draining, startedAt: new Date().toISOString(), version: 'test',
  };
}

async function seed(): Promise<void> {
  await client.put(hostKey(HOST_A)).value(JSON.stringify(host(HOST_A)));
  await client.put(hostKey(HOST_B)).value(JSON.stringify(host(HOST_B, true)));
  await client.put('/leader').value(HOST_A);
  const shop: StackRecord = {
    name: 'shop', current: 'v2', lastRelease: 2, releases: [release('v1', { web, db }), release('v2', { web })],
    domains: { web: ['shop.local'] }, websites: {},
  };
  await client.put(stackKey('shop')).value(JSON.stringify(shop));
  // `old` has one release, from before releases kept their node specs.
  const old: StackRecord = { name: 'old', current: 'v2', lastRelease: 2, releases: [release('v1'), release('v2', { web })], domains: {}, websites: {} };
  await client.put(stackKey('old')).value(JSON.stringify(old));
  for (const instance of [1, 2]) {
    const job: JobSpec = { ...web, stack: 'shop', tag: 'v2', instance };
    await client.put(procKey(job)).value(JSON.stringify(job));
    await client.put(deployKey(HOST_A, job)).value('');
    await client.put(deployKey(HOST_A, job)).value(JSON.stringify({ state: 'running', container: `c0ffee${instance}`, at: new Date().toISOString() }));
  }
  await client.put(imageKey('shop', 'v2', 'app')).value('viking-shop/app:v2');
  await client.put(domainKey('shop.local')).value(JSON.stringify({ stack: 'shop', node: 'web', kind: 'container' }));
}

/** Every key and value, to prove a refused request changed nothing. */
async function dump(): Promise<Record<string, string>> {
  const all = await client.getAll().strings();
  // The audit log records refused changes too (by design: test/integration/audit-log.test.ts).
  return Object.fromEntries(Object.entries(all).filter(([k]) => !k.startsWith('/tokens/') && !k.startsWith('/audit/')).sort());
}

const auth = (t = token): Record<string, string> => ({ authorization: `Bearer ${t}` });
async function call(o: InjectOptions, t: string | null = token): Promise<{ status: number; json: any; text: string }> {
  const res = await app.inject({ ...o, headers: { ...(t === null ? {} : auth(t)), ...(o.headers ?? {}) } });
  let json: unknown;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, text: res.body };
}

function assertError(r: { status: number; json: any }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.code, code, JSON.stringify(r.json));
  assert.equal(r.json.statusCode, status);
  assert.equal(typeof r.json.message, 'string');
  assert.ok(r.json.code in ERROR_CODES);
}

/** Every route, with a request that is valid in shape. */
const ROUTES: InjectOptions[] = [
  { method: 'GET', url: '/v1/info' },
  { method: 'GET', url: '/v1/whoami' },
  { method: 'GET', url: '/v1/network' },
  { method: 'GET', url: `/v1/server/${HOST_A}` },
  { method: 'POST', url: `/v1/server/${HOST_B}/drain`, payload: { drain: false } },
  { method: 'DELETE', url: `/v1/server/${HOST_B}?force=1` },
  { method: 'GET', url: '/v1/stacks' },
  { method: 'GET', url: '/v1/stack/shop' },
  { method: 'DELETE', url: '/v1/stack/shop' },
  { method: 'GET', url: '/v1/tags/shop' },
  { method: 'GET', url: '/v1/nodes/shop/v2' },
  { method: 'GET', url: '/v1/allocate/shop/v2/web' },
  { method: 'GET', url: '/v1/env/shop' },
  { method: 'POST', url: '/v1/env/shop', payload: { set: { GREETING: 'Howdy' } } },
  { method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 3 } } },
  { method: 'POST', url: '/v1/rollback/shop', payload: {} },
  { method: 'GET', url: '/v1/ps' },
  { method: 'GET', url: '/v1/logs/shop/web' },
  { method: 'GET', url: '/v1/local/containers' },
  { method: 'GET', url: '/v1/local/logs/shop/v2/web/1' },
  { method: 'POST', url: '/v1/push', payload: 'not a tar', headers: { 'content-type': 'application/x-tar' } },
  { method: 'GET', url: '/v1/tokens' },
  { method: 'POST', url: '/v1/tokens', payload: { name: 'mallory' } },
  { method: 'DELETE', url: '/v1/tokens/0123456789ab' },
  { method: 'GET', url: '/metrics' },
  { method: 'GET', url: '/v1/no-such-route' },
];

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-api-'));
  etcd = await startTestEtcd('api');
  client = connectEtcd(etcd.url);
  app = createApi({ client, docker, dataDir: dir, hostName: HOST_A, maxUploadBytes: 1024 * 1024, routerPort: 1, rolloutTimeoutMs: 1500 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  token = (await createToken(client, 'tester')).token;
  await seed();
});

after(async () => {
  await app?.close();
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('ping needs no token; every other route answers 401 without one, with a bad one, and changes nothing', async () => {
  const ping = await call({ method: 'GET', url: '/v1/ping' }, null);
  assert.equal(ping.status, 200);
  assert.deepEqual(ping.json, { ok: true, host: HOST_A });

  const before = await dump();
  const forged = `vkt_${token.split('_')[1]}_${'A'.repeat(43)}`;
  for (const route of ROUTES) {
    for (const t of [null, 'garbage', forged]) {
      const r = await call(route, t);
      assertError(r, 401, 'VIKING_E_UNAUTHORIZED');
    }
    const basic = await call({ ...route, headers: { ...(route.headers ?? {}), authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }, null);
    assertError(basic, 401, 'VIKING_E_UNAUTHORIZED');
  }
  assert.deepEqual(await dump(), before, 'no refused request changed etcd');
});

test('read routes answer what the cluster holds', async () => {
  const info = await call({ method: 'GET', url: '/v1/info' });
  assert.equal(info.status, 200);
  assert.equal(info.json.leader, HOST_A);
  assert.deepEqual(info.json.hosts, { total: 2, draining: 1, masters: 1, names: [HOST_A, HOST_B] });
  assert.equal(info.json.stacks.total, 2);
  assert.deepEqual(info.json.jobs, { total: 2, byState: { running: 2 } });

  const who = await call({ method: 'GET', url: '/v1/whoami' });
  assert.equal(who.json.name, 'tester');
  assert.equal(who.json.hash, undefined, 'the hash never leaves the server');

  const net = await call({ method: 'GET', url: '/v1/network' });
  assert.deepEqual(net.json.map((h: any) => [h.name, h.leader, h.draining, h.jobs]), [[HOST_A, true, false, 2], [HOST_B, false, true, 0]]);

  const server = await call({ method: 'GET', url: `/v1/server/${HOST_A}` });
  assert.equal(server.json.alive, true);
  assert.deepEqual(server.json.jobs.map((j: any) => `${j.node}.${j.instance}:${j.state}`), ['web.1:running', 'web.2:running']);

  const stacks = await call({ method: 'GET', url: '/v1/stacks' });
  assert.deepEqual(stacks.json.map((s: any) => [s.name, s.current, s.releases]), [['old', 'v2', 2], ['shop', 'v2', 2]]);

  const stack = await call({ method: 'GET', url: '/v1/stack/shop' });
  assert.equal(stack.json.current, 'v2');
  assert.equal(stack.json.jobs.length, 2);
  assert.equal(stack.json.busy, null);

  const tags = await call({ method: 'GET', url: '/v1/tags/shop' });
  assert.deepEqual(tags.json.map((t: any) => [t.tag, t.current, t.jobs, t.redeployable]), [['v1', false, 0, true], ['v2', true, 2, true]]);

  const nodes = await call({ method: 'GET', url: '/v1/nodes/shop/v1' });
  assert.deepEqual(nodes.json.map((n: any) => [n.node, n.kind, n.scale, n.replicas.length]), [['db', 'container', 1, 0], ['web', 'container', 2, 0]]);
  const live = await call({ method: 'GET', url: '/v1/nodes/shop/v2' });
  assert.deepEqual(live.json[0].replicas.map((r: any) => [r.instance, r.host, r.state]), [[1, HOST_A, 'running'], [2, HOST_A, 'running']]);

  const env = await call({ method: 'GET', url: '/v1/env/shop' });
  assert.deepEqual(env.json, { stack: 'shop', release: 'v2', overrides: {}, nodes: { web: { GREETING: 'Hello' } } });

  const ps = await call({ method: 'GET', url: '/v1/ps?stack=shop' });
  assert.deepEqual(ps.json.map((r: any) => [r.tag, r.current, r.container]), [['v2', true, 'c0ffee1'], ['v2', true, 'c0ffee2']]);
});

test('allocate shows where replicas run, and dowding\'s reasons where they cannot', async () => {
  const placed = await call({ method: 'GET', url: '/v1/allocate/shop/v2/web' });
  assert.equal(placed.status, 200);
  assert.equal(placed.json.hypothetical, false);
  assert.deepEqual(placed.json.replicas.map((r: any) => [r.instance, r.host, r.status]), [[1, HOST_A, 'placed'], [2, HOST_A, 'placed']]);
  assert.deepEqual(placed.json.hosts.map((h: any) => [h.host, h.fits, h.reason, h.replicas]), [[HOST_A, true, null, 2], [HOST_B, false, 'draining', 0]]);

  // v1's web is not running: planned as a deploy would place it now.
  const planned = await call({ method: 'GET', url: '/v1/allocate/shop/v1/web' });
  assert.equal(planned.json.hypothetical, true);
  assert.deepEqual(planned.json.replicas.map((r: any) => [r.instance, r.host, r.status]), [[1, HOST_A, 'planned'], [2, HOST_A, 'planned']]);

  const none = await call({ method: 'GET', url: '/v1/allocate/shop/v1/db' });
  assert.deepEqual(none.json.replicas, [{ instance: 1, host: null, status: 'unplaceable', reasons: ['1 host: draining', '1 host: missing tag ssd'] }]);
  assert.deepEqual(none.json.hosts.map((h: any) => [h.host, h.reason]), [[HOST_A, 'missing tag ssd'], [HOST_B, 'draining']]);
});

test('bad input is refused by the schemas with 400 and a VIKING_E_ code', async () => {
  const cases: Array<[InjectOptions, string]> = [
    [{ method: 'GET', url: '/v1/stack/Shop' }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: '/v1/stack/-x' }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: '/v1/tags/a_b' }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: '/v1/nodes/shop/latest' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'GET', url: '/v1/allocate/shop/v2/WEB' }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: `/v1/server/${'x'.repeat(64)}` }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: '/v1/ps?stack=NO' }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'GET', url: '/v1/logs/shop/web?follow=maybe' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'GET', url: '/v1/logs/shop/web?tail=-1' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'GET', url: '/v1/logs/shop/web?format=xml' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'GET', url: '/v1/local/logs/shop/v2/web/0' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: {} }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: {} } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: -1 } } }, 'VIKING_E_BAD_REQUEST'],
    // Over the cluster's max-scale (default 100): refused with its own code; over any possible setting: by the schema.
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 101 } } }, 'VIKING_E_SCALE_LIMIT'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 10_001 } } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 1.5 } } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { Web: 1 } } }, 'VIKING_E_INVALID_NAME'],
    [{ method: 'POST', url: '/v1/rollback/shop', payload: { release: 'one' } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/env/shop', payload: {} }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/env/shop', payload: { set: 'A=b' } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/env/shop', payload: { set: { '1A': 'x' } } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/env/shop', payload: { set: { VIKING_STACK: 'x' } } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/env/shop', payload: { unset: ['PORT'] } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/server/api-b/drain', payload: { drain: 'sometimes' } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'DELETE', url: '/v1/server/api-b?force=perhaps' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/tokens', payload: {} }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/tokens', payload: { name: 'has space' } }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'DELETE', url: '/v1/tokens/nope' }, 'VIKING_E_BAD_REQUEST'],
    [{ method: 'POST', url: '/v1/push', payload: 'not a tar', headers: { 'content-type': 'application/x-tar' } }, 'VIKING_E_UPLOAD_INVALID'],
  ];
  const before = await dump();
  for (const [o, code] of cases) {
    const r = await call(o);
    assert.equal(r.status, ERROR_CODES[code as keyof typeof ERROR_CODES].status, `${o.method} ${o.url}: ${r.text}`);
    assert.equal(r.json.code, code, `${o.method} ${o.url}: ${r.text}`);
  }
  assert.deepEqual(await dump(), before, 'refused requests changed nothing');
});

test('what does not exist is a 404 VIKING_E_NOT_FOUND', async () => {
  for (const url of ['/v1/stack/nope', '/v1/tags/nope', '/v1/nodes/shop/v9', '/v1/nodes/nope/v1', '/v1/allocate/shop/v9/web', '/v1/allocate/shop/v1/nope',
    '/v1/allocate/nope/v1/web', '/v1/env/nope', '/v1/server/nope', '/v1/logs/nope/web', '/v1/logs/shop/nope', '/v1/logs/shop/web?tag=v1', '/v1/no-such-route']) {
    assertError(await call({ method: 'GET', url }), 404, 'VIKING_E_NOT_FOUND');
  }
  assertError(await call({ method: 'GET', url: '/v1/local/logs/shop/v2/web/1' }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'DELETE', url: '/v1/stack/nope' }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/scale/nope', payload: { nodes: { web: 1 } } }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/scale/shop', payload: { nodes: { nope: 1 } } }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/rollback/nope', payload: {} }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/rollback/shop', payload: { release: 'v9' } }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/env/nope', payload: { set: { A: 'b' } } }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'POST', url: '/v1/server/nope/drain', payload: {} }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'DELETE', url: '/v1/server/nope' }), 404, 'VIKING_E_NOT_FOUND');
  assertError(await call({ method: 'DELETE', url: '/v1/tokens/0123456789ab' }), 404, 'VIKING_E_NOT_FOUND');
});

test('rollback refusals: nothing before, already live, a release without node specs, a busy stack', async () => {
  assertError(await call({ method: 'POST', url: '/v1/rollback/shop', payload: { release: 'v2' } }), 409, 'VIKING_E_NO_PREVIOUS_RELEASE');
  assertError(await call({ method: 'POST', url: '/v1/rollback/old', payload: {} }), 409, 'VIKING_E_RELEASE_NOT_REDEPLOYABLE');

  await client.put(stackLockKey('shop')).value(JSON.stringify({ stack: 'shop', what: 'push', by: 'bob', host: HOST_B, since: '2026-01-01T00:00:00Z' }));
  try {
    for (const o of [
      { method: 'POST', url: '/v1/rollback/shop', payload: {} },
      { method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 3 } } },
      { method: 'POST', url: '/v1/env/shop', payload: { set: { A: 'b' } } },
      { method: 'DELETE', url: '/v1/stack/shop' },
    ] as InjectOptions[]) {
      const r = await call(o);
      assertError(r, 409, 'VIKING_E_STACK_BUSY');
      assert.match(r.json.message, /push by bob on api-b/);
    }
    const stack = await call({ method: 'GET', url: '/v1/stack/shop' });
    assert.equal(stack.json.busy.by, 'bob');
  } finally {
    await client.delete().key(stackLockKey('shop'));
  }
});

test('a rollback that never gets healthy streams its failure and leaves the live release serving', async () => {
  const before = (await client.getAll().prefix('/proc/shop/').keys()).sort();
  const r = await call({ method: 'POST', url: '/v1/rollback/shop', payload: {} });
  assert.equal(r.status, 200, 'refusals are HTTP errors; a started rollout streams');
  const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { type: 'progress', stage: 'release', message: 'release v3 of shop: rollback to v1' });
  const last = lines.at(-1);
  assert.equal(last.type, 'error');
  assert.equal(last.code, 'VIKING_E_DEPLOY_TIMEOUT');
  assert.match(last.message, /not healthy after 2s: web\/1: no host yet/);
  const stack = (await call({ method: 'GET', url: '/v1/stack/shop' })).json;
  assert.equal(stack.current, 'v2', 'the live release is untouched');
  assert.deepEqual((await client.getAll().prefix('/proc/shop/').keys()).sort(), before, 'the new jobs were withdrawn');
  assert.equal(await client.get(stackLockKey('shop')).string(), null, 'the lock was released');
});

test('env and scale on a stack with nothing live, drain and host removal', async () => {
  await client.put(stackKey('idle')).value(JSON.stringify({ name: 'idle', current: null, lastRelease: 1, releases: [], domains: {}, websites: {} }));
  const env = await call({ method: 'POST', url: '/v1/env/idle', payload: { set: { A: 'b' }, unset: ['C'] } });
  assert.equal(env.status, 200);
  const last = JSON.parse(env.text.trim().split('\n').at(-1)!);
  assert.deepEqual({ type: last.type, env: last.env, changed: last.changed }, { type: 'result', env: { A: 'b' }, changed: true });
  assert.deepEqual(JSON.parse((await client.get(stackKey('idle')).string())!).env, { A: 'b' });
  assertError(await call({ method: 'POST', url: '/v1/scale/idle', payload: { nodes: { web: 2 } } }), 404, 'VIKING_E_NOT_FOUND');

  const drain = await call({ method: 'POST', url: `/v1/server/${HOST_A}/drain`, payload: { drain: true } });
  assert.deepEqual(drain.json, { name: HOST_A, draining: true });
  assert.ok(await client.get(`/drain/${HOST_A}`).string());
  const undrain = await call({ method: 'POST', url: `/v1/server/${HOST_A}/drain`, payload: { drain: false } });
  assert.equal(undrain.json.draining, false);
  assert.equal(await client.get(`/drain/${HOST_A}`).string(), null);

  assertError(await call({ method: 'DELETE', url: `/v1/server/${HOST_B}` }), 409, 'VIKING_E_HOST_ALIVE');
  const removed = await call({ method: 'DELETE', url: `/v1/server/${HOST_B}?force=1` });
  assert.deepEqual(removed.json, { name: HOST_B, unpinned: [] });
  assert.equal(await client.get(hostKey(HOST_B)).string(), null);
  await client.put(hostKey(HOST_B)).value(JSON.stringify(host(HOST_B, true)));
});

test('logs name each replica and say why one has no container here', async () => {
  const text = await call({ method: 'GET', url: '/v1/logs/shop/web' });
  assert.equal(text.status, 200);
  assert.match(text.text, /^web\.1 \| \[viking\] no container on api-a yet/m);
  assert.match(text.text, /^web\.2 \| \[viking\] no container on api-a yet/m);
  const nd = await call({ method: 'GET', url: '/v1/logs/shop/web?format=ndjson&tail=all' });
  const lines = nd.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.replica, l.host, l.tag, l.instance]).sort(), [['web.1', HOST_A, 'v2', 1], ['web.2', HOST_A, 'v2', 2]]);
});

test('tokens: made through the API, stored hashed, listed without secrets, revoked at once, never the last', async () => {
  const made = await call({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci' } });
  assert.equal(made.status, 200);
  const { id, token: ci } = made.json as { id: string; token: string };
  assert.equal(made.json.createdBy, 'tester');
  const stored = JSON.parse((await client.get(`/tokens/${id}`).string())!);
  assert.match(stored.hash, /^[a-f0-9]{64}$/);
  assert.ok(!JSON.stringify(stored).includes(ci.split('_').slice(2).join('_')), 'the secret is not stored');
  assert.equal((await call({ method: 'GET', url: '/v1/whoami' }, ci)).json.name, 'ci');

  const list = await call({ method: 'GET', url: '/v1/tokens' });
  assert.deepEqual(list.json.map((t: any) => t.name).sort(), ['ci', 'tester']);
  assert.ok(list.json.every((t: any) => t.hash === undefined && t.token === undefined));

  assert.equal((await call({ method: 'DELETE', url: `/v1/tokens/${id}` })).status, 200);
  assertError(await call({ method: 'GET', url: '/v1/whoami' }, ci), 401, 'VIKING_E_UNAUTHORIZED');
  const mine = list.json.find((t: any) => t.name === 'tester').id;
  assertError(await call({ method: 'DELETE', url: `/v1/tokens/${mine}` }), 400, 'VIKING_E_BAD_REQUEST');
});

test('/metrics: Prometheus text with requests by route and status, operations, and cluster gauges', async () => {
  const r = await call({ method: 'GET', url: '/metrics' });
  assert.equal(r.status, 200);
  assert.match(r.text, /^viking_http_requests_total\{method="GET",route="\/v1\/info",status="200"\} [1-9]/m);
  assert.match(r.text, /^viking_http_requests_total\{method="GET",route="\/v1\/stack\/:name",status="400"\} [1-9]/m);
  assert.match(r.text, /^viking_http_requests_total\{method="GET",route="\/v1\/info",status="401"\} [1-9]/m);
  assert.match(r.text, /^viking_http_request_duration_seconds_bucket\{le="0\.1",method="GET",route="\/v1\/info"\} [1-9]/m);
  assert.match(r.text, /^viking_operations_total\{kind="rollback",result="VIKING_E_DEPLOY_TIMEOUT"\} 1$/m);
  assert.match(r.text, /^viking_operations_total\{kind="env",result="ok"\} 1$/m);
  assert.match(r.text, /^viking_pushes_total\{result="VIKING_E_UPLOAD_INVALID"\} 1$/m);
  assert.match(r.text, /^viking_stacks 3$/m);
  assert.match(r.text, /^viking_jobs\{state="running"\} 2$/m);
  assert.match(r.text, /^viking_hosts\{state="up"\} 1$/m);
  assert.match(r.text, /^viking_hosts\{state="draining"\} 1$/m);
});

test('rm removes the stack\'s keys, asking every host for its containers', async () => {
  const pending = call({ method: 'DELETE', url: '/v1/stack/shop' });
  // No dispatch runs here: free the placements as dispatch does once /proc is gone.
  await waitFor('rm to withdraw the jobs', async () => (await client.getAll().prefix('/proc/shop/').count()) === 0, 5000, 10);
  assert.ok((await client.getAll().prefix(`/deploy/${HOST_A}/shop/`).count()) > 0, 'rm waits for dispatch to free the jobs');
  await client.delete().prefix(`/deploy/${HOST_A}/shop/`);
  const r = await pending;
  assert.equal(r.status, 200, r.text);
  const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
  const result = lines.at(-1);
  assert.equal(result.type, 'result', r.text);
  assert.deepEqual(result.domains, ['shop.local']);
  for (const prefix of ['/proc/shop/', '/images/shop/', '/stack/shop', '/domains/shop.local']) {
    assert.deepEqual(await client.getAll().prefix(prefix).keys(), [], prefix);
  }
});

/**
 * The audit log on two real APIs sharing one real etcd, over real HTTP: one
 * entry per mutating request (also when many run at once on both hosts),
 * never rewritten, trimmed by the cluster's limits, read back through
 * GET /v1/audit (scoped like the token) and the viking audit CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { docker } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';
import { runCli, VIKING_BIN, NO_CONFIG } from '../helpers/host-process.js';
import { spawn } from 'node:child_process';
import { connectEtcd } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { PREFIX, auditKey, stackKey } from '../../lib/store/keys.js';
import type { AuditEntry } from '../../lib/audit/log.js';
import type { StackRecord } from '../../lib/store/records.js';

let etcd: TestEtcd;
let client: Etcd3;
const apis: Array<{ app: FastifyInstance; base: string; host: string }> = [];
let dir: string;
let admin: { token: string; id: string };
let reader: string;
let blogReader: string;

async function entries(): Promise<Array<AuditEntry & { key: string; version: string }>> {
  const res = await client.getAll().prefix(PREFIX.audit).exec();
  return res.kvs.map((kv) => ({ ...(JSON.parse(kv.value.toString()) as AuditEntry), key: kv.key.toString(), version: String(kv.version) }));
}

async function send(i: number, method: string, url: string, token: string, body?: unknown, user?: string): Promise<Response> {
  const api = apis[i % apis.length]!;
  return fetch(`${api.base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(user ? { 'x-viking-user': user } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-audit-'));
  etcd = await startTestEtcd('audit');
  client = connectEtcd(etcd.url);
  for (const host of ['audit-a', 'audit-b']) {
    const app = createApi({ client, docker, dataDir: dir, hostName: host, maxUploadBytes: 1024 * 1024, routerPort: 1, rolloutTimeoutMs: 1500 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    apis.push({ app, host, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` });
  }
  const a = await createToken(client, 'root', 'test');
  admin = { token: a.token, id: a.record.id };
  reader = (await createToken(client, 'eve', 'test', { role: 'reader' })).token;
  blogReader = (await createToken(client, 'blogger', 'test', { role: 'reader', stacks: ['blog'] })).token;
  for (const name of ['shop', 'blog']) {
    const rec: StackRecord = { name, current: null, lastRelease: 0, releases: [], domains: {}, websites: {} };
    await client.put(stackKey(name)).value(JSON.stringify(rec));
  }
});

after(async () => {
  for (const a of apis) await a.app.close();
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('concurrent mutations on two API hosts each leave exactly one entry, under distinct keys, written once', async (t) => {
  const N = 60;
  const answers = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      const user = `u-${i}`;
      if (i % 3 === 0) return send(i, 'POST', '/v1/env/shop', admin.token, { set: { N: String(i) } }, user); // 200 stream, nothing live
      if (i % 3 === 1) return send(i, 'POST', '/v1/scale/shop', admin.token, {}, user); // 400 by the schema
      return send(i, 'POST', '/v1/env/shop', reader, { set: { A: '1' } }, user); // 403
    }),
  );
  const bodies = await Promise.all(answers.map((r) => r.text()));
  // 200 streams, 400 schema refusals, 403 the reader; env changes that find the stack busy get 409. Whatever
  // the answer, each request must leave one entry (a 5xx once seen here under load is only reported).
  const statuses = new Set(answers.map((r) => r.status));
  assert.ok([200, 400, 403].every((s) => statuses.has(s)), [...statuses].join(','));
  const odd = bodies.filter((_, i) => ![200, 400, 403, 409].includes(answers[i]!.status));
  if (odd.length) t.diagnostic(`unexpected answers: ${odd.join(' | ').slice(0, 600)}`);
  const mine = await waitFor('an entry for every request', async () => {
    const got = (await entries()).filter((e) => e.user?.startsWith('u-'));
    return got.length >= N ? got : undefined;
  });
  await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show here
  const all = (await entries()).filter((e) => e.user?.startsWith('u-'));
  assert.equal(all.length, N, 'one entry per request, no more');
  const byUser = new Map<string, number>();
  for (const e of all) byUser.set(e.user!, (byUser.get(e.user!) ?? 0) + 1);
  assert.deepEqual([...byUser.values()].filter((n) => n !== 1), []);
  assert.equal(new Set(mine.map((e) => e.key)).size, N);
  assert.deepEqual([...new Set(all.map((e) => e.host))].sort(), ['audit-a', 'audit-b']);
  assert.ok(all.every((e) => e.version === '1'), 'every entry was written once');
  // The keys sort by time: each host's own entries are in the order of their times.
  for (const host of ['audit-a', 'audit-b']) {
    const times = all.filter((e) => e.host === host).sort((x, y) => x.key.localeCompare(y.key)).map((e) => Date.parse(e.at));
    assert.deepEqual(times, [...times].sort((x, y) => x - y));
  }
  const forbidden = all.find((e) => e.user === 'u-2')!;
  assert.deepEqual(
    { token: forbidden.token.name, method: forbidden.method, route: forbidden.route, path: forbidden.path, stack: forbidden.stack, status: forbidden.status, result: forbidden.result, address: forbidden.address },
    { token: 'eve', method: 'POST', route: '/v1/env/:stack', path: '/v1/env/shop', stack: 'shop', status: 403, result: 'VIKING_E_FORBIDDEN', address: '127.0.0.1' },
  );
  const ok = all.find((e) => e.status === 200)!;
  assert.equal(answers[Number(ok.user!.slice(2))]!.status, 200);
  assert.equal(ok.result, 'ok');
  assert.equal(ok.token.id, admin.id);
  assert.equal(all.find((e) => e.user === 'u-1')!.result, 'VIKING_E_BAD_REQUEST');
});

test('a stream that fails is recorded with its code; reads and requests without a valid token are not recorded', async () => {
  // blog gets a live release whose rollout cannot finish (no hosts): the env change streams VIKING_E_DEPLOY_TIMEOUT.
  const node = { node: 'web', image: 'viking-blog/app:v1', expose: [80], volumes: [], env: {}, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1 };
  const live: StackRecord = {
    name: 'blog', current: 'v1', lastRelease: 1, domains: {}, websites: {},
    releases: [{ tag: 'v1', number: 1, at: new Date().toISOString(), by: 't', images: {}, source: '/nowhere', builtOn: 'audit-a', origin: { kind: 'push' }, nodes: { web: node }, domains: {}, websites: {}, env: {} }],
  };
  await client.put(stackKey('blog')).value(JSON.stringify(live));
  const before = (await entries()).length;
  const res = await send(0, 'POST', '/v1/env/blog', admin.token, { set: { A: '2' } }, 'streamer');
  const text = await res.text();
  assert.equal(res.status, 200);
  assert.match(text, /"type":"error"/);
  const e = await waitFor('the stream entry', async () => (await entries()).find((x) => x.user === 'streamer'));
  assert.equal(e.stack, 'blog');
  assert.notEqual(e.result, 'ok');
  assert.match(e.result, /^VIKING_E_/);
  assert.equal(text.includes(e.result), true, `the entry says the stream's code ${e.result}`);

  await send(1, 'GET', '/v1/stacks', admin.token);
  await send(1, 'POST', '/v1/scale/shop', 'vkt_000000000000_' + 'A'.repeat(43), { nodes: { web: 1 } });
  await fetch(`${apis[0]!.base}/v1/scale/shop`, { method: 'POST' });
  await send(0, 'POST', '/v1/settings', admin.token, { maxScale: 100 }, 'marker');
  await waitFor('the marker entry', async () => (await entries()).find((x) => x.user === 'marker'));
  assert.equal((await entries()).length, before + 2, 'only the stream and the marker were recorded');
});

test('GET /v1/audit: newest entries oldest first, filtered by stack, time and the token\'s scope; follow by revision', async () => {
  const all = await (await send(0, 'GET', '/v1/audit?limit=5000', admin.token)).json() as { entries: Array<AuditEntry & { id: string }>; revision: string };
  const ids = all.entries.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort(), 'oldest first, by key');
  assert.equal(new Set(ids).size, ids.length);
  const two = await (await send(0, 'GET', '/v1/audit?limit=2', admin.token)).json() as { entries: Array<{ id: string }> };
  assert.deepEqual(two.entries.map((e) => e.id), ids.slice(-2), 'the newest two');
  const shop = await (await send(1, 'GET', '/v1/audit?stack=shop&limit=5000', reader)).json() as { entries: AuditEntry[] };
  assert.ok(shop.entries.length >= 60 && shop.entries.every((e) => e.stack === 'shop'));
  const scoped = await (await send(1, 'GET', '/v1/audit?limit=5000', blogReader)).json() as { entries: AuditEntry[] };
  assert.ok(scoped.entries.length >= 1 && scoped.entries.every((e) => e.stack === 'blog'), 'a blog reader sees blog only, and no cluster-wide entry');
  assert.equal((await send(1, 'GET', '/v1/audit?stack=shop', blogReader)).status, 403);
  const none = await (await send(0, 'GET', `/v1/audit?afterRevision=${all.revision}`, admin.token)).json() as { entries: unknown[]; revision: string };
  assert.equal(none.entries.length, 0);
  await send(0, 'POST', '/v1/settings', admin.token, { maxScale: 100 }, 'follow-me');
  const next = await waitFor('the new entry after the revision', async () => {
    const r = (await (await send(0, 'GET', `/v1/audit?afterRevision=${all.revision}`, admin.token)).json()) as { entries: AuditEntry[] };
    return r.entries.length > 0 ? r.entries : undefined;
  });
  assert.deepEqual(next.map((e) => e.user), ['follow-me']);
  const recent = await (await send(0, 'GET', '/v1/audit?since=1h&limit=5000', admin.token)).json() as { entries: unknown[] };
  assert.equal(recent.entries.length, all.entries.length + 1);
  assert.equal((await send(0, 'GET', '/v1/audit?since=soon', admin.token)).status, 400);
});

test('viking audit prints a table, filters by stack, and --json', async () => {
  const env = { VIKING_API: apis[0]!.base, VIKING_TOKEN: admin.token };
  const table = await runCli(['audit', '--stack', 'blog'], env);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0]!, /^TIME\s+TOKEN\s+FROM\s+REQUEST\s+STACK\s+STATUS\s+RESULT\s+RELEASE$/);
  assert.ok(lines.slice(1).every((l) => /POST \/v1\/env\/blog\s+blog\s+200\s+VIKING_E_/.test(l)), table.stdout);
  const json = await runCli(['audit', '--json', '--since', '1h'], env);
  const parsed = JSON.parse(json.stdout) as AuditEntry[];
  assert.ok(parsed.length > 60);
  assert.ok(parsed.some((e) => e.user === 'follow-me'));
});

test('entries are trimmed by the cluster\'s count and age limits, oldest first', async () => {
  // One entry from 100 days ago: the default age limit (90 days) removes it with the next append.
  const ancient = auditKey(Date.now() - 100 * 86_400_000, 0, 'aaaaaaaaaaaaaaaa');
  await client.put(ancient).value(JSON.stringify({ at: 'long ago' }));
  await send(0, 'POST', '/v1/settings', admin.token, { auditMaxEntries: 10 }, 'limit');
  await waitFor('the ancient entry trimmed', async () => !(await client.get(ancient).string()));
  for (let i = 0; i < 15; i++) {
    const r = await send(i, 'POST', '/v1/scale/shop', admin.token, {}, `t-${i}`);
    await r.text();
  }
  let last: unknown;
  const left = await waitFor('ten newest entries', async () => {
    const got = await entries();
    last = got.map((e) => e.user ?? e.key);
    return got.some((e) => e.user === 't-14') && got.length === 10 ? got : undefined;
  }).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(last)}`));
  assert.deepEqual(left.map((e) => e.user), Array.from({ length: 10 }, (_, i) => `t-${i + 5}`));
  const settings = await (await send(0, 'GET', '/v1/settings', admin.token)).json() as Record<string, number>;
  assert.equal(settings.auditMaxEntries, 10);
  const refused = await send(0, 'POST', '/v1/settings', admin.token, { auditMaxEntries: 1 });
  assert.equal(refused.status, 400);
});

test('viking token create/list/rotate with roles, a deployer refused outside its stacks, and audit settings, through the CLI', async () => {
  const env = { VIKING_API: apis[1]!.base, VIKING_TOKEN: admin.token };
  const made = await runCli(['token', 'create', 'ci', '--role', 'deployer', '--stacks', 'shop,team-*', '--expires', '30d', '--json'], env);
  assert.equal(made.code, 0, made.stderr);
  const ci = JSON.parse(made.stdout) as { id: string; token: string; role: string; stacks: string[]; expiresAt: string };
  assert.equal(ci.role, 'deployer');
  assert.deepEqual(ci.stacks, ['shop', 'team-*']);
  const list = await runCli(['token', 'list'], env);
  assert.equal(list.code, 0, list.stderr);
  const [header, ...rows] = list.stdout.trim().split('\n');
  assert.match(header!, /^ID\s+NAME\s+ROLE\s+STACKS\s+DOMAINS\s+EXPIRES\s+CREATED\s+BY$/);
  const row = rows.find((r) => r.startsWith(ci.id))!;
  assert.match(row, new RegExp(`^${ci.id}\\s+ci\\s+deployer\\s+shop,team-\\*\\s+-\\s+${ci.expiresAt.replace(/[.]/g, '\\.')}\\s`));
  assert.match(rows.find((r) => r.includes(' root '))!, /\sadmin\s+all\s+-\s+never\s/);
  const listed = JSON.parse((await runCli(['token', 'list', '--json'], env)).stdout) as Array<{ id: string; role: string }>;
  assert.equal(listed.find((t) => t.id === ci.id)!.role, 'deployer');

  const refused = await runCli(['scale', 'blog', 'web=2'], { ...env, VIKING_TOKEN: ci.token });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /VIKING_E_FORBIDDEN: forbidden: needs stack:scale on stack blog/);
  const noTokens = await runCli(['token', 'list'], { ...env, VIKING_TOKEN: ci.token });
  assert.match(noTokens.stderr, /VIKING_E_FORBIDDEN: .*needs tokens:admin/);

  const rotated = await runCli(['token', 'rotate', ci.id, '--json'], env);
  assert.equal(rotated.code, 0, rotated.stderr);
  const fresh = JSON.parse(rotated.stdout) as { token: string; role: string };
  assert.notEqual(fresh.token, ci.token);
  assert.equal(fresh.role, 'deployer');
  const old = await runCli(['stacks'], { ...env, VIKING_TOKEN: ci.token });
  assert.match(old.stderr, /VIKING_E_UNAUTHORIZED/);

  const set = await runCli(['settings', 'audit-max-entries=500', 'audit-max-age-days=30'], env);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /audit-max-entries\s+500/);
  assert.match(set.stdout, /audit-max-age-days\s+30/);
  const bad = await runCli(['settings', 'audit-forever=1'], env);
  assert.match(bad.stderr, /VIKING_E_BAD_REQUEST: 'audit-forever=1' is not a setting; settings: max-scale=N, audit-max-entries=N, audit-max-age-days=N/);
});

test('viking audit -f prints entries written after it started, as they come', async () => {
  await (await send(0, 'POST', '/v1/scale/shop', admin.token, {}, 'before-f')).text();
  await waitFor('the entry before', async () => (await entries()).find((e) => e.user === 'before-f'));
  const child = spawn(process.execPath, [VIKING_BIN, 'audit', '-f', '--json', '--stack', 'shop', '--limit', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VIKING_CONFIG: NO_CONFIG, VIKING_API: apis[0]!.base, VIKING_TOKEN: admin.token },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // The newest old entry first (--limit 1), then only what comes after.
    await waitFor('the first answer', () => out.split('\n').filter(Boolean).length >= 1, 30_000);
    await (await send(1, 'POST', '/v1/scale/shop', admin.token, {}, 'followed-1')).text();
    await (await send(0, 'POST', '/v1/scale/blog', admin.token, {}, 'other-stack')).text();
    await (await send(0, 'POST', '/v1/scale/shop', admin.token, {}, 'followed-2')).text();
    const users = await waitFor('both new shop entries', () => {
      const u = out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AuditEntry).user);
      return u.includes('followed-2') ? u : undefined;
    }, 30_000);
    assert.deepEqual(users, ['before-f', 'followed-1', 'followed-2'], 'the newest old entry, then each new one once, in order, only of shop');
  } finally {
    child.kill('SIGTERM');
  }
});

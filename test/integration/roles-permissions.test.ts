/**
 * Roles and stack scopes on a real API and a real etcd: every registered
 * route with every kind of token (allowed, or 403 naming the permission),
 * expired tokens (401), rotation, old token records (admin), scoped listings
 * and the push policy for domains.
 *
 * Requests a token is allowed to make are shaped to stop right after the
 * gate (a body the schema refuses, a stack with no image), so the table
 * changes nothing but the audit log; the permission check runs first.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pack } from 'tar-fs';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { docker } from '../helpers/docker.js';
import { connectEtcd } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken, hashSecret } from '../../lib/auth/tokens.js';
import { ruleFor } from '../../lib/auth/route-permissions.js';
import { deployKey, domainKey, procKey, runKey, stackKey, tokenKey } from '../../lib/store/keys.js';
import type { JobSpec, NodeTemplate, StackRecord, TokenRecord } from '../../lib/store/records.js';
import { writeFile, mkdir } from 'node:fs/promises';

let etcd: TestEtcd;
let client: Etcd3;
let app: FastifyInstance;
let dir: string;
const HOST = 'roles-api';

/**
 * The tokens of the table, one letter each:
 *   A admin   O admin from before roles (an old record)   R reader, every stack
 *   r reader of sh*   x reader of blog   D deployer of shop   d deployer of team-*   W deployer of *
 */
const KINDS = ['A', 'O', 'R', 'r', 'x', 'D', 'd', 'W'] as const;
type Kind = (typeof KINDS)[number];
const tokens = {} as Record<Kind, string>;

const web: NodeTemplate = {
  node: 'web', image: 'viking-shop/app:v1', expose: [80], volumes: [], env: {}, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
};

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const src = await mkdtemp(path.join(dir, 'src-'));
  await mkdir(src, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(src, name), content);
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const p = pack(src);
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  return Buffer.concat(chunks);
}

/** A push of stack `stack` whose image no stack has: refused after the permission checks, before any build. */
async function pushOf(stack: string, domains: string[] = []): Promise<InjectOptions> {
  const doms = domains.length ? `, domains: [${domains.map((d) => `'${d}'`).join(', ')}]` : '';
  const payload = await tarOf({ Vikingfile: `viking: { name: ${stack} }\ndeploy:\n  web: { image: 'viking:nowhere/app', expose: [80]${doms} }\n` });
  return { method: 'POST', url: '/v1/push', payload, headers: { 'content-type': 'application/x-tar' } };
}

async function call(o: InjectOptions, t: string | null): Promise<{ status: number; json: any; body: string }> {
  const res = await app.inject({ ...o, headers: { ...(o.headers ?? {}), ...(t ? { authorization: `Bearer ${t}` } : {}) } });
  let json: unknown;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, body: res.body };
}

interface Sample {
  route: string;
  req: InjectOptions | (() => Promise<InjectOptions>);
  /** The kinds of token allowed; every other gets 403. */
  allowed: string;
  /** A permission the route checks beyond its table rule (reveal), and the kinds of token that pass the rule and fail on it. */
  also?: { permission: string; kinds: string };
}

const ALL = KINDS.join('');
const SAMPLES: Sample[] = [
  { route: 'GET /v1/ping', req: { method: 'GET', url: '/v1/ping' }, allowed: ALL },
  { route: 'GET /v1/source/:stack/:tag/website/:node', req: { method: 'GET', url: '/v1/source/shop/v1/website/site' }, allowed: ALL },
  { route: 'GET /v1/whoami', req: { method: 'GET', url: '/v1/whoami' }, allowed: ALL },
  { route: 'GET /v1/info', req: { method: 'GET', url: '/v1/info' }, allowed: 'AOR' },
  { route: 'GET /v1/network', req: { method: 'GET', url: '/v1/network' }, allowed: 'AOR' },
  { route: 'GET /v1/server/:name', req: { method: 'GET', url: '/v1/server/nohost' }, allowed: 'AOR' },
  { route: 'GET /v1/settings', req: { method: 'GET', url: '/v1/settings' }, allowed: 'AOR' },
  { route: 'GET /metrics', req: { method: 'GET', url: '/metrics' }, allowed: 'AOR' },
  { route: 'POST /v1/server/:name/drain', req: { method: 'POST', url: '/v1/server/nohost/drain', payload: { drain: 'x' } }, allowed: 'AO' },
  { route: 'DELETE /v1/server/:name', req: { method: 'DELETE', url: '/v1/server/nohost?force=perhaps' }, allowed: 'AO' },
  { route: 'POST /v1/rebalance', req: { method: 'POST', url: '/v1/rebalance', payload: { bogus: 1 } }, allowed: 'AO' },
  { route: 'POST /v1/settings', req: { method: 'POST', url: '/v1/settings', payload: {} }, allowed: 'AO' },
  { route: 'GET /v1/certs', req: { method: 'GET', url: '/v1/certs' }, allowed: 'AOR' },
  { route: 'POST /v1/certs', req: { method: 'POST', url: '/v1/certs', payload: {} }, allowed: 'AO' },
  { route: 'DELETE /v1/certs/:domain', req: { method: 'DELETE', url: '/v1/certs/shop.example.com' }, allowed: 'AO' },
  { route: 'GET /v1/tokens', req: { method: 'GET', url: '/v1/tokens' }, allowed: 'AO' },
  { route: 'POST /v1/tokens', req: { method: 'POST', url: '/v1/tokens', payload: {} }, allowed: 'AO' },
  { route: 'DELETE /v1/tokens/:id', req: { method: 'DELETE', url: '/v1/tokens/0123456789ab' }, allowed: 'AO' },
  { route: 'POST /v1/tokens/:id/rotate', req: { method: 'POST', url: '/v1/tokens/0123456789ab/rotate', payload: {} }, allowed: 'AO' },
  { route: 'GET /v1/stacks', req: { method: 'GET', url: '/v1/stacks' }, allowed: ALL },
  { route: 'GET /v1/stack/:name', req: { method: 'GET', url: '/v1/stack/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/stack/:name', req: { method: 'GET', url: '/v1/stack/blog' }, allowed: 'AORxW' },
  { route: 'GET /v1/stack/:name', req: { method: 'GET', url: '/v1/stack/team-a' }, allowed: 'AORdW' },
  { route: 'GET /v1/tags/:stack', req: { method: 'GET', url: '/v1/tags/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/nodes/:stack/:tag', req: { method: 'GET', url: '/v1/nodes/shop/v1' }, allowed: 'AORrDW' },
  { route: 'GET /v1/allocate/:stack/:tag/:node', req: { method: 'GET', url: '/v1/allocate/shop/v1/web' }, allowed: 'AORrDW' },
  { route: 'GET /v1/env/:stack', req: { method: 'GET', url: '/v1/env/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/ps', req: { method: 'GET', url: '/v1/ps' }, allowed: ALL },
  { route: 'GET /v1/ps', req: { method: 'GET', url: '/v1/ps?stack=shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/local/containers', req: { method: 'GET', url: '/v1/local/containers' }, allowed: ALL },
  { route: 'GET /v1/local/containers', req: { method: 'GET', url: '/v1/local/containers?stack=blog' }, allowed: 'AORxW' },
  { route: 'GET /v1/local/traffic', req: { method: 'GET', url: '/v1/local/traffic' }, allowed: ALL },
  { route: 'GET /v1/local/traffic', req: { method: 'GET', url: '/v1/local/traffic?stack=blog' }, allowed: 'AORxW' },
  { route: 'GET /v1/stats', req: { method: 'GET', url: '/v1/stats' }, allowed: ALL },
  { route: 'GET /v1/stats', req: { method: 'GET', url: '/v1/stats?stack=shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/local/resources', req: { method: 'GET', url: '/v1/local/resources' }, allowed: ALL },
  { route: 'GET /v1/local/resources', req: { method: 'GET', url: '/v1/local/resources?stack=blog' }, allowed: 'AORxW' },
  { route: 'GET /v1/resources', req: { method: 'GET', url: '/v1/resources' }, allowed: ALL },
  { route: 'GET /v1/resources', req: { method: 'GET', url: '/v1/resources?stack=shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/logs/:stack/:node', req: { method: 'GET', url: '/v1/logs/shop/web' }, allowed: 'AORrDW' },
  { route: 'GET /v1/local/logs/:stack/:tag/:node/:instance', req: { method: 'GET', url: '/v1/local/logs/team-a/v1/web/1' }, allowed: 'AORdW' },
  { route: 'GET /v1/pushes/:stack', req: { method: 'GET', url: '/v1/pushes/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/access/:stack', req: { method: 'GET', url: '/v1/access/shop?node=web' }, allowed: 'AORrDW' },
  { route: 'GET /v1/local/access/:stack', req: { method: 'GET', url: '/v1/local/access/blog?tail=5' }, allowed: 'AORxW' },
  { route: 'GET /v1/audit', req: { method: 'GET', url: '/v1/audit' }, allowed: ALL },
  { route: 'GET /v1/audit', req: { method: 'GET', url: '/v1/audit?stack=shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/cron/:stack', req: { method: 'GET', url: '/v1/cron/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/secrets/:stack', req: { method: 'GET', url: '/v1/secrets/shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/secrets/:stack', req: { method: 'GET', url: '/v1/secrets/shop?reveal=1' }, allowed: 'AO', also: { permission: 'secrets:reveal', kinds: 'RrDW' } },
  { route: 'POST /v1/secrets/:stack', req: { method: 'POST', url: '/v1/secrets/shop', payload: {} }, allowed: 'AODW' },
  { route: 'POST /v1/push', req: () => pushOf('shop'), allowed: 'AODW' },
  { route: 'POST /v1/push', req: () => pushOf('team-b'), allowed: 'AOdW' },
  { route: 'POST /v1/scale/:stack', req: { method: 'POST', url: '/v1/scale/shop', payload: {} }, allowed: 'AODW' },
  { route: 'POST /v1/scale/:stack', req: { method: 'POST', url: '/v1/scale/team-a', payload: {} }, allowed: 'AOdW' },
  { route: 'POST /v1/env/:stack', req: { method: 'POST', url: '/v1/env/shop', payload: {} }, allowed: 'AODW' },
  { route: 'POST /v1/rollback/:stack', req: { method: 'POST', url: '/v1/rollback/shop', payload: { release: 'one' } }, allowed: 'AODW' },
  { route: 'DELETE /v1/stack/:name', req: { method: 'DELETE', url: '/v1/stack/shop?purge=1' }, allowed: 'AODW' },
  { route: 'DELETE /v1/stack/:name', req: { method: 'DELETE', url: '/v1/stack/blog?purge=1' }, allowed: 'AOW' },
  { route: 'GET /v1/exec/:stack/:node/:instance', req: { method: 'GET', url: '/v1/exec/shop/web/1?cmd=%5B%22true%22%5D' }, allowed: 'AODW' },
  { route: 'GET /v1/local/exec/:stack/:tag/:node/:instance', req: { method: 'GET', url: '/v1/local/exec/team-a/v1/web/1?cmd=%5B%22true%22%5D' }, allowed: 'AOdW' },
  { route: 'GET /v1/run/:stack/:node', req: { method: 'GET', url: '/v1/run/shop/web?cmd=%5B%22true%22%5D' }, allowed: 'AODW' },
  { route: 'GET /v1/local/run/:stack/:node', req: { method: 'GET', url: '/v1/local/run/blog/web?cmd=%5B%22true%22%5D' }, allowed: 'AOW' },
  { route: 'GET /v1/runs', req: { method: 'GET', url: '/v1/runs' }, allowed: ALL },
  { route: 'GET /v1/runs', req: { method: 'GET', url: '/v1/runs?stack=blog' }, allowed: 'AORxW' },
  { route: 'GET /v1/local/runs', req: { method: 'GET', url: '/v1/local/runs' }, allowed: ALL },
  { route: 'GET /v1/volumes', req: { method: 'GET', url: '/v1/volumes' }, allowed: ALL },
  { route: 'GET /v1/volumes', req: { method: 'GET', url: '/v1/volumes?stack=shop' }, allowed: 'AORrDW' },
  { route: 'GET /v1/local/volumes', req: { method: 'GET', url: '/v1/local/volumes?stack=team-a' }, allowed: 'AORdW' },
  { route: 'GET /v1/volume/:stack/:node/backup', req: { method: 'GET', url: '/v1/volume/shop/web/backup?path=/data' }, allowed: 'AODW' },
  { route: 'GET /v1/local/volume/:stack/:node/backup', req: { method: 'GET', url: '/v1/local/volume/shop/web/backup?path=/data' }, allowed: 'AODW' },
  { route: 'POST /v1/volume/:stack/:node/restore', req: { method: 'POST', url: '/v1/volume/shop/web/restore?path=/data', payload: {} }, allowed: 'AODW' },
  { route: 'POST /v1/local/volume/:stack/:node/restore', req: { method: 'POST', url: '/v1/local/volume/team-a/web/restore?path=/data', payload: {} }, allowed: 'AOdW' },
  { route: 'POST /v1/local/cleanup', req: { method: 'POST', url: '/v1/local/cleanup', payload: { stack: 'shop', images: [], removeVolumes: false } }, allowed: 'AODW' },
  { route: 'GET /ui', req: { method: 'GET', url: '/ui' }, allowed: ALL },
  { route: 'GET /ui/*', req: { method: 'GET', url: '/ui/app.css' }, allowed: ALL },
  { route: 'POST /ui/session', req: { method: 'POST', url: '/ui/session' }, allowed: ALL },
  { route: 'DELETE /ui/session', req: { method: 'DELETE', url: '/ui/session' }, allowed: ALL },
  // ?bogus=1: an allowed token gets 400 instead of an endless event stream
  { route: 'GET /v1/events', req: { method: 'GET', url: '/v1/events?bogus=1' }, allowed: ALL },
  { route: 'GET /v1/capacity', req: { method: 'GET', url: '/v1/capacity' }, allowed: 'AOR' },
];

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-roles-'));
  etcd = await startTestEtcd('roles');
  client = connectEtcd(etcd.url);
  app = createApi({ client, docker, dataDir: dir, hostName: HOST, maxUploadBytes: 1024 * 1024, routerPort: 1, rolloutTimeoutMs: 1500 });
  await app.ready();
  tokens.A = (await createToken(client, 'admin', 'test', { role: 'admin' })).token;
  tokens.R = (await createToken(client, 'reader', 'test', { role: 'reader' })).token;
  tokens.r = (await createToken(client, 'reader-sh', 'test', { role: 'reader', stacks: ['sh*'] })).token;
  tokens.x = (await createToken(client, 'reader-blog', 'test', { role: 'reader', stacks: ['blog'] })).token;
  tokens.D = (await createToken(client, 'deploy-shop', 'test', { role: 'deployer', stacks: ['shop'] })).token;
  tokens.d = (await createToken(client, 'deploy-team', 'test', { role: 'deployer', stacks: ['team-*'] })).token;
  tokens.W = (await createToken(client, 'deploy-all', 'test', { role: 'deployer', stacks: ['*'] })).token;
  // A record exactly as viking wrote them before roles: no role, no stacks, no expiry.
  const secret = 'S'.repeat(43);
  const old = { id: '0ld0ld0ld0ld'.replace(/[^a-f0-9]/g, 'a'), name: 'from-before', hash: hashSecret(secret), createdAt: '2025-01-01T00:00:00.000Z', createdBy: 'viking up' };
  await client.put(tokenKey(old.id)).value(JSON.stringify(old));
  tokens.O = `vkt_${old.id}_${secret}`;
  for (const name of ['shop', 'blog', 'team-a']) {
    const rec: StackRecord = { name, current: null, lastRelease: 0, releases: [], domains: {}, websites: {} };
    await client.put(stackKey(name)).value(JSON.stringify(rec));
    const job: JobSpec = { ...web, stack: name, tag: 'v1', instance: 1 };
    await client.put(procKey(job)).value(JSON.stringify(job));
    await client.put(deployKey(HOST, job)).value('');
  }
});

after(async () => {
  await app?.close();
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('every route with every role and scope: allowed, or 403 VIKING_E_FORBIDDEN naming the permission', async () => {
  const covered = new Set(SAMPLES.map((s) => s.route));
  const routes = app.vikingRoutes.map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(routes.filter((r) => !covered.has(r)), [], 'routes without a sample in this table');
  const wrong: string[] = [];
  let checked = 0;
  for (const s of SAMPLES) {
    const [method, url] = s.route.split(' ') as [string, string];
    const rule = ruleFor(method, url);
    for (const kind of KINDS) {
      const need = s.also?.kinds.includes(kind) ? s.also.permission : rule && 'need' in rule ? rule.need : undefined;
      const req = typeof s.req === 'function' ? await s.req() : s.req;
      const r = await call(req, tokens[kind]);
      checked++;
      const where = `${kind} ${req.method} ${req.url}`;
      if (s.allowed.includes(kind)) {
        if (r.status === 401 || r.status === 403) wrong.push(`${where}: expected allowed, got ${r.status} ${r.body.slice(0, 200)}`);
      } else if (r.status !== 403 || r.json?.code !== 'VIKING_E_FORBIDDEN') {
        wrong.push(`${where}: expected 403, got ${r.status} ${r.body.slice(0, 200)}`);
      } else if (need !== undefined && !r.json.message.includes(`needs ${need}`)) {
        wrong.push(`${where}: the 403 does not name ${need}: ${r.json.message}`);
      } else if (need !== undefined && r.json.details?.permission !== need) {
        wrong.push(`${where}: details.permission is ${r.json.details?.permission}`);
      }
    }
  }
  assert.deepEqual(wrong, [], `${wrong.length} of ${checked} answers wrong`);
  // Public routes need no token at all; every other route still answers 401 without one.
  assert.equal((await call({ method: 'GET', url: '/v1/ping' }, null)).status, 200);
  assert.equal((await call({ method: 'GET', url: '/v1/stacks' }, null)).status, 401);
});

test('a token scoped to some stacks lists only those', async () => {
  const names = async (t: Kind): Promise<string[]> => (await call({ method: 'GET', url: '/v1/stacks' }, tokens[t])).json.map((s: any) => s.name).sort();
  // team-b: made by the table's push of it (its record stays after the failed push).
  assert.deepEqual(await names('A'), ['blog', 'shop', 'team-a', 'team-b']);
  assert.deepEqual(await names('r'), ['shop']);
  assert.deepEqual(await names('x'), ['blog']);
  assert.deepEqual(await names('d'), ['team-a', 'team-b']);
  const ps = async (t: Kind): Promise<string[]> => (await call({ method: 'GET', url: '/v1/ps' }, tokens[t])).json.map((j: any) => j.stack).sort();
  // (shop's seeded job was withdrawn by the table's pushes of shop, which settle what an unfinished change left.)
  assert.deepEqual(await ps('R'), ['blog', 'team-a']);
  assert.deepEqual(await ps('x'), ['blog']);
  assert.deepEqual(await ps('d'), ['team-a']);
  assert.deepEqual(await ps('D'), []);
  const who = await call({ method: 'GET', url: '/v1/whoami' }, tokens.d);
  assert.equal(who.json.role, 'deployer');
  assert.deepEqual(who.json.stacks, ['team-*']);
});

test('an old token record (no role) is an admin, and token list shows role, stacks and expiry', async () => {
  const who = await call({ method: 'GET', url: '/v1/whoami' }, tokens.O);
  assert.equal(who.status, 200);
  assert.equal(who.json.role, 'admin');
  const list = await call({ method: 'GET', url: '/v1/tokens' }, tokens.O);
  const byName = new Map<string, any>(list.json.map((t: any) => [t.name, t]));
  assert.equal(byName.get('from-before').role, 'admin');
  assert.equal(byName.get('from-before').stacks, undefined);
  assert.equal(byName.get('deploy-team').role, 'deployer');
  assert.deepEqual(byName.get('deploy-team').stacks, ['team-*']);
  assert.ok(list.json.every((t: any) => t.hash === undefined), 'no hash leaves the server');
  const made = await call({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci', role: 'deployer', stacks: ['shop'], expires: '30d' } }, tokens.A);
  assert.equal(made.status, 200, made.body);
  assert.equal(made.json.role, 'deployer');
  const days = (Date.parse(made.json.expiresAt) - Date.now()) / 86_400_000;
  assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
  const refused = await call({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci2', role: 'deployer' } }, tokens.A);
  assert.equal(refused.status, 400);
  assert.match(refused.json.message, /needs --stacks/);
});

test('an expired token gets 401 VIKING_E_TOKEN_EXPIRED saying it expired, on every kind of route', async () => {
  const made = await createToken(client, 'short', 'test', { role: 'admin', expires: '1h' });
  assert.equal((await call({ method: 'GET', url: '/v1/whoami' }, made.token)).status, 200);
  const rec = JSON.parse((await client.get(tokenKey(made.record.id)).string())!) as TokenRecord;
  // As if made an hour and a second ago.
  const hourAgo = Date.now() - 3_601_000;
  await client.put(tokenKey(made.record.id)).value(JSON.stringify({ ...rec, createdAt: new Date(hourAgo).toISOString(), expiresAt: new Date(hourAgo + 3_600_000).toISOString() }));
  for (const o of [{ method: 'GET', url: '/v1/whoami' }, { method: 'GET', url: '/v1/stacks' }, { method: 'POST', url: '/v1/scale/shop', payload: { nodes: { web: 2 } } }] as InjectOptions[]) {
    const r = await call(o, made.token);
    assert.equal(r.status, 401, r.body);
    assert.equal(r.json.code, 'VIKING_E_TOKEN_EXPIRED');
    assert.match(r.json.message, /expired at/);
    assert.match(r.json.message, /viking token rotate/);
  }
  // Rotation gives it a new secret and a new lifetime (the one it had: 1h); the old secret is dead.
  const rotated = await call({ method: 'POST', url: `/v1/tokens/${made.record.id}/rotate`, payload: {} }, tokens.A);
  assert.equal(rotated.status, 200, rotated.body);
  assert.equal(rotated.json.id, made.record.id);
  assert.equal(rotated.json.name, 'short');
  const left = (Date.parse(rotated.json.expiresAt) - Date.now()) / 60_000;
  assert.ok(left > 59 && left <= 60, `${left} minutes left`);
  assert.equal((await call({ method: 'GET', url: '/v1/whoami' }, rotated.json.token)).status, 200);
  const old = await call({ method: 'GET', url: '/v1/whoami' }, made.token);
  assert.equal(old.status, 401);
  assert.equal(old.json.code, 'VIKING_E_UNAUTHORIZED');
});

test('rotation keeps role and scope, and only an admin may rotate', async () => {
  const made = await createToken(client, 'rot', 'test', { role: 'reader', stacks: ['blog'] });
  const byReader = await call({ method: 'POST', url: `/v1/tokens/${made.record.id}/rotate`, payload: {} }, tokens.R);
  assert.equal(byReader.status, 403);
  assert.match(byReader.json.message, /needs tokens:admin/);
  const r = await call({ method: 'POST', url: `/v1/tokens/${made.record.id}/rotate`, payload: { expires: '2d' } }, tokens.A);
  assert.equal(r.json.role, 'reader');
  assert.deepEqual(r.json.stacks, ['blog']);
  assert.equal((await call({ method: 'GET', url: '/v1/stack/blog' }, r.json.token)).status, 200);
  assert.equal((await call({ method: 'GET', url: '/v1/stack/shop' }, r.json.token)).status, 403);
  assert.equal((await call({ method: 'GET', url: '/v1/stack/blog' }, made.token)).status, 401);
});

test('push policy: a deployer claims no wildcard and no name another stack\'s wildcard serves, unless its --domains allow', async () => {
  await client.put(domainKey('*.blog.example.com')).value(JSON.stringify({ stack: 'blog', node: 'web', kind: 'container' }));
  const scoped = (await createToken(client, 'deploy-wild', 'test', { role: 'deployer', stacks: ['shop'], domains: ['*.shop.example.com', 'x.blog.example.com'] })).token;
  const cases: Array<[string, string[], Kind | 'S', boolean, RegExp?]> = [
    ['plain name', ['shop.example.com'], 'D', true],
    ['wildcard', ['*.shop.example.com'], 'D', false, /domain \*\.shop\.example\.com .*wildcard/],
    ['wildcard, admin', ['*.shop.example.com'], 'A', true],
    ['wildcard in --domains', ['*.shop.example.com'], 'S', true],
    ['name inside a --domains wildcard', ['api.shop.example.com'], 'S', true],
    ["name under blog's wildcard", ['x.blog.example.com'], 'D', false, /stack blog serves it through \*\.blog\.example\.com/],
    ["name under blog's wildcard, in --domains", ['x.blog.example.com'], 'S', true],
    ["another name under blog's wildcard", ['y.blog.example.com'], 'S', false, /blog/],
  ];
  for (const [what, domains, kind, ok, message] of cases) {
    const r = await call(await pushOf('shop', domains), kind === 'S' ? scoped : tokens[kind]);
    if (ok) {
      assert.equal(r.status, 200, `${what}: ${r.body}`);
      assert.doesNotMatch(r.body, /VIKING_E_FORBIDDEN/, what);
    } else {
      assert.equal(r.status, 403, `${what}: ${r.body}`);
      assert.equal(r.json.code, 'VIKING_E_FORBIDDEN', what);
      assert.match(r.json.message, message!, what);
    }
  }
});

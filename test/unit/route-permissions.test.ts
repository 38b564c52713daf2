/**
 * The permission table against the routes fastify really registers, and the
 * pure parts of roles: stack patterns, what each role holds, domain scopes,
 * durations and the audit key's order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import Docker from 'dockerode';
import { createApi } from '../../lib/api/server.js';
import { connectEtcd } from '../../lib/store/client.js';
import { permissionTable, ruleFor } from '../../lib/auth/route-permissions.js';
import { Access, PERMISSIONS, ROLE_PERMISSIONS, checkStackPatterns, parseDuration, stackPatternMatches } from '../../lib/auth/roles.js';
import { domainInScope } from '../../lib/auth/push-policy.js';
import { grantFields, isExpired } from '../../lib/auth/tokens.js';
import { VikingError } from '../../lib/errors.js';
import { auditKey, auditKeyTime } from '../../lib/store/keys.js';

/** The routes of a real API (never started: the etcd client connects lazily and is never used). */
async function registeredRoutes(): Promise<Array<{ method: string; url: string }>> {
  const client = connectEtcd('http://127.0.0.1:9');
  const app = createApi({ client, docker: new Docker(), dataDir: '/nonexistent', hostName: 'perm-table', maxUploadBytes: 1, routerPort: 1 });
  await app.ready();
  const routes = [...app.vikingRoutes];
  await app.close();
  client.close();
  return routes;
}

test('every route the API registers has an entry in the permission table, and every entry a route', async () => {
  const routes = await registeredRoutes();
  assert.ok(routes.length >= 30, `only ${routes.length} routes found`);
  const missing = routes.filter((r) => ruleFor(r.method, r.url) === undefined).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, [], `routes without an entry in lib/auth/route-permissions.ts: ${missing.join(', ')}`);
  const registered = new Set(routes.map((r) => `${r.method} ${r.url}`));
  const stale = [...permissionTable().keys()].filter((k) => !registered.has(k));
  assert.deepEqual(stale, [], 'entries for routes that do not exist');
});

test('only GET routes are public, and every mutating route needs a permission readers lack', async () => {
  for (const [key, rule] of permissionTable()) {
    const [method] = key.split(' ');
    if ('public' in rule) assert.equal(method, 'GET', key);
    if (method !== 'GET' && 'need' in rule) assert.ok(!ROLE_PERMISSIONS.reader.has(rule.need), `${key} is a change a reader could make`);
  }
});

test('stack patterns: a table of matches', () => {
  const cases: Array<[string, string, boolean]> = [
    ['shop', 'shop', true], ['shop', 'shop2', false], ['shop', 'sho', false],
    ['team-*', 'team-a', true], ['team-*', 'team-', true], ['team-*', 'team', false], ['team-*', 'xteam-a', false],
    ['*', 'anything', true], ['*-prod', 'web-prod', true], ['*-prod', 'web-prod2', false],
    ['a*b*c', 'abc', true], ['a*b*c', 'axxbyyc', true], ['a*b*c', 'acb', false], ['a*a', 'a', false], ['a*a', 'aa', true],
    ['__proto__', 'constructor', false],
  ];
  for (const [p, name, want] of cases) assert.equal(stackPatternMatches(p, name), want, `${p} ~ ${name}`);
});

test('stack patterns agree with a reference glob on random names (property)', () => {
  const ch = fc.constantFrom('a', 'b', '-', '*');
  fc.assert(
    fc.property(fc.string({ unit: ch, minLength: 1, maxLength: 8 }), fc.string({ unit: fc.constantFrom('a', 'b', '-'), maxLength: 10 }), (pattern, name) => {
      const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[-]/g, '\\-')).join('.*')}$`);
      assert.equal(stackPatternMatches(pattern, name), re.test(name), `${pattern} ~ ${name}`);
    }),
    { numRuns: 3000 },
  );
});

test('bad stack patterns are refused', () => {
  for (const bad of [['Shop'], ['a/b'], ['a b'], [''], ['-x'], ['x'.repeat(64)], ['../*']]) {
    assert.throws(() => checkStackPatterns(bad), (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_BAD_REQUEST', JSON.stringify(bad));
  }
  assert.deepEqual(checkStackPatterns(['b', 'a', 'b', 'team-*']), ['a', 'b', 'team-*']);
});

test('roles: what each holds, scopes, and old records as admin', () => {
  const old = new Access({});
  assert.equal(old.role, 'admin');
  for (const p of PERMISSIONS) assert.equal(old.refusal(p, 'any'), undefined, p);

  const reader = new Access({ role: 'reader' });
  assert.equal(reader.refusal('cluster:read'), undefined);
  assert.equal(reader.refusal('stack:read', 'x'), undefined);
  assert.match(reader.refusal('stack:push', 'x')!, /reader token lacks the permission stack:push/);
  assert.match(reader.refusal('tokens:admin')!, /lacks/);

  const scoped = new Access({ role: 'reader', stacks: ['team-*'] });
  assert.equal(scoped.refusal('stack:read', 'team-a'), undefined);
  assert.match(scoped.refusal('stack:read', 'shop')!, /does not cover stack shop/);
  assert.match(scoped.refusal('cluster:read')!, /whole cluster/);

  const deployer = new Access({ role: 'deployer', stacks: ['shop'] });
  for (const p of ['stack:push', 'stack:scale', 'stack:env', 'stack:rollback', 'stack:rm', 'stack:logs', 'stack:read'] as const) {
    assert.equal(deployer.refusal(p, 'shop'), undefined, p);
    assert.ok(deployer.refusal(p, 'blog'), p);
  }
  for (const p of ['hosts:write', 'settings:write', 'tokens:admin', 'cluster:read'] as const) assert.ok(deployer.refusal(p), p);
  const everywhere = new Access({ role: 'deployer', stacks: ['*'] });
  assert.equal(everywhere.allStacks, true);
  assert.ok(everywhere.refusal('cluster:read'), 'a deployer never reads the cluster, even with every stack');
  // A scope that is not a list holds nothing, never everything.
  const broken = new Access({ role: 'reader', stacks: 'shop' as unknown as string[] });
  assert.equal(broken.allStacks, false);
  assert.ok(broken.refusal('stack:read', 'shop'));
  // A role viking does not know (a newer version's) is the least: a reader.
  assert.equal(new Access({ role: 'superuser' }).role, 'reader');
});

test('grants: a deployer needs stacks, an admin takes none, durations and domains are checked', () => {
  const bad = (g: Parameters<typeof grantFields>[0]): void =>
    assert.throws(() => grantFields(g), (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_BAD_REQUEST', JSON.stringify(g));
  bad({ role: 'deployer' });
  bad({ role: 'admin', stacks: ['a'] });
  bad({ role: 'reader', domains: ['a.com'] });
  bad({ role: 'deployer', stacks: ['a'], domains: ['*.com'] });
  bad({ role: 'reader', expires: '30 days' });
  bad({ role: 'reader', expires: '0d' });
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.deepEqual(grantFields({ role: 'deployer', stacks: ['b', 'a'], domains: ['*.Team.example.com'], expires: '30d' }, now), {
    role: 'deployer', stacks: ['a', 'b'], domains: ['*.team.example.com'], expiresAt: '2026-01-31T00:00:00.000Z',
  });
  assert.deepEqual(grantFields({}), { role: 'admin' });
  assert.equal(isExpired({ expiresAt: '2026-01-01T00:00:00Z' }, now), true);
  assert.equal(isExpired({ expiresAt: '2026-01-01T00:00:01Z' }, now), false);
  assert.equal(isExpired({ expiresAt: 'garbage' }, now), true);
  assert.equal(isExpired({}, now), false);
  assert.equal(parseDuration('90m', 'x'), 5_400_000);
  assert.equal(parseDuration('2w', 'x'), 1_209_600_000);
});

test('domain scopes: names and *.name patterns', () => {
  const p = ['shop.example.com', '*.team.example.com'];
  assert.equal(domainInScope(p, 'shop.example.com'), true);
  assert.equal(domainInScope(p, 'www.shop.example.com'), false);
  assert.equal(domainInScope(p, '*.team.example.com'), true);
  assert.equal(domainInScope(p, 'a.b.team.example.com'), true);
  assert.equal(domainInScope(p, 'team.example.com'), false);
  assert.equal(domainInScope(p, 'evilteam.example.com'), false);
  assert.equal(domainInScope(undefined, 'shop.example.com'), false);
});

test('audit keys sort by time as strings, and parse back (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 2 ** 45 }), fc.nat(999_999), fc.nat(999_999), (a, b, sa, sb) => {
      const ka = auditKey(a, sa, '0123456789abcdef');
      const kb = auditKey(b, sb, 'fedcba9876543210');
      if (a < b) assert.ok(ka < kb);
      if (a === b && sa < sb) assert.ok(ka < kb);
      assert.equal(auditKeyTime(ka), a);
    }),
  );
  assert.equal(auditKeyTime('/audit/../tokens/x'), undefined);
});

/**
 * Names users choose that are also names of Object.prototype's properties
 * (`constructor`, `__proto__`, `toString`, `hasOwnProperty`, `valueOf`):
 * each either works end to end or is refused by the parser with its line
 * and column. And the route records check: one bad record of one stack is
 * left out with a reason, every other stack routes as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VikingfileError, parseVikingfile } from '../../lib/vikingfile/index.js';
import { checkRouteRecords, type RawEntry } from '../../lib/router/route-records.js';
import { RouteTable } from '../../lib/router/route-table.js';
import { wantedSites } from '../../lib/router/snapshot.js';
import { contentType } from '../../lib/router/mime.js';
import { resolveImage, jobsFromTemplate, effectiveScale } from '../../lib/rollout/jobs.js';
import { dict, hasKey, own } from '../../lib/store/dict.js';
import { PREFIX } from '../../lib/store/keys.js';
import { NOT_JSON, type DomainRecord, type PortEndpoint, type StackRecord } from '../../lib/store/records.js';

const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupSetter__'];
/** The ones that are also valid stack/node/image names (lowercase DNS labels). */
const PROTO_DNS_NAMES = PROTO_NAMES.filter((n) => /^[a-z0-9-]+$/.test(n));

function problems(text: string): Array<[number, number, string]> {
  try {
    parseVikingfile(text);
  } catch (e) {
    assert.ok(e instanceof VikingfileError, String(e));
    return e.problems.map((p) => [p.line, p.column, p.message]);
  }
  return assert.fail('expected the Vikingfile to be refused');
}

test('a stack, image and node named constructor parse and keep their own values', () => {
  const vf = parseVikingfile(
    [
      'viking:',
      '  name: constructor',
      'build:',
      '  constructor: |',
      '    FROM viking/node',
      'deploy:',
      '  constructor:',
      '    image: viking:constructor/constructor',
      '    expose: [80]',
      '    domains: [constructor.test]',
      '    env: {constructor: a, toString: b, hasOwnProperty: c, valueOf: d}',
      '  site:',
      '    type: website',
      '    document_root: ./www',
      '    domains: [site.test]',
    ].join('\n'),
  );
  assert.equal(vf.stack, 'constructor');
  assert.deepEqual(vf.images.map((i) => i.name), ['constructor']);
  const node = vf.nodes.find((n) => n.name === 'constructor');
  assert.ok(node && node.kind === 'container');
  assert.deepEqual(Object.entries(node.env), [['constructor', 'a'], ['toString', 'b'], ['hasOwnProperty', 'c'], ['valueOf', 'd']]);
  assert.equal(own(node.env, 'constructor'), 'a');
  assert.equal(own(node.env, '__proto__'), undefined);
});

test('env __proto__ is refused at its line and column, in map and list form; other prototype names are env names', () => {
  assert.deepEqual(problems(['viking:', '  name: x', 'deploy:', '  web:', '    image: viking/node', '    env:', '      __proto__: x'].join('\n')).map((p) => p.slice(0, 2)), [[7, 7]]);
  const listForm = problems(['viking:', '  name: x', 'deploy:', '  web:', '    image: viking/node', '    env: [A=1, "__proto__=x"]'].join('\n'));
  assert.deepEqual(listForm.map((p) => p.slice(0, 2)), [[6, 16]]);
  assert.match(listForm[0]![2], /'__proto__' is reserved/);
  // Merged in through an alias, reported where it is written.
  const merged = problems(['viking:', '  name: x', 'deploy:', '  web:', '    image: viking/node', '    env: &e {__proto__: 1}', '  w2:', '    image: viking/node', '    env: {<<: *e}'].join('\n'));
  assert.equal(merged[0]![0], 6);
});

test('prototype names that are not DNS labels are refused as stack, node and image names, at their line and column', () => {
  for (const name of PROTO_NAMES.filter((n) => !PROTO_DNS_NAMES.includes(n))) {
    const q = JSON.stringify(name);
    assert.deepEqual(problems(['viking:', `  name: ${q}`, 'deploy:', '  web:', '    image: viking/node'].join('\n')).map((p) => p.slice(0, 2)), [[2, 9]], name);
    assert.deepEqual(problems(['viking:', '  name: x', 'deploy:', `  ${q}:`, '    image: viking/node'].join('\n')).map((p) => p.slice(0, 2)), [[4, 3]], name);
    const img = problems(['viking:', '  name: x', 'build:', `  ${q}: FROM viking/node`, 'deploy:', '  web:', '    image: viking/node'].join('\n'));
    assert.equal(img[0]![0], 4, name);
  }
});

test('property: any env table with prototype names comes out with exactly its own entries', () => {
  const key = fc.oneof(fc.constantFrom(...PROTO_NAMES.filter((n) => n !== '__proto__')), fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/));
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(key, fc.stringMatching(/^[a-z0-9]{0,6}$/)), { selector: (t) => t[0], minLength: 1, maxLength: 8 }), (pairs) => {
      const lines = pairs.map(([k, v]) => `      ${k}: "${v}"`);
      const vf = parseVikingfile(['viking:', '  name: x', 'deploy:', '  web:', '    image: viking/node', '    env:', ...lines].join('\n'));
      const env = vf.nodes[0]!.kind === 'container' ? vf.nodes[0]!.env : {};
      assert.deepEqual(Object.entries(env).sort(), [...pairs].sort());
      for (const [k, v] of pairs) assert.equal(own(env, k), v);
    }),
    { numRuns: 300 },
  );
});

test('dict, own and hasKey see own keys only', () => {
  const plain: Record<string, string> = JSON.parse('{"a":"1"}');
  for (const n of PROTO_NAMES) {
    assert.equal(own(plain, n), undefined, n);
    assert.equal(hasKey(plain, n), false, n);
  }
  const d = dict<number>([['__proto__', 1], ['constructor', 2]]);
  assert.equal(own(d, '__proto__'), 1);
  assert.equal(own(d, 'constructor'), 2);
  assert.deepEqual(JSON.parse(JSON.stringify(d)), JSON.parse('{"__proto__":1,"constructor":2}'));
});

test('a node named constructor is not mistaken for a website, and the image it names must really be built', () => {
  const websites: Record<string, string> = JSON.parse('{}');
  const stack: StackRecord = { name: 's', current: 'v1', lastRelease: 1, releases: [{ tag: 'v1', number: 1, at: '', by: '', images: {}, source: '/src', builtOn: 'h' }], domains: { constructor: ['c.test'] }, websites };
  // Before the fix `stack.websites[node]` found Object and the feed threw on path.join.
  assert.deepEqual(wantedSites(new Map([['c.test', { stack: 's', node: 'constructor', kind: 'website' } as DomainRecord]]), new Map([['s', stack]])), []);
  assert.throws(() => resolveImage({ kind: 'stack', stack: 's', image: 'constructor' }, 's', {}, new Map()), /not in the build/);
  assert.equal(contentType('/x/file.constructor'), 'application/octet-stream');
  assert.equal(contentType('/x/file.__proto__'), 'application/octet-stream');
  const t = { node: 'constructor', image: 'i', expose: [80], volumes: [], env: JSON.parse('{"toString":"1"}'), service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2 };
  assert.equal(effectiveScale(t, own(JSON.parse('{}') as Record<string, { replicas: number; declared: number }>, 'constructor')), 2);
  assert.deepEqual(jobsFromTemplate(t, 's', 'v1', 1, JSON.parse('{"valueOf":"2"}'))[0]!.env, { toString: '1', valueOf: '2' });
});

// ---- route records ----

const ep = (stack: string, node: string, tag: string, instance: number): PortEndpoint => ({
  stack, node, tag, instance, host: 'h1', ip: '127.0.0.2', port: 80, hostPort: 30000 + instance, proto: 'tcp', container: `c${instance}`, primary: true,
});
const stackRec = (name: string, current: string | null, websites: Record<string, string> = {}): StackRecord => ({
  name, current, lastRelease: 1, releases: current ? [{ tag: current, number: 1, at: '', by: '', images: {}, source: '/src', builtOn: 'h' }] : [], domains: {}, websites,
});
/** Records as etcd hands them over: JSON text parsed again. */
const raw = (key: string, value: unknown): RawEntry => ({ key, value: JSON.parse(JSON.stringify(value)) as unknown });

test('the record an older viking wrote for a container node named constructor is left out, with a reason; the other stack routes', () => {
  const checked = checkRouteRecords(
    [raw('/domains/evil.test', { stack: 'evil', node: 'constructor', kind: 'website' }), raw('/domains/good.test', { stack: 'good', node: 'web', kind: 'container' })],
    [raw('/stack/evil', stackRec('evil', 'v1')), raw('/stack/good', stackRec('good', 'v2'))],
    [raw('/ports/good/web/a', ep('good', 'web', 'v2', 1)), raw('/ports/evil/constructor/a', ep('evil', 'constructor', 'v1', 1))],
    { domains: PREFIX.domains },
  );
  assert.deepEqual(checked.problems.map((p) => [p.stack, p.node, p.key]), [['evil', 'constructor', '/domains/evil.test']]);
  assert.match(checked.problems[0]!.reason, /does not declare as a website/);
  const table = RouteTable.build({
    revision: '9',
    domains: [...checked.domains],
    stacks: [...checked.stacks.values()].map((s) => ({ name: s.name, current: s.current })),
    endpoints: checked.endpoints,
    sites: [],
  });
  const r = table.lookup('good.test');
  assert.ok(r && r.kind === 'container' && r.endpoints.length === 1);
  assert.equal(table.lookup('evil.test'), undefined);
});

test('a record that is not JSON is reported with the stack and node its key names', () => {
  const checked = checkRouteRecords(
    [{ key: '/domains/x.test', value: NOT_JSON }],
    [{ key: '/stack/shop', value: NOT_JSON }],
    [{ key: '/ports/shop/web/80/tcp/127.0.0.1/1/v1.1', value: NOT_JSON }],
    { domains: PREFIX.domains },
  );
  assert.deepEqual(checked.problems.map((p) => [p.key, p.stack, p.node, p.reason]), [
    ['/domains/x.test', null, null, 'the record is not JSON'],
    ['/stack/shop', 'shop', null, 'the record is not JSON'],
    ['/ports/shop/web/80/tcp/127.0.0.1/1/v1.1', 'shop', 'web', 'the record is not JSON'],
  ]);
  assert.equal(checked.domains.size + checked.stacks.size + checked.endpoints.length, 0);
});

/** Ways a record can be broken: each must be left out, never throw. */
const BREAKAGE = [
  (v: Record<string, unknown>) => ({ ...v, stack: 42 }),
  (v: Record<string, unknown>) => ({ ...v, node: '__proto__' }),
  (v: Record<string, unknown>) => ({ ...v, kind: 'constructor' }),
  () => 'a string',
  () => null,
  () => [1, 2],
  (v: Record<string, unknown>) => ({ ...v, ip: { toString: 1 }, hostPort: 'x' }),
  (v: Record<string, unknown>) => ({ ...v, releases: 'nope', websites: 'x' }),
  (v: Record<string, unknown>) => ({ ...v, current: 7 }),
];

test('property: broken records of some stacks never stop the routes of the others', () => {
  const stackName = fc.oneof(fc.constantFrom(...PROTO_DNS_NAMES, 'web', 'api'), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/));
  const stackArb = fc.record({
    name: stackName,
    node: fc.oneof(fc.constantFrom(...PROTO_DNS_NAMES), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/)),
    website: fc.boolean(),
    broken: fc.option(fc.record({ what: fc.constantFrom('domain', 'stack', 'port'), how: fc.nat(BREAKAGE.length - 1) }), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.uniqueArray(stackArb, { selector: (s) => s.name, minLength: 1, maxLength: 6 }), (stacks) => {
      const domains: RawEntry[] = [];
      const records: RawEntry[] = [];
      const ports: RawEntry[] = [];
      for (const s of stacks) {
        const dom = { stack: s.name, node: s.node, kind: s.website ? 'website' : 'container' };
        const rec = stackRec(s.name, 'v1', s.website ? { [s.node]: 'www' } : {}) as unknown as Record<string, unknown>;
        const port = ep(s.name, s.node, 'v1', 1) as unknown as Record<string, unknown>;
        const breakIt = (what: string, v: Record<string, unknown>): unknown => (s.broken?.what === what ? BREAKAGE[s.broken.how]!(v) : v);
        domains.push(raw(`/domains/${s.name}.test`, breakIt('domain', dom)));
        records.push(raw(`/stack/${s.name}`, breakIt('stack', rec)));
        ports.push(raw(`/ports/${s.name}/${s.node}/80/tcp/127.0.0.2/1/v1.1`, breakIt('port', port)));
      }
      const checked = checkRouteRecords(domains, records, ports, { domains: PREFIX.domains });
      const table = RouteTable.build({
        revision: '1',
        domains: [...checked.domains],
        stacks: [...checked.stacks.values()].map((s) => ({ name: s.name, current: s.current })),
        endpoints: checked.endpoints,
        sites: stacks.filter((s) => s.website).map((s) => ({ stack: s.name, node: s.node, tag: 'v1', root: `/srv/${s.name}` })),
      });
      for (const s of stacks) {
        const route = table.lookup(`${s.name}.test`);
        if (s.broken) {
          // A broken record is reported (unless the breakage happened to leave it valid) and only its own stack loses.
          if (!route || (route.kind === 'container' && route.endpoints.length === 0)) {
            assert.ok(checked.problems.some((p) => p.key.includes(s.name)), `no problem reported for ${s.name}`);
          }
          continue;
        }
        assert.ok(route, `${s.name} lost its route`);
        assert.equal(route.stack, s.name);
        assert.equal(route.node, s.node);
        if (route.kind === 'container') assert.equal(route.endpoints.length, 1, s.name);
        else assert.equal(route.site?.root, `/srv/${s.name}`);
      }
    }),
    { numRuns: 500 },
  );
});

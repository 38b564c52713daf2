/**
 * The nginx data plane's traffic, read back from its request log
 * (lib/router/nginx-traffic.ts): request lines as nginx writes them
 * (log_format escape=json, LOG_FIELDS), counted into the same per-replica
 * counters and access log as the Node engine's; and the follower that tails
 * the file, keeps a cut line for later and rotates the file without losing
 * a line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LogFollower, NginxTraffic, fieldsOf, parseRequestLine, type NginxRequest } from '../../lib/router/nginx-traffic.js';
import { LOG_FIELDS, renderNginxConfig, type NginxPlan } from '../../lib/router/nginx-config.js';
import { RouteTable } from '../../lib/router/route-table.js';
import { Field, TrafficCounters } from '../../lib/router/traffic-counters.js';
import { AccessLogWriter, type AccessBatch, type AccessLine } from '../../lib/router/access-log.js';
import type { PortEndpoint } from '../../lib/store/records.js';

/** A request line as nginx writes it: the LOG_FIELDS in order, JSON-escaped. */
function line(o: { route?: string; addr?: string; status?: string; header?: string; time?: string; len?: string; sent?: string; method?: string; host?: string; uri?: string }): string {
  return JSON.stringify([o.route ?? '1.0', o.addr ?? '10.0.0.1:3001', o.status ?? '200', o.header ?? '0.002', o.time ?? '0.003', o.len ?? '120', o.sent ?? '456', o.method ?? 'GET', o.host ?? 'a.test', o.uri ?? '/']);
}

describe('parseRequestLine', () => {
  test('a line has exactly the fields of LOG_FIELDS', () => assert.equal(JSON.parse(line({})).length, LOG_FIELDS.length));

  const cases: Array<[string, string, Partial<NginxRequest> | null]> = [
    ['one try, answered', line({}), { route: '1.0', tries: ['10.0.0.1:3001'], answeredTries: [true], status: 200, own: false, ms: 3, bytesIn: 120, bytesOut: 456, method: 'GET', host: 'a.test', target: '/' }],
    ['a retry after a refused connection', line({ addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, 0.004' }), { tries: ['10.0.0.1:3001', '10.0.0.2:3002'], answeredTries: [false, true], own: false }],
    ['three tries, the last answered', line({ addr: '10.0.0.1:3001, 10.0.0.2:3002, [fd00::1]:3003', header: '-, -, 0.010', status: '503' }), { tries: ['10.0.0.1:3001', '10.0.0.2:3002', '[fd00::1]:3003'], answeredTries: [false, false, true], own: false, status: 503 }],
    ['every try failed: nginx answered itself', line({ addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, -', status: '502' }), { tries: ['10.0.0.1:3001', '10.0.0.2:3002'], answeredTries: [false, false], own: true, status: 502 }],
    ['a failed connect on a single try', line({ addr: '10.0.0.1:3001', header: '-', status: '502' }), { tries: ['10.0.0.1:3001'], answeredTries: [false], own: true }],
    ['an internal redirect: the last group counts', line({ addr: '10.0.0.1:3001 : 10.0.0.2:3002', header: '0.001 : 0.002' }), { tries: ['10.0.0.2:3002'], answeredTries: [true], own: false }],
    ['an internal redirect after retries', line({ addr: '10.0.0.1:3001, 10.0.0.3:3001 : 10.0.0.2:3002, 10.0.0.4:3004', header: '-, 0.001 : -, 0.002' }), { tries: ['10.0.0.2:3002', '10.0.0.4:3004'], answeredTries: [false, true], own: false }],
    ['an internal redirect to a failed try', line({ addr: '10.0.0.1:3001 : 10.0.0.2:3002', header: '0.001 : -', status: '502' }), { tries: ['10.0.0.2:3002'], answeredTries: [false], own: true }],
    ['no upstream at all (client went away first)', line({ addr: '', header: '', status: '499' }), { tries: [], answeredTries: [], own: true, status: 499 }],
    ['no upstream, written as -', line({ addr: '-', header: '-', status: '400' }), { tries: [], own: true }],
    ['no live server: the upstream group named', line({ addr: 'vk_u0', header: '-', status: '502' }), { tries: ['vk_u0'], answeredTries: [false], own: true }],
    ['escaped bytes in the path and Host', JSON.stringify(['1.0', '10.0.0.1:3001', '200', '0.001', '0.001', '1', '2', 'GET', 'a.test"', '/a"b\\c\u0000\u001f\n\r\t/ä€🙂?q="x"']), { host: 'a.test"', target: '/a"b\\c\u0000\u001f\n\r\t/ä€🙂?q="x"' }],
    ['nginx\'s \\xHH escapes read back as JSON', String.raw`["1.0","10.0.0.1:3001","200","0.001","0.001","1","2","GET","a.test","/\"\\\u0001x"]`, { target: '/"\\\u0001x' }],
    ['non-numeric sizes and times count as 0', line({ time: '-', len: '', sent: 'x' }), { ms: 0, bytesIn: 0, bytesOut: 0 }],
    ['too few fields', JSON.stringify(['1.0', '10.0.0.1:3001', '200', '0.001', '0.001', '1', '2', 'GET', 'a.test']), null],
    ['too many fields', JSON.stringify(['1.0', '10.0.0.1:3001', '200', '0.001', '0.001', '1', '2', 'GET', 'a.test', '/', 'extra']), null],
    ['a number where a string belongs', JSON.stringify(['1.0', '10.0.0.1:3001', 200, '0.001', '0.001', '1', '2', 'GET', 'a.test', '/']), null],
    ['a null field', JSON.stringify(['1.0', null, '200', '0.001', '0.001', '1', '2', 'GET', 'a.test', '/']), null],
    ['no route id', line({ route: '' }), null],
    ['a status that is no number', line({ status: 'abc' }), null],
    ['a fractional status', line({ status: '200.5' }), null],
    ['an object', JSON.stringify({ route: '1.0' }), null],
    ['not JSON', '127.0.0.1 - - [01/Dec/2026:14:00:00 +0000] "GET / HTTP/1.1" 200 612', null],
    ['a cut line', line({}).slice(0, 40), null],
    ['empty', '', null],
  ];
  for (const [name, text, want] of cases) {
    test(name, () => {
      const r = parseRequestLine(text);
      if (want === null) return assert.equal(r, null);
      assert.ok(r, 'parsed');
      for (const [k, v] of Object.entries(want)) assert.deepEqual(r[k as keyof NginxRequest], v, k);
      assert.equal(r.answeredTries.length, r.tries.length);
    });
  }
});

// --- NginxTraffic ------------------------------------------------------------------------------

function ep(node: string, instance: number, ip: string, hostPort: number): PortEndpoint {
  return { stack: 's', node, tag: 't1', instance, host: `h${instance}`, ip, port: 80, hostPort, proto: 'tcp', container: `c-${node}-${instance}`, primary: true };
}

function plan(generation: number): NginxPlan {
  return {
    prefix: '/tmp/vk', listen: { host: '0.0.0.0', port: 80, httpsPort: 0 }, workers: 1, fallbackPort: 9000, fallbackTlsPort: 9001, balance: 'round-robin',
    timeouts: { headMs: 15_000, idleMs: 65_000 }, maxConnections: 64, trustedProxies: [], tlsResumption: true, ticketKeyFile: null, logFile: '/tmp/vk/requests.log', generation,
  };
}

interface Setup {
  counters: TrafficCounters;
  traffic: NginxTraffic;
  table: RouteTable;
  batches: AccessBatch[];
  /** Route id of a domain in the given generation. */
  id: (domain: string, generation?: number) => string;
  /** Count fields (C1xx..Retries) of a (node, domain, replica) that are not 0. */
  counts: (node: string, domain: string, replica: number) => Partial<Record<keyof typeof F, number>>;
  value: (node: string, domain: string, replica: number, field: Field) => number;
}

const F = { C1xx: Field.C1xx, C2xx: Field.C2xx, C3xx: Field.C3xx, C4xx: Field.C4xx, C5xx: Field.C5xx, Own502: Field.Own502, Own503: Field.Own503, Own504: Field.Own504, ConnectErrors: Field.ConnectErrors, Retries: Field.Retries } as const;

function setup(generations = [1]): Setup {
  const counters = new TrafficCounters();
  const batches: AccessBatch[] = [];
  const access = new AccessLogWriter((b) => {
    batches.push(b);
    access.taken();
  });
  const table = RouteTable.build(
    {
      revision: '3',
      domains: [
        ['a.test', { stack: 's', node: 'web', kind: 'container' }],
        ['*.w.test', { stack: 's', node: 'web', kind: 'container' }],
        ['api.test', { stack: 's', node: 'api', kind: 'container' }],
      ],
      stacks: [{ name: 's', current: null, accessLog: ['web'] }],
      endpoints: [ep('web', 1, '10.0.0.1', 3001), ep('web', 2, '10.0.0.2', 3002), ep('web', 3, 'fd00::1', 3003), ep('api', 1, '10.0.1.1', 4001)],
      sites: [],
    },
    counters,
    access,
  );
  const traffic = new NginxTraffic(counters);
  const ids = new Map<number, Map<string, string>>();
  for (const g of generations) {
    const r = renderNginxConfig(plan(g), table, [], 0);
    traffic.register(g, r.routes);
    ids.set(g, new Map([...r.routes].map(([id, route]) => [route.domain, id])));
  }
  const slotOf = (node: string, domain: string, replica: number): number => {
    const s = counters.dump().slots.findIndex((l) => l.node === node && l.domain === domain && l.replica === replica);
    assert.ok(s >= 0, `a slot for ${node}/${domain}/${replica}`);
    return s;
  };
  const value = (node: string, domain: string, replica: number, field: Field): number => counters.dump().slots[slotOf(node, domain, replica)]!.values[field]!;
  return {
    counters,
    traffic,
    table,
    batches,
    id: (domain, g = generations[generations.length - 1]!) => ids.get(g)!.get(domain)!,
    counts: (node, domain, replica) => Object.fromEntries(Object.entries(F).map(([k, f]) => [k, value(node, domain, replica, f)]).filter(([, v]) => v !== 0)),
    value,
  };
}

describe('fieldsOf: the split fast path reads what JSON.parse reads', () => {
  /** The reference: JSON.parse alone. */
  const reference = (line: string): string[] | null => {
    try {
      const f: unknown = JSON.parse(line);
      return Array.isArray(f) && f.every((x) => typeof x === 'string') ? (f as string[]) : null;
    } catch {
      return null;
    }
  };
  // Strings full of what matters here: quotes, backslashes, the separator itself, control bytes, non-ASCII.
  const tricky = fc.oneof(fc.string({ unit: fc.constantFrom('"', '\\', ',', '","', '\u0000', '\n', '\u001f', 'a', ' ', 'ä', '🙂', '\ud800', '[', ']') }), fc.string({ unit: 'binary' }));

  test('any array of strings nginx could write comes back field for field', () => {
    fc.assert(fc.property(fc.array(tricky, { minLength: 1, maxLength: 12 }), (arr) => assert.deepEqual(fieldsOf(JSON.stringify(arr)), arr)), { numRuns: 3000 });
  });

  test('any line at all: the same fields as JSON.parse, or null where it fails', () => {
    const lines = fc.oneof(
      fc.string({ unit: fc.constantFrom('["', '"]', '","', '"', '\\', ',', 'a', '\u0001', ' ', '[', ']', '1') }),
      fc.array(tricky, { maxLength: 4 }).map((a) => JSON.stringify(a).replace(/\\(.)/g, '$1')),
      // Fields written raw, unescaped: quotes, backslashes and control bytes where nginx would never leave them.
      fc.array(tricky, { minLength: 1, maxLength: 4 }).map((a) => `["${a.join('","')}"]`),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(fc.property(lines, (line) => assert.deepEqual(fieldsOf(line), reference(line))), { numRuns: 5000 });
  });

  test('the fast path is taken for a plain line (and a line with an escape still parses)', () => {
    const plain = line({});
    assert.deepEqual(fieldsOf(plain), JSON.parse(plain));
    const escaped = line({ uri: '/a"b' });
    assert.ok(escaped.includes('\\'));
    assert.equal(fieldsOf(escaped)?.[9], '/a"b');
  });
});

describe('NginxTraffic: counting', () => {
  type Want = Record<number, Partial<Record<keyof typeof F, number>>>;
  const cases: Array<[string, Parameters<typeof line>[0], Want]> = [
    ['200 from replica 1', { addr: '10.0.0.1:3001' }, { 1: { C2xx: 1 } }],
    ['404 from replica 2', { addr: '10.0.0.2:3002', status: '404' }, { 2: { C4xx: 1 } }],
    ['301 from the IPv6 replica', { addr: '[fd00::1]:3003', status: '301' }, { 3: { C3xx: 1 } }],
    ['the app\'s own 502 is a 5xx of the replica', { addr: '10.0.0.1:3001', status: '502', header: '0.001' }, { 1: { C5xx: 1 } }],
    ['a refused connection, then an answer: a connect error on 1, a retry and the 200 on 2', { addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, 0.003' }, { 1: { ConnectErrors: 1 }, 2: { Retries: 1, C2xx: 1 } }],
    ['two refused, the third answers 404', { addr: '10.0.0.2:3002, 10.0.0.1:3001, [fd00::1]:3003', header: '-, -, 0.003', status: '404' }, { 1: { ConnectErrors: 1 }, 2: { ConnectErrors: 1 }, 3: { Retries: 2, C4xx: 1 } }],
    ['nginx\'s own 502 after two refused: on the replica tried last, no retry', { addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, -', status: '502' }, { 1: { ConnectErrors: 1 }, 2: { ConnectErrors: 1, Own502: 1 } }],
    ['nginx\'s own 502 on a single try', { addr: '10.0.0.2:3002', header: '-', status: '502' }, { 2: { ConnectErrors: 1, Own502: 1 } }],
    ['an internal redirect counts the last group only', { addr: '10.0.0.1:3001 : 10.0.0.2:3002', header: '0.001 : 0.002' }, { 2: { C2xx: 1 } }],
    ['no live server (the group named): nginx\'s 502 on the route', { addr: 'vk_u0', header: '-', status: '502' }, { 0: { ConnectErrors: 1, Own502: 1 } }],
    ['an address that is no replica: on the route', { addr: '10.9.9.9:1' }, { 0: { C2xx: 1 } }],
    ['no upstream (client went away): on the route', { addr: '', header: '', status: '499' }, { 0: { C4xx: 1 } }],
  ];
  for (const [name, l, want] of cases) {
    test(name, () => {
      const s = setup();
      s.traffic.line(line({ ...l, route: s.id('a.test') }));
      assert.equal(s.traffic.counted, 1);
      assert.equal(s.traffic.unknown, 0);
      for (const replica of [0, 1, 2, 3]) assert.deepEqual(s.counts('web', 'a.test', replica), want[replica] ?? {}, `replica ${replica}`);
      // Nothing lands on another domain's slots.
      for (const replica of [0, 1, 2, 3]) assert.deepEqual(s.counts('web', '*.w.test', replica), {});
    });
  }

  test('bytes and latency land on the answering replica', () => {
    const s = setup();
    s.traffic.line(line({ route: s.id('a.test'), addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, 0.003', time: '0.250', len: '321', sent: '6543' }));
    assert.equal(s.value('web', 'a.test', 2, Field.BytesIn), 321);
    assert.equal(s.value('web', 'a.test', 2, Field.BytesOut), 6543);
    assert.ok(Math.abs(s.value('web', 'a.test', 2, Field.LatencySum) - 250) < 1e-9);
    assert.equal(s.value('web', 'a.test', 1, Field.BytesOut), 0);
  });

  test('each domain of a node counts on its own slots (a wildcard as `*.w.test`)', () => {
    const s = setup();
    s.traffic.line(line({ route: s.id('*.w.test'), addr: '10.0.0.1:3001', host: 'x.w.test' }));
    s.traffic.line(line({ route: s.id('a.test'), addr: '10.0.0.1:3001', status: '500', header: '0.1' }));
    s.traffic.line(line({ route: s.id('api.test'), addr: '10.0.1.1:4001', status: '204' }));
    assert.deepEqual(s.counts('web', '*.w.test', 1), { C2xx: 1 });
    assert.deepEqual(s.counts('web', 'a.test', 1), { C5xx: 1 });
    assert.deepEqual(s.counts('api', 'api.test', 1), { C2xx: 1 });
    assert.equal(s.traffic.counted, 3);
  });

  const unknown: Array<[string, (s: Setup) => string]> = [
    ['an unregistered generation', () => line({ route: '9.0' })],
    ['an unknown index', (s) => line({ route: `${s.id('a.test').split('.')[0]}.99` })],
    ['a route id without a generation', () => line({ route: '0' })],
    ['an id that only starts like a known one', (s) => line({ route: `${s.id('a.test')}0` })],
    ['an id with a space', (s) => line({ route: `${s.id('a.test')} ` })],
    ['not JSON', () => 'garbage'],
    ['a line of the wrong shape', (s) => JSON.stringify([s.id('a.test'), '10.0.0.1:3001', '200'])],
  ];
  for (const [name, make] of unknown) {
    test(`unknown: ${name}`, () => {
      const s = setup();
      s.traffic.line(make(s));
      assert.equal(s.traffic.unknown, 1);
      assert.equal(s.traffic.counted, 0);
      for (const slot of s.counters.dump().slots) assert.ok(slot.values.every((v) => v === 0), 'nothing counted');
    });
  }

  const generations: Array<[string, number[], number, boolean]> = [
    ['the newest generation', [1, 2, 3], 3, true],
    ['an older generation, while its workers finish', [1, 2, 3], 1, true],
    ['16 generations: the oldest is kept', Array.from({ length: 16 }, (_, i) => i + 1), 1, true],
    ['17 generations: the oldest is forgotten', Array.from({ length: 17 }, (_, i) => i + 1), 1, false],
    ['17 generations: the second is kept', Array.from({ length: 17 }, (_, i) => i + 1), 2, true],
    ['a jump of 16: everything before forgotten', [1, 2, 18], 2, false],
    ['a jump of 16: the new one counts', [1, 2, 18], 18, true],
  ];
  for (const [name, gens, g, counted] of generations) {
    test(`generations: ${name}`, () => {
      const s = setup(gens);
      s.traffic.line(line({ route: s.id('a.test', g) }));
      assert.equal(s.traffic.counted, counted ? 1 : 0);
      assert.equal(s.traffic.unknown, counted ? 0 : 1);
      assert.equal(s.value('web', 'a.test', 1, Field.C2xx), counted ? 1 : 0);
    });
  }

  test('without counters, lines are still recognised and logged', async () => {
    const s = setup();
    const t = new NginxTraffic(null);
    t.register(1, renderNginxConfig(plan(1), s.table, [], 0).routes);
    t.line(line({ route: s.id('a.test'), uri: '/nocount' }));
    assert.equal(t.counted, 1);
    await new Promise((r) => setTimeout(r, 120));
    assert.deepEqual(s.batches.flatMap((b) => b.entries.map(([, , j]) => (JSON.parse(j) as AccessLine).path)), ['/nocount']);
  });
});

describe('NginxTraffic: access log', () => {
  test('lines of routes with an AccessLogWriter are recorded as nginx logged them; others are not', async () => {
    const s = setup();
    const evilPath = '/a"b\\c\u0001/ä?x=1';
    s.traffic.line(line({ route: s.id('a.test'), addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, 0.002', status: '201', time: '0.125', len: '10', sent: '20', method: 'POST', host: 'A.test:8080', uri: evilPath }));
    s.traffic.line(line({ route: s.id('*.w.test'), addr: '10.0.0.1:3001, 10.0.0.2:3002', header: '-, -', status: '502', host: 'x.w.test' }));
    s.traffic.line(line({ route: s.id('api.test'), addr: '10.0.1.1:4001', uri: '/api-is-not-logged' }));
    await new Promise((r) => setTimeout(r, 120));
    const got = s.batches.flatMap((b) => b.entries);
    assert.equal(got.length, 2, JSON.stringify(got));
    assert.deepEqual(got.map(([stack, node]) => `${stack}/${node}`), ['s/web', 's/web']);
    const [a, b] = got.map(([, , json]) => JSON.parse(json) as AccessLine);
    assert.equal(a!.node, 'web');
    assert.equal(a!.path, evilPath);
    assert.equal(a!.method, 'POST');
    assert.equal(a!.domain, 'a.test');
    assert.equal(a!.status, 201);
    assert.equal(a!.replica, 'web.2');
    assert.equal(a!.host, 'h2');
    assert.equal(a!.duration_ms, 125);
    assert.equal(a!.bytes_in, 10);
    assert.equal(a!.bytes_out, 20);
    assert.equal(a!.own, undefined);
    assert.equal(b!.status, 502);
    assert.equal(b!.own, true);
    assert.equal(b!.replica, '', 'nginx answered itself: no replica');
  });
});

// --- LogFollower -------------------------------------------------------------------------------

describe('LogFollower', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'viking-nginx-traffic-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  const fresh = (): { file: string; lines: string[]; f: LogFollower } => {
    const file = path.join(dir, `requests-${++n}.log`);
    const lines: string[] = [];
    return { file, lines, f: new LogFollower(file, (l) => lines.push(l)) };
  };

  test('a missing file reads nothing until nginx creates it', async () => {
    const { file, lines, f } = fresh();
    assert.equal(await f.poll(), 0);
    await writeFile(file, 'one\n');
    assert.equal(await f.poll(), 4);
    assert.deepEqual(lines, ['one']);
    await f.close();
  });

  test('appended lines are read across polls, each once; empty lines skipped', async () => {
    const { file, lines, f } = fresh();
    await writeFile(file, 'a\n');
    await f.poll();
    assert.deepEqual(lines, ['a']);
    await appendFile(file, 'b\n\nc\n');
    assert.equal(await f.poll(), 5);
    assert.equal(await f.poll(), 0, 'nothing new');
    assert.deepEqual(lines, ['a', 'b', 'c']);
    assert.equal(f.position, 7);
    await f.close();
  });

  // Every cut point of a line with 1- to 4-byte characters, as a write(2) may leave it mid-line.
  const full = line({ route: '3.1', host: 'ä.test', uri: '/ä€🙂/x?q=é' });
  const bytes = Buffer.from(full);
  test(`a cut last line is kept until its end arrives (all ${bytes.length - 1} cut points, inside characters too)`, async () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      const { file, lines, f } = fresh();
      await writeFile(file, Buffer.concat([Buffer.from('first\n'), bytes.subarray(0, cut)]));
      await f.poll();
      assert.deepEqual(lines, ['first'], `cut ${cut}: only the whole line`);
      await appendFile(file, Buffer.concat([bytes.subarray(cut), Buffer.from('\nlast\n')]));
      await f.poll();
      assert.deepEqual(lines, ['first', full, 'last'], `cut at byte ${cut}`);
      assert.ok(parseRequestLine(lines[1]!), 'the joined line parses');
      await f.close();
    }
  });

  test('more than a read chunk at once: every line whole, multi-byte characters across chunk ends intact', async () => {
    const { file, lines, f } = fresh();
    // 3000 lines of ~250 bytes with 2-, 3- and 4-byte characters: chunk ends fall inside lines and characters.
    const make = (pad: number): string[] =>
      Array.from({ length: 3000 }, (_, i) => line({ route: '1.0', uri: `/${i}/${'x'.repeat(i === 0 ? pad : 0)}${'é'.repeat(i % 7)}${'€'.repeat(10 + (i % 5))}${'🙂'.repeat(i % 3)}${'x'.repeat(100 + (i % 13))}` }));
    // Pad the first line so that the first chunk (256 KiB) ends inside a character.
    const pad = [0, 1, 2, 3].find((p) => (Buffer.from(`${make(p).join('\n')}\n`)[256 * 1024]! & 0xc0) === 0x80)!;
    const want = make(pad);
    await writeFile(file, `${want.join('\n')}\n`);
    assert.ok((await stat(file)).size > 2 * 256 * 1024);
    await f.poll();
    assert.equal(lines.length, want.length);
    for (let i = 0; i < want.length; i++) assert.equal(lines[i], want[i], `line ${i}`);
    await f.close();
  });

  /** A writer as nginx: appends to an open descriptor; `reopen` (USR1) opens the path anew. */
  class Writer {
    fd: number;
    written: string[] = [];
    constructor(private readonly file: string) {
      this.fd = openSync(file, 'a');
    }
    write(l: string, fd = this.fd): void {
      writeSync(fd, `${l}\n`);
      this.written.push(l);
    }
    /** Opens the new file; the old descriptor gets `late` (workers flushing) a moment later, then is closed. */
    reopen(late: string[]): void {
      const old = this.fd;
      this.fd = openSync(this.file, 'a');
      setTimeout(() => {
        for (const l of late) this.write(l, old);
        closeSync(old);
      }, 10);
    }
    close(): void {
      closeSync(this.fd);
    }
  }

  const rotations: Array<[string, number]> = [
    ['after a poll', 1],
    ['before any poll', 0],
  ];
  for (const [name, polls] of rotations) {
    test(`rotate ${name}: no line written before, during or after the rotation is lost or read twice`, async () => {
      const { file, lines, f } = fresh();
      const w = new Writer(file);
      for (let i = 0; i < 5; i++) w.write(`before-${i}`);
      for (let p = 0; p < polls; p++) await f.poll();
      for (let i = 0; i < 3; i++) w.write(`unread-${i}`);
      await f.rotate(() => {
        w.reopen(['late-0', 'late-1']);
        w.write('new-0');
      }, 60);
      await assert.rejects(stat(`${file}.old`), 'the old file is removed');
      for (let i = 1; i < 4; i++) w.write(`new-${i}`);
      await f.poll();
      // A second rotation, straight after.
      await f.rotate(() => w.reopen(['late-2']), 60);
      w.write('after-second');
      await f.poll();
      await f.poll();
      assert.deepEqual([...lines].sort(), [...w.written].sort());
      assert.equal(new Set(lines).size, lines.length, 'no line twice');
      assert.deepEqual(
        lines.filter((l) => l.startsWith('new-')),
        ['new-0', 'new-1', 'new-2', 'new-3'],
        'the new file in order',
      );
      w.close();
      await f.close();
    });
  }

  test('traffic through the follower: lines become counts', async () => {
    const { file, f } = fresh();
    const s = setup();
    const follower = new LogFollower(file, (l) => s.traffic.line(l));
    await writeFile(file, `${line({ route: s.id('a.test') })}\n${line({ route: s.id('a.test'), addr: '10.0.0.2:3002', status: '404' })}\n`);
    await follower.poll();
    await appendFile(file, `${line({ route: s.id('a.test'), addr: '10.0.0.2:3002', status: '404' })}\nnot a line\n`);
    await follower.close();
    await f.close();
    assert.deepEqual(s.counts('web', 'a.test', 1), { C2xx: 1 });
    assert.deepEqual(s.counts('web', 'a.test', 2), { C4xx: 2 });
    assert.equal(s.traffic.unknown, 1);
  });
});

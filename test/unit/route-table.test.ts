/**
 * The router's pure parts: RouteTable lookups, endpoint picking, the
 * balancer, and the header rewriting of proxy.ts.
 */
import { TrafficCounters } from '../../lib/router/traffic-counters.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { RouteTable, normaliseHost, pickEndpoints, type ContainerRoute } from '../../lib/router/route-table.js';
import { forwardHeaders, responseHeaders } from '../../lib/router/proxy.js';
import { TrustedProxies } from '../../lib/router/forwarding.js';
import { Upstreams } from '../../lib/router/upstreams.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import type { DomainRecord, PortEndpoint } from '../../lib/store/records.js';

function ep(stack: string, node: string, tag: string, instance: number, over: Partial<PortEndpoint> = {}): PortEndpoint {
  return {
    stack, node, tag, instance, host: 'h1', ip: '127.0.0.2', port: 80, hostPort: 32000 + instance, proto: 'tcp', container: `c-${tag}-${instance}`, primary: true,
    ...over,
  };
}

function snapshot(p: Partial<RouteSnapshot>): RouteSnapshot {
  return { revision: '7', domains: [], stacks: [], endpoints: [], sites: [], ...p };
}

const dom = (stack: string, node: string, kind: DomainRecord['kind'] = 'container'): DomainRecord => ({ stack, node, kind });

const table = RouteTable.build(snapshot({
  domains: [
    ['example.com', dom('shop', 'web')],
    ['api.example.com', dom('shop', 'api')],
    ['*.help.example.com', dom('help', 'site', 'website')],
    ['docs.help.example.com', dom('docs', 'web')],
  ],
  stacks: [{ name: 'shop', current: 't2' }],
  endpoints: [ep('shop', 'web', 't1', 1), ep('shop', 'web', 't2', 2), ep('shop', 'api', 't2', 1), ep('docs', 'web', 't1', 1)],
  sites: [{ stack: 'help', node: 'site', tag: 't4', root: '/srv/help' }],
}));

const endpointsOf = (host: string): string[] | undefined => {
  const r = table.lookup(host);
  return r?.kind === 'container' ? r.endpoints.map((e) => e.container) : undefined;
};

const target = (host: string | undefined): string | undefined => {
  const r = table.lookup(host);
  return r ? `${r.stack}/${r.node}` : undefined;
};

describe('RouteTable.lookup', () => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['example.com', 'shop/web'],
    ['api.example.com', 'shop/api'],
    ['EXAMPLE.com', 'shop/web'],
    ['Example.COM:8080', 'shop/web'],
    ['example.com.', 'shop/web'],
    ['example.com.:443', 'shop/web'],
    ['  api.example.com  ', 'shop/api'],
    ['a.help.example.com', 'help/site'],
    // A wildcard covers exactly one label.
    ['x.y.help.example.com', undefined],
    ['.help.example.com', undefined],
    ['A.Help.Example.com:80', 'help/site'],
    ['help.example.com', undefined],
    ['docs.help.example.com', 'docs/web'],
    ['unknown.org', undefined],
    ['www.example.com', undefined],
    ['example.com.evil.org', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [host, expected] of cases) test(`${JSON.stringify(host)} -> ${expected}`, () => assert.equal(target(host), expected));

  test('size counts exact and wildcard domains', () => assert.equal(table.size, 4));

  test('route carries the kind and the picked endpoints', () => {
    assert.equal(table.lookup('example.com')?.kind, 'container');
    assert.deepEqual(endpointsOf('example.com'), ['c-t2-2']);
    assert.deepEqual(endpointsOf('docs.help.example.com'), ['c-t1-1']);
    const site = table.lookup('z.help.example.com');
    assert.equal(site?.kind, 'website');
    assert.equal(site?.kind === 'website' ? site.site?.root : undefined, '/srv/help');
  });

  test('the table keeps its revision and lists the endpoints it routes to', () => {
    assert.equal(table.revision, '7');
    assert.deepEqual(table.endpoints.map((e) => e.container).sort(), ['c-t1-1', 'c-t2-1', 'c-t2-2']);
  });

  test('a website without files on this host has no root', () => {
    const t = RouteTable.build(snapshot({ domains: [['w.com', dom('s', 'www', 'website')]] }));
    const r = t.lookup('w.com');
    assert.equal(r?.kind, 'website');
    assert.equal(r?.kind === 'website' ? r.site : 'x', undefined);
  });

  test('two domains of one node share one balancer cursor (each keeps its own counter slots)', () => {
    const t = RouteTable.build(snapshot({
      domains: [['a.com', dom('s', 'web')], ['b.com', dom('s', 'web')]],
      endpoints: [ep('s', 'web', 't1', 1), ep('s', 'web', 't1', 2)],
    }), new TrafficCounters());
    const a = t.lookup('a.com');
    const b = t.lookup('b.com');
    assert.ok(a?.kind === 'container' && b?.kind === 'container');
    assert.equal(a.balancer, b.balancer);
    assert.deepEqual([a.domain, b.domain], ['a.com', 'b.com']);
    assert.notEqual(a.endpoints[0]!.slot, b.endpoints[0]!.slot);
    // Round-robin alternates over the node's replicas whichever domain a request names.
    const u = new Upstreams('round-robin');
    assert.notEqual(u.pick(a, null, 0)?.instance, u.pick(b, null, 0)?.instance);
  });
});

describe('normaliseHost', () => {
  const cases: Array<[string, string]> = [
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['[::1]:8080', '[::1]:8080'],
  ];
  for (const [input, out] of cases) test(`${input} -> ${out}`, () => assert.equal(normaliseHost(input), out));
});

describe('pickEndpoints', () => {
  const all = [
    ep('s', 'web', 't1', 1, { ip: '127.0.0.3' }),
    ep('s', 'web', 't1', 1, { port: 9090, hostPort: 40001, primary: false }),
    ep('s', 'web', 't2', 2, { ip: '127.0.0.2', hostPort: 32010 }),
    ep('s', 'web', 't2', 3, { ip: '127.0.0.2', hostPort: 32005 }),
    ep('s', 'web', 't2', 3, { port: 9090, hostPort: 40003, primary: false }),
  ];
  const ids = (xs: PortEndpoint[]): string[] => xs.map((e) => `${e.tag}.${e.instance}:${e.hostPort}`);
  const cases: Array<[string, string | null, string[]]> = [
    ['current tag with endpoints: only it, sorted by ip then port', 't2', ['t2.3:32005', 't2.2:32010']],
    ['current tag t1: only t1', 't1', ['t1.1:32001']],
    ['current null: every primary endpoint', null, ['t2.3:32005', 't2.2:32010', 't1.1:32001']],
    ['current tag without endpoints (a service of an older release): every primary endpoint', 't3', ['t2.3:32005', 't2.2:32010', 't1.1:32001']],
  ];
  for (const [name, current, expected] of cases) test(name, () => assert.deepEqual(ids(pickEndpoints(all, current)), expected));
  test('non-primary endpoints never serve', () => {
    assert.deepEqual(pickEndpoints(all.filter((e) => !e.primary), null), []);
  });
});

describe('Upstreams.pick', () => {
  const route = (n: number): ContainerRoute => ({
    kind: 'container', stack: 's', node: 'web', domain: 's.test', balancer: { cursor: 0 }, hsts: '', slot: -1, access: null,
    endpoints: Array.from({ length: n }, (_, i) => ({ ...ep('s', 'web', 't1', i + 1), slot: -1 })),
  });
  const hostPorts = (xs: Array<PortEndpoint | undefined>): number[] => xs.map((e) => e?.hostPort ?? -1);

  test('round-robin takes each endpoint in turn', () => {
    const u = new Upstreams('round-robin');
    const r = route(3);
    assert.deepEqual(hostPorts(Array.from({ length: 6 }, () => u.pick(r, null, 0))), [32001, 32002, 32003, 32001, 32002, 32003]);
  });

  test('least-conn takes the least busy endpoint, rotating among equals', () => {
    const u = new Upstreams('least-conn');
    const r = route(3);
    u.get(r.endpoints[0]!).inflight = 5;
    u.get(r.endpoints[1]!).inflight = 1;
    u.get(r.endpoints[2]!).inflight = 1;
    assert.deepEqual(hostPorts(Array.from({ length: 4 }, () => u.pick(r, null, 0))), [32002, 32002, 32003, 32002]);
    u.get(r.endpoints[2]!).inflight = 0;
    assert.equal(u.pick(r, null, 0)?.hostPort, 32003);
  });

  test('endpoints already tried are skipped; none left gives undefined', () => {
    const u = new Upstreams('round-robin');
    const r = route(2);
    assert.equal(u.pick(r, [r.endpoints[0]!], 0)?.hostPort, 32002);
    assert.equal(u.pick(r, [r.endpoints[0]!], 0)?.hostPort, 32002);
    assert.equal(u.pick(r, r.endpoints, 0), undefined);
  });

  test('an endpoint that refused a connection is skipped for a while, unless all are down', () => {
    for (const mode of ['round-robin', 'least-conn'] as const) {
      const u = new Upstreams(mode);
      const r = route(2);
      u.markDown(r.endpoints[0]!, 1000);
      assert.deepEqual(hostPorts([u.pick(r, null, 1500), u.pick(r, null, 1500), u.pick(r, null, 1500)]), [32002, 32002, 32002], mode);
      u.markDown(r.endpoints[1]!, 1000);
      assert.notEqual(u.pick(r, null, 1500), undefined, `${mode}: all down still tries one`);
      const later = new Set(hostPorts([u.pick(r, null, 5000), u.pick(r, null, 5000), u.pick(r, null, 5000), u.pick(r, null, 5000)]));
      assert.deepEqual([...later].sort(), [32001, 32002], `${mode}: back after the down time`);
    }
  });

  test('retain closes pools of endpoints that left', () => {
    const u = new Upstreams();
    const r = route(2);
    const first = u.get(r.endpoints[0]!);
    u.get(r.endpoints[1]!);
    u.retain([r.endpoints[1]!]);
    assert.deepEqual(Object.keys(u.load()), ['http://127.0.0.2:32002']);
    assert.notEqual(u.get(r.endpoints[0]!), first, 'a new pool if it comes back');
    void u.closeAll();
  });
});

function fakeReq(headers: Record<string, string | string[]>, remoteAddress: string | undefined): IncomingMessage {
  const rawHeaders: string[] = [];
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) rawHeaders.push(k, one);
    lower[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return { headers: lower, rawHeaders, socket: { remoteAddress } } as unknown as IncomingMessage;
}

/** A flat header list as name -> values, for comparing. */
function asMap(flat: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) (out[flat[i]!.toLowerCase()] ??= []).push(flat[i + 1]!);
  return out;
}

describe('forwardHeaders', () => {
  test('drops hop-by-hop headers, those named in Connection, and Expect; keeps the rest', () => {
    const out = forwardHeaders(
      fakeReq({
        Host: 'example.com',
        Connection: 'keep-alive, X-Secret-Hop',
        'Keep-Alive': 'timeout=5',
        'Proxy-Connection': 'keep-alive',
        'Transfer-Encoding': 'chunked',
        TE: 'trailers',
        Trailer: 'x-sum',
        Upgrade: 'websocket',
        'Proxy-Authorization': 'Basic xx',
        'X-Secret-Hop': '1',
        Expect: '100-continue',
        Accept: 'text/html',
        Cookie: 'a=1',
        'X-Custom': ['a', 'b'],
      }, '10.0.0.9'),
      'http',
    );
    assert.deepEqual(asMap(out), {
      accept: ['text/html'],
      cookie: ['a=1'],
      'x-custom': ['a', 'b'],
      host: ['example.com'],
      'x-forwarded-for': ['10.0.0.9'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': ['example.com'],
    });
  });

  test('for an upgrade, Upgrade is kept and Connection is exactly "upgrade"', () => {
    const out = asMap(forwardHeaders(fakeReq({ host: 'a.com', connection: 'Upgrade, keep-alive', upgrade: 'websocket', 'sec-websocket-key': 'k' }, '10.0.0.9'), 'http', true));
    assert.deepEqual(out.upgrade, ['websocket']);
    assert.deepEqual(out.connection, ['upgrade']);
    assert.deepEqual(out['sec-websocket-key'], ['k']);
  });

  const trusted = new TrustedProxies(['10.0.0.0/8', '::1']);
  const xff: Array<[string, Record<string, string | string[]>, string | undefined, string]> = [
    ['no prior value', {}, '10.0.0.9', '10.0.0.9'],
    ['appended to a prior value from a trusted proxy', { 'x-forwarded-for': '1.2.3.4' }, '10.0.0.9', '1.2.3.4, 10.0.0.9'],
    ['appended to a prior list from a trusted proxy', { 'x-forwarded-for': '1.2.3.4, 5.6.7.8' }, '::1', '1.2.3.4, 5.6.7.8, ::1'],
    ['replaced when the client is not a trusted proxy', { 'x-forwarded-for': '1.2.3.4' }, '192.168.1.9', '192.168.1.9'],
    ['unknown remote', {}, undefined, ''],
  ];
  for (const [name, headers, remote, expected] of xff) {
    test(`x-forwarded-for: ${name}`, () => assert.deepEqual(asMap(forwardHeaders(fakeReq({ host: 'a.com', ...headers }, remote), 'https', false, trusted))['x-forwarded-for'], [expected]));
  }

  test('x-forwarded-for: with no trusted proxies configured, a client value is always replaced', () => {
    assert.deepEqual(asMap(forwardHeaders(fakeReq({ host: 'a.com', 'x-forwarded-for': '1.2.3.4' }, '10.0.0.9'), 'https'))['x-forwarded-for'], ['10.0.0.9']);
  });

  test('a Connection list never removes Content-Length or Host', () => {
    const out = asMap(forwardHeaders(fakeReq({ host: 'a.com', connection: 'content-length, host, transfer-encoding, x-hop', 'content-length': '5', 'x-hop': '1' }, '10.0.0.9'), 'http'));
    assert.deepEqual(out['content-length'], ['5']);
    assert.deepEqual(out.host, ['a.com']);
    assert.equal(out['x-hop'], undefined);
  });

  test('x-forwarded-proto and -host are set once, overriding client values', () => {
    const out = asMap(forwardHeaders(fakeReq({ host: 'shop.example.com:8443', 'X-Forwarded-Proto': 'gopher', 'x-forwarded-host': 'evil.org' }, '10.0.0.9'), 'https'));
    assert.deepEqual(out['x-forwarded-proto'], ['https']);
    assert.deepEqual(out['x-forwarded-host'], ['shop.example.com:8443']);
    assert.deepEqual(out.host, ['shop.example.com:8443']);
  });
});

describe('responseHeaders', () => {
  test('drops hop-by-hop and Connection-listed headers, keeps the rest and repeated ones', () => {
    const raw = ['Connection', 'close, x-internal', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Proxy-Authenticate', 'Basic',
      'Upgrade', 'h2c', 'X-Internal', 'yes', 'Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'].map((x) => Buffer.from(x, 'latin1'));
    assert.deepEqual(responseHeaders(raw), ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });

  test('without a Connection header nothing else is dropped', () => {
    assert.deepEqual(responseHeaders(['Date', 'x', 'X-A', '1']), ['Date', 'x', 'X-A', '1']);
  });
});

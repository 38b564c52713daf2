/**
 * The router's pure parts: RouteTable lookups, endpoint picking, and the
 * header rewriting of proxy.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { RouteTable, normaliseHost, pickEndpoints } from '../../lib/router/route-table.js';
import { forwardHeaders, responseHeaders } from '../../lib/router/proxy.js';
import type { DomainRecord, PortEndpoint, StackRecord } from '../../lib/store/records.js';

function ep(stack: string, node: string, tag: string, instance: number, over: Partial<PortEndpoint> = {}): PortEndpoint {
  return {
    stack, node, tag, instance, host: 'h1', ip: '127.0.0.2', port: 80, hostPort: 32000 + instance, proto: 'tcp', container: `c-${tag}-${instance}`, primary: true,
    ...over,
  };
}

function stackRec(name: string, current: string | null): StackRecord {
  return { name, current, lastRelease: 2, releases: [], domains: {}, websites: {} };
}

const dom = (stack: string, node: string, kind: DomainRecord['kind'] = 'container'): DomainRecord => ({ stack, node, kind });

const table = RouteTable.build({
  domains: new Map([
    ['example.com', dom('shop', 'web')],
    ['api.example.com', dom('shop', 'api')],
    ['*.help.example.com', dom('help', 'site', 'website')],
    ['docs.help.example.com', dom('docs', 'web')],
  ]),
  stacks: new Map([['shop', stackRec('shop', 't2')]]),
  endpoints: [ep('shop', 'web', 't1', 1), ep('shop', 'web', 't2', 2), ep('shop', 'api', 't2', 1), ep('docs', 'web', 't1', 1)],
});

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
    ['x.y.help.example.com', 'help/site'],
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
    const web = table.lookup('example.com');
    assert.equal(web?.kind, 'container');
    assert.deepEqual(web?.endpoints.map((e) => e.container), ['c-t2-2']);
    assert.equal(table.lookup('z.help.example.com')?.kind, 'website');
    assert.deepEqual(table.lookup('docs.help.example.com')?.endpoints.map((e) => e.container), ['c-t1-1']);
  });

  test('two domains of one node share one route (one round-robin cursor)', () => {
    const t = RouteTable.build({
      domains: new Map([['a.com', dom('s', 'web')], ['b.com', dom('s', 'web')]]),
      stacks: new Map(),
      endpoints: [ep('s', 'web', 't1', 1)],
    });
    assert.equal(t.lookup('a.com'), t.lookup('b.com'));
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
  const cases: Array<[string, StackRecord | undefined, string[]]> = [
    ['current tag with endpoints: only it, sorted by ip then port', stackRec('s', 't2'), ['t2.3:32005', 't2.2:32010']],
    ['current tag t1: only t1', stackRec('s', 't1'), ['t1.1:32001']],
    ['current null: every primary endpoint', stackRec('s', null), ['t2.3:32005', 't2.2:32010', 't1.1:32001']],
    ['current tag without endpoints: every primary endpoint', stackRec('s', 't3'), ['t2.3:32005', 't2.2:32010', 't1.1:32001']],
    ['no stack record: every primary endpoint', undefined, ['t2.3:32005', 't2.2:32010', 't1.1:32001']],
  ];
  for (const [name, stack, expected] of cases) test(name, () => assert.deepEqual(ids(pickEndpoints(all, stack)), expected));
  test('non-primary endpoints never serve', () => {
    assert.deepEqual(pickEndpoints(all.filter((e) => !e.primary), stackRec('s', null)), []);
  });
});

function fakeReq(headers: Record<string, string | string[]>, remoteAddress: string | undefined): IncomingMessage {
  return { headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

describe('forwardHeaders', () => {
  test('drops hop-by-hop headers and those named in Connection; keeps the rest', () => {
    const out = forwardHeaders(
      fakeReq({
        host: 'example.com',
        connection: 'keep-alive, X-Secret-Hop',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'transfer-encoding': 'chunked',
        te: 'trailers',
        trailer: 'x-sum',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic xx',
        'x-secret-hop': '1',
        accept: 'text/html',
        cookie: 'a=1',
        'x-custom': ['a', 'b'],
      }, '10.0.0.9'),
      'http',
    );
    assert.deepEqual(out, {
      accept: 'text/html',
      cookie: 'a=1',
      'x-custom': ['a', 'b'],
      'x-forwarded-for': '10.0.0.9',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'example.com',
      host: 'example.com',
    });
  });

  const xff: Array<[string, Record<string, string | string[]>, string | undefined, string]> = [
    ['no prior value', {}, '10.0.0.9', '10.0.0.9'],
    ['appended to a prior value', { 'x-forwarded-for': '1.2.3.4' }, '10.0.0.9', '1.2.3.4, 10.0.0.9'],
    ['appended to a prior list', { 'x-forwarded-for': '1.2.3.4, 5.6.7.8' }, '::1', '1.2.3.4, 5.6.7.8, ::1'],
    ['unknown remote', {}, undefined, ''],
  ];
  for (const [name, headers, remote, expected] of xff) {
    test(`x-forwarded-for: ${name}`, () => assert.equal(forwardHeaders(fakeReq({ host: 'a.com', ...headers }, remote), 'https')['x-forwarded-for'], expected));
  }

  test('x-forwarded-proto and -host are set, overriding client values', () => {
    const out = forwardHeaders(fakeReq({ host: 'shop.example.com:8443', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'evil.org' }, '10.0.0.9'), 'https');
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out['x-forwarded-host'], 'shop.example.com:8443');
    assert.equal(out.host, 'shop.example.com:8443');
  });
});

describe('responseHeaders', () => {
  test('drops hop-by-hop and Connection-listed headers, keeps the rest', () => {
    const out = responseHeaders({
      connection: 'close, x-internal',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authenticate': 'Basic',
      upgrade: 'h2c',
      'x-internal': 'yes',
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
      'x-missing': undefined,
    });
    assert.deepEqual(out, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
  });
});

/**
 * The nginx data plane's configuration (lib/router/nginx-config.ts), pure:
 * which names get a server block, what each block proxies to, which
 * certificate it shows and whether it redirects, what no hostile domain or
 * endpoint can write into the file, and (property) that whatever the route
 * table and certificates, the real `nginx -t` accepts the text.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { isRenderableName, renderNginxConfig, type NginxCert, type NginxPlan, type RenderedConfig } from '../../lib/router/nginx-config.js';
import { RouteTable } from '../../lib/router/route-table.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import type { DomainRecord, PortEndpoint } from '../../lib/store/records.js';
import { SniIndex, currentlyValid } from '../../lib/certs/sni.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const run = promisify(execFile);
const NGINX = '/usr/sbin/nginx';
const NOW = Date.parse('2026-06-01T12:00:00Z');
const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

function plan(over: Partial<NginxPlan> = {}): NginxPlan {
  return {
    prefix: '/var/lib/viking/nginx',
    listen: { host: '0.0.0.0', port: 80, httpsPort: 443 },
    workers: 2,
    fallbackPort: 9000,
    fallbackTlsPort: 9001,
    balance: 'round-robin',
    timeouts: { headMs: 15_000, idleMs: 65_000 },
    maxConnections: 1024,
    trustedProxies: [],
    tlsResumption: true,
    ticketKeyFile: null,
    logFile: '/var/lib/viking/nginx/requests.log',
    generation: 7,
    ...over,
  };
}

function ep(stack: string, node: string, instance: number, ip: string, hostPort: number): PortEndpoint {
  return { stack, node, tag: 't1', instance, host: 'h1', ip, port: 80, hostPort, proto: 'tcp', container: `c-${stack}-${node}-${instance}`, primary: true };
}

const dom = (stack: string, node: string, kind: DomainRecord['kind'] = 'container'): DomainRecord => ({ stack, node, kind });

function table(p: Partial<RouteSnapshot>): RouteTable {
  return RouteTable.build({ revision: '11', domains: [], stacks: [], endpoints: [], sites: [], ...p });
}

/** A table of container routes, each domain to `<stack>/web` with one endpoint. */
function simpleTable(domains: string[], hsts?: number): RouteTable {
  return table({
    domains: domains.map((d) => [d, dom('s', 'web')]),
    stacks: [{ name: 's', current: null, ...(hsts !== undefined ? { hsts: { web: hsts } } : {}) }],
    endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001)],
  });
}

function cert(domain: string, names: string[], o: { from?: number; to?: number; file?: string } = {}): NginxCert {
  const file = o.file ?? `/certs/${domain.replace('*', '_')}`;
  return { domain, names, notBefore: iso(o.from ?? NOW - DAY), notAfter: iso(o.to ?? NOW + 30 * DAY), certFile: `${file}.crt`, keyFile: `${file}.key` };
}

/** The `server { ... }` blocks of a rendering at the http level (braces inside quoted strings skipped). */
function serverBlocks(text: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf('\n  server {', from);
    if (start < 0) break;
    let depth = 0;
    let quoted = false;
    let j = start + 1;
    for (; j < text.length; j++) {
      const ch = text[j];
      if (quoted) {
        if (ch === '\\') j++;
        else if (ch === '"') quoted = false;
      } else if (ch === '"') quoted = true;
      else if (ch === '{') depth++;
      else if (ch === '}' && --depth === 0) break;
    }
    assert.ok(j < text.length, 'unbalanced server block');
    out.push(text.slice(start + 1, j + 1));
    from = j;
  }
  return out;
}

interface Block {
  /** server_name as written, unquoted; undefined for the default server. */
  name: string | undefined;
  text: string;
  certFile: string | undefined;
  rejects: boolean;
  /** The `location / { ... }` body. */
  root: string;
  /** The ACME challenge location's body. */
  acme: string;
  routeId: string | undefined;
  pass: string | undefined;
  hsts: string | undefined;
}

function parseBlock(text: string): Block {
  const name = /^ {4}server_name (.+);$/m.exec(text)?.[1];
  const root = /^ {4}location \/ \{\n([\s\S]*?)\n {4}\}$/m.exec(text)?.[1] ?? /^ {4}location \/ \{(.*)\}$/m.exec(text)?.[1] ?? '';
  const acme = /^ {4}location \^~ \/\.well-known\/acme-challenge\/ \{(.*)\}$/m.exec(text)?.[1] ?? '';
  return {
    name: name?.startsWith('"') ? name.slice(1, -1) : name,
    text,
    certFile: /^ {4}ssl_certificate (\S+);$/m.exec(text)?.[1],
    rejects: /^ {4}ssl_reject_handshake on;$/m.test(text),
    root,
    acme,
    routeId: /^ {4}set \$vk_route (\S+);$/m.exec(text)?.[1],
    pass: /proxy_pass (\S+);/.exec(root)?.[1],
    hsts: /^ {4}add_header Strict-Transport-Security (\S+) always;$/m.exec(text)?.[1],
  };
}

function blocks(r: RenderedConfig): Map<string, Block> {
  const all = serverBlocks(r.text).map(parseBlock);
  const named = all.filter((b) => b.name !== undefined);
  assert.equal(all.length - named.length, 1, 'exactly one default server');
  const out = new Map<string, Block>();
  for (const b of named) {
    assert.ok(!out.has(b.name!), `two blocks for ${b.name}`);
    out.set(b.name!, b);
  }
  return out;
}

/** server_name of a wildcard domain as rendered. */
const wildName = (d: string): string => `~^[a-z0-9-]+${d.slice(1).replace(/\./g, '\\.')}$`;
const nameOf = (d: string): string => (d.startsWith('*.') ? wildName(d) : d);

const upstreamBodies = (text: string): string[] => [...text.matchAll(/^ {2}upstream (vk_u\d+) \{\n([\s\S]*?)\n {2}\}$/gm)].map((m) => m[2]!);

describe('renderNginxConfig: server blocks', () => {
  const cases: Array<{ name: string; domains: string[]; certs: NginxCert[]; httpsPort: number; want: string[] }> = [
    { name: 'routes only', domains: ['a.test', 'b.test', '*.w.test'], certs: [], httpsPort: 443, want: ['a.test', 'b.test', '*.w.test'] },
    { name: 'a certificate name without a route gets its own block', domains: ['a.test'], certs: [cert('c.test', ['c.test', 'www.c.test'])], httpsPort: 443, want: ['a.test', 'c.test', 'www.c.test'] },
    { name: 'a name in a route and a certificate: one block', domains: ['a.test', 'x.test'], certs: [cert('a.test', ['a.test']), cert('x.test', ['x.test', '*.x.test'])], httpsPort: 443, want: ['a.test', 'x.test', '*.x.test'] },
    { name: 'certificate names are lower-cased', domains: [], certs: [cert('Up.TEST', ['Up.TEST'])], httpsPort: 443, want: ['up.test'] },
    { name: 'no HTTPS: certificate names get no block', domains: ['a.test'], certs: [cert('c.test', ['c.test'])], httpsPort: 0, want: ['a.test'] },
    { name: 'an expired certificate gets no block of its own', domains: ['a.test'], certs: [cert('old.test', ['old.test'], { from: NOW - 90 * DAY, to: NOW - DAY })], httpsPort: 443, want: ['a.test'] },
    { name: 'a not-yet-valid certificate gets no block of its own', domains: [], certs: [cert('new.test', ['new.test'], { from: NOW + DAY, to: NOW + 90 * DAY })], httpsPort: 443, want: [] },
    { name: 'nothing: only the default server', domains: [], certs: [], httpsPort: 443, want: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = renderNginxConfig(plan({ listen: { host: '0.0.0.0', port: 80, httpsPort: c.httpsPort } }), simpleTable(c.domains), c.certs, NOW);
      assert.deepEqual([...blocks(r).keys()].sort(), c.want.map(nameOf).sort());
    });
  }

  test('the default server is the only default_server and sends everything to the fallback', () => {
    const r = renderNginxConfig(plan(), simpleTable(['a.test']), [], NOW);
    const def = serverBlocks(r.text).map(parseBlock).find((b) => b.name === undefined)!;
    assert.match(def.text, /listen 0\.0\.0\.0:80 default_server;/);
    assert.match(def.text, /listen 0\.0\.0\.0:443 ssl http2 default_server;/);
    assert.equal(r.text.match(/default_server/g)?.length, 2);
    assert.ok(def.rejects, 'no certificate for unknown names');
    assert.match(r.text, /upstream vk_fallback \{ server 127\.0\.0\.1:9000;/);
  });

  test('an IPv6 listen address is bracketed', () => {
    const r = renderNginxConfig(plan({ listen: { host: '::', port: 8080, httpsPort: 8443 } }), simpleTable(['a.test']), [], NOW);
    const b = blocks(r).get('a.test')!;
    assert.match(b.text, /^ {4}listen \[::\]:8080;$/m);
    assert.match(b.text, /^ {4}listen \[::\]:8443 ssl http2;$/m);
  });
});

describe('renderNginxConfig: wildcard routes', () => {
  test('`*.x.test` is a quoted regex server_name matching exactly one label', () => {
    const r = renderNginxConfig(plan(), simpleTable(['*.x.test']), [], NOW);
    assert.match(r.text, /^ {4}server_name "~\^\[a-z0-9-\]\+\\\.x\\\.test\$";$/m);
    const b = blocks(r).get(wildName('*.x.test'))!;
    assert.ok(b.routeId, 'the wildcard route is proxied');
    const re = new RegExp(b.name!.slice(1));
    for (const [host, match] of [
      ['a.x.test', true],
      ['a-1.x.test', true],
      ['a.b.x.test', false],
      ['x.test', false],
      ['.x.test', false],
      ['ax.test', false],
      ['a.xxtest', false],
      ['a.x.test.evil', false],
      ['a"b.x.test', false],
      ['a$b.x.test', false],
    ] as const) {
      assert.equal(re.test(host), match, host);
    }
  });

  test('a certificate name under a wildcard route gets the wildcard route', () => {
    const t = simpleTable(['*.x.test']);
    const r = renderNginxConfig(plan(), t, [cert('a.x.test', ['a.x.test'])], NOW);
    const bs = blocks(r);
    assert.equal(bs.get('a.x.test')!.routeId, bs.get(wildName('*.x.test'))!.routeId);
    assert.equal(r.routes.get(bs.get('a.x.test')!.routeId!), t.wildcardRoute('x.test'));
  });
});

describe('renderNginxConfig: hostile domains', () => {
  const hostile = [
    'a"b.test',
    "a'b.test",
    'a;b.test',
    'a{b.test',
    'a}b.test',
    '$host.test',
    'a b.test',
    'a\tb.test',
    'a\nb.test',
    'a\r\nb.test',
    'a\\b.test',
    'a#b.test',
    'bücher.test',
    'café.test',
    `${'a'.repeat(64)}.test`,
    `${Array.from({ length: 5 }, () => 'b'.repeat(60)).join('.')}.test`,
    '*.*.x.test',
    '*x.test',
    '.x.test',
    'x.test.',
    'a..b.test',
    '-a.test',
    '',
    '*',
    '*.',
    '~^.*$',
    'a.test/evil',
    'a.test:80',
    '_',
  ];
  test('isRenderableName: plain DNS names and `*.` and one', () => {
    for (const n of ['a.test', 'x', 'a-b.c1.test', '1.2.3.4', '*.x.test', `${'a'.repeat(63)}.test`, `${Array.from({ length: 4 }, () => 'b'.repeat(62)).join('.')}`]) assert.ok(isRenderableName(n), n);
    for (const n of hostile) assert.ok(!isRenderableName(n), JSON.stringify(n));
  });

  for (const h of hostile) {
    test(`${JSON.stringify(h.length > 40 ? `${h.slice(0, 20)}…(${h.length})` : h)} in a route and a certificate: never written, no block`, () => {
      const t = table({
        domains: [
          ['good.test', dom('s', 'web')],
          [h, dom('s', 'web')],
        ],
        stacks: [{ name: 's', current: null }],
        endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001)],
      });
      const r = renderNginxConfig(plan(), t, [cert('good.test', ['good.test', h]), cert(h, [h])], NOW);
      assert.deepEqual([...blocks(r).keys()], ['good.test']);
      if (h.length > 1 && h !== '_') assert.ok(!r.text.includes(h), 'the name is not in the text');
      assert.ok(!r.text.includes(h.toLowerCase()) || h.length <= 1 || h === '_', 'nor in lower case');
    });
  }

  test('hostile stack and node names reach the text only as `?`', () => {
    const t = table({
      domains: [['a.test', dom('s"x;\n}{$y', 'w\r\neb')]],
      stacks: [{ name: 's"x;\n}{$y', current: null }],
      endpoints: [ep('s"x;\n}{$y', 'w\r\neb', 1, '10.0.0.1', 3001)],
    });
    const r = renderNginxConfig(plan(), t, [], NOW);
    // Only in the upstream's comment (which runs to the end of its line) is anything but `?` left of them.
    for (const line of r.text.split('\n')) if (line.includes('$y') || line.includes('x;')) assert.match(line, /^ {4}# /);
    assert.ok(!r.text.includes('\r'));
    assert.match(r.text, /return 502 "502 Bad gateway: s\?x\?\?\?\?\?y\/w\?\?eb did not answer/);
    assert.ok(!r.text.includes('\n}{'), 'no newline from a stack name');
  });
});

describe('renderNginxConfig: endpoints', () => {
  const cases: Array<[string, string, number, string | null]> = [
    ['IPv4', '10.0.0.1', 3001, 'server 10.0.0.1:3001 '],
    ['IPv6', 'fd00::5', 3002, 'server [fd00::5]:3002 '],
    ['port 65535', '10.0.0.2', 65535, 'server 10.0.0.2:65535 '],
    ['a host name', 'app.internal', 3003, null],
    ['an address with a directive after it', '10.0.0.3; include /etc/passwd', 3004, null],
    ['an address with a space', '10.0.0.4 backup', 3005, null],
    ['an empty address', '', 3006, null],
    ['a unix socket', 'unix:/tmp/s', 3007, null],
    ['port 0', '10.0.0.5', 0, null],
    ['port 65536', '10.0.0.6', 65536, null],
    ['a negative port', '10.0.0.7', -1, null],
    ['a fractional port', '10.0.0.8', 80.5, null],
    ['NaN as port', '10.0.0.9', NaN, null],
  ];
  for (const [name, ip, port, want] of cases) {
    test(`${name}: ${want ? 'written' : 'never written'}`, () => {
      const t = table({
        domains: [['a.test', dom('s', 'web')]],
        stacks: [{ name: 's', current: null }],
        endpoints: [ep('s', 'web', 1, '192.0.2.1', 4000), ep('s', 'web', 2, ip, port)],
      });
      const r = renderNginxConfig(plan(), t, [], NOW);
      const ups = upstreamBodies(r.text);
      assert.equal(ups.length, 1);
      const servers = ups[0]!.split('\n').filter((l) => l.trim().startsWith('server '));
      assert.equal(servers.length, want ? 2 : 1, ups[0]);
      assert.ok(servers.some((l) => l.includes('server 192.0.2.1:4000 ')));
      if (want) assert.ok(servers.some((l) => l.includes(want)), ups[0]);
      else if (ip !== '') assert.ok(!r.text.includes(ip), 'the address is not in the text');
    });
  }

  test('a route whose endpoints are all unwritable proxies to the fallback', () => {
    const t = table({
      domains: [['a.test', dom('s', 'web')]],
      stacks: [{ name: 's', current: null }],
      endpoints: [ep('s', 'web', 1, 'app.internal', 3000), ep('s', 'web', 2, '10.0.0.1', 0)],
    });
    const r = renderNginxConfig(plan(), t, [], NOW);
    const b = blocks(r).get('a.test')!;
    assert.equal(b.pass, 'http://$vk_fallback');
    assert.equal(b.routeId, undefined);
    assert.equal(r.routes.size, 0);
    assert.deepEqual(upstreamBodies(r.text), []);
  });
});

describe('renderNginxConfig: what a block proxies to', () => {
  const t = table({
    domains: [
      ['app.test', dom('s', 'web')],
      ['idle.test', dom('s', 'idle')],
      ['site.test', dom('s', 'site', 'website')],
      ['*.site.test', dom('s', 'site', 'website')],
    ],
    stacks: [{ name: 's', current: null }],
    endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001)],
    sites: [{ stack: 's', node: 'site', tag: 't1', root: '/srv/site' }],
  });
  const r = renderNginxConfig(plan(), t, [], NOW);
  const bs = blocks(r);
  const cases: Array<[string, string, boolean]> = [
    ['app.test', 'http://vk_u0', true],
    ['idle.test', 'http://$vk_fallback', false],
    ['site.test', 'http://$vk_fallback', false],
    [wildName('*.site.test'), 'http://$vk_fallback', false],
  ];
  for (const [name, pass, proxied] of cases) {
    test(`${name} -> ${pass}`, () => {
      const b = bs.get(name)!;
      assert.equal(b.pass, pass);
      assert.equal(b.routeId !== undefined, proxied, 'only proxied routes are logged');
      assert.equal(/@vk_502/.test(b.text), proxied, 'the 502 page only where an app is proxied');
      assert.match(b.acme, /proxy_pass http:\/\/\$vk_fallback;/);
    });
  }
  test('the 502 and 504 pages are one line each, their body ending in one newline', () => {
    for (const line of r.text.split('\n')) assert.ok(!/^\s*"/.test(line), `a quoted string spans lines: ${JSON.stringify(line)}`);
    assert.match(r.text, /return 502 "502 Bad gateway: s\/web did not answer: [^"\n]*Check it with: viking ps s\\n"; \}/);
    assert.match(r.text, /return 504 "504 Gateway timeout: s\/web did not answer in time \(\$upstream_addr\)\.\\n"; \}/);
  });
});

describe('renderNginxConfig: the raw challenge path and the reload drain flag', () => {
  const t = table({
    domains: [['app.test', dom('s', 'web')], ['site.test', dom('s', 'site', 'website')]],
    stacks: [{ name: 's', current: null }],
    endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001)],
    sites: [{ stack: 's', node: 'site', tag: 't1', root: '/srv/site' }],
  });
  test('a request whose raw target starts with the challenge path goes to the fallback before any redirect', () => {
    const r = renderNginxConfig(plan(), t, [cert('app.test', ['app.test'])], NOW);
    assert.match(r.text, /map \$request_uri \$vk_acme \{ "~\^\/\\\.well-known\/acme-challenge\/" 1; default ""; \}/);
    for (const name of ['app.test', 'site.test']) {
      const b = blocks(r).get(name)!;
      assert.match(b.text, /error_page 598 = @vk_acme;/, name);
      assert.match(b.text, /location @vk_acme \{ access_log off; proxy_pass http:\/\/\$vk_fallback; \}/, name);
      assert.match(b.root, /^\s*if \(\$vk_acme\) \{ return 598; \}/, `${name}: the first thing location / does`);
    }
  });
  test('hostile framing and Host (router-nginx-hostile.test.ts): nginx\'s 501 is a 400 in every block; an app never gets a Host its block does not serve', () => {
    const r = renderNginxConfig(plan(), t, [cert('app.test', ['app.test'])], NOW);
    for (const b of serverBlocks(r.text).map(parseBlock)) {
      assert.match(b.text, /^ {4}error_page 501 =400 @vk_400;$/m, b.name ?? 'default');
      assert.match(b.text, /^ {4}location @vk_400 \{ return 400; \}$/m, b.name ?? 'default');
    }
    assert.match(r.text, /map "\$host \$http_host" \$vk_host_differs \{ "~\*\^\(\\S\+\) \\1\\\.\?\(:\\S\*\)\?\$" ""; default 1; \}/);
    // Right after the challenge test, before the redirect and the tunnel: only in blocks that proxy to an app.
    assert.match(blocks(r).get('app.test')!.root, /^\s*if \(\$vk_acme\) \{ return 598; \}\n\s*if \(\$vk_host_differs\) \{ return 400; \}\n/);
    assert.ok(!blocks(r).get('site.test')!.root.includes('vk_host_differs'), 'the fallback routes by the Host header itself');
  });
  test('no drain file: no flag test; with one: every block tests it and drains to the same upstream without keep-alive', () => {
    assert.ok(!renderNginxConfig(plan(), t, [], NOW).text.includes('@vk_drain'));
    const r = renderNginxConfig(plan({ drainFile: '/tmp/viking-nginx-x/draining' }), t, [], NOW);
    const all = serverBlocks(r.text).map(parseBlock);
    for (const b of all) {
      assert.match(b.root, /if \(-f \/tmp\/viking-nginx-x\/draining\) \{ return 599; \}/, b.name ?? 'default');
      assert.match(b.text, /error_page 599 = @vk_drain;/);
      assert.equal(/location @vk_drain \{ keepalive_timeout 0; proxy_pass (\S+); \}/.exec(b.text)?.[1], b.pass, `${b.name ?? 'default'}: drains to what it proxies to`);
    }
    assert.match(blocks(r).get('app.test')!.text, /recursive_error_pages on;/, 'a 502 while draining still gets the 502 page');
    assert.ok(!renderNginxConfig(plan({ drainFile: '/tmp/a b/draining' }), t, [], NOW).text.includes('@vk_drain'), 'an odd path is not written');
  });
});

describe('renderNginxConfig: certificates and the redirect to HTTPS', () => {
  const certs = [
    cert('valid.test', ['valid.test']),
    cert('future.test', ['future.test'], { from: NOW + DAY, to: NOW + 90 * DAY }),
    cert('expired.test', ['expired.test'], { from: NOW - 90 * DAY, to: NOW - 1 }),
    cert('ends-now.test', ['ends-now.test'], { from: NOW - 90 * DAY, to: NOW }),
    cert('odd-path.test', ['odd-path.test'], { file: '/certs/odd path' }),
    cert('x.test', ['x.test', '*.x.test']),
  ];
  const t = simpleTable(['valid.test', 'future.test', 'expired.test', 'ends-now.test', 'odd-path.test', 'plain.test', 'a.x.test', '*.x.test', 'a.b.x.test']);
  const cases: Array<[string, string | undefined]> = [
    ['valid.test', '/certs/valid.test.crt'],
    ['future.test', undefined],
    ['expired.test', undefined],
    ['ends-now.test', undefined],
    ['odd-path.test', undefined],
    ['plain.test', undefined],
    ['a.x.test', '/certs/x.test.crt'],
    ['x.test', '/certs/x.test.crt'],
    [wildName('*.x.test'), '/certs/x.test.crt'],
    ['a.b.x.test', undefined],
  ];
  for (const port of [443, 8443]) {
    const r = renderNginxConfig(plan({ listen: { host: '0.0.0.0', port: 80, httpsPort: port } }), t, certs, NOW);
    const bs = blocks(r);
    for (const [name, file] of cases) {
      test(`HTTPS on ${port}: ${name} ${file ? `shows ${file} and redirects` : 'refuses the handshake and does not redirect'}`, () => {
        const b = bs.get(name)!;
        assert.ok(b, `a block for ${name}`);
        assert.equal(b.certFile, file);
        assert.equal(b.rejects, !file);
        if (file) {
          assert.match(b.text, new RegExp(`^ {4}ssl_certificate_key ${file.replace('.crt', '.key').replace(/\./g, '\\.')};$`, 'm'));
          const want = `if ($https = "") { access_log off; return 308 https://$host${port === 443 ? '' : `:${port}`}$request_uri; }`;
          assert.ok(b.root.includes(want), b.root);
        } else assert.ok(!b.text.includes('return 308'), b.text);
        assert.ok(b.acme !== '' && !b.acme.includes('return'), 'the ACME challenges are never redirected');
      });
    }
    test(`HTTPS on ${port}: \`return 308\` only in the blocks a valid certificate covers`, () => {
      assert.equal(r.text.match(/return 308/g)?.length, cases.filter(([, f]) => f).length);
    });
  }

  test('the most specific certificate wins, as SniIndex picks it', () => {
    const all = [
      cert('x.test', ['x.test', '*.x.test'], { file: '/certs/wild' }),
      cert('a.x.test', ['a.x.test'], { file: '/certs/exact' }),
      // Both cover b.x.test by name: the one stored under it wins over the one valid longer.
      cert('b.x.test', ['b.x.test'], { file: '/certs/b-own' }),
      cert('other.test', ['other.test', 'b.x.test'], { file: '/certs/b-other', to: NOW + 80 * DAY }),
      // Two wildcards of the same parent: the one valid longer wins.
      cert('y.test', ['*.y.test'], { file: '/certs/y-short', to: NOW + 10 * DAY }),
      cert('y2.test', ['*.y.test'], { file: '/certs/y-long', to: NOW + 60 * DAY }),
      // Expired: never chosen, however specific.
      cert('c.x.test', ['c.x.test'], { file: '/certs/c-expired', from: NOW - 90 * DAY, to: NOW - DAY }),
    ];
    const r = renderNginxConfig(plan(), simpleTable(['a.x.test', 'b.x.test', 'c.x.test', 'd.x.test', '*.x.test', 'a.y.test', '*.y.test']), all, NOW);
    const want: Record<string, string> = {
      'a.x.test': '/certs/exact.crt',
      'b.x.test': '/certs/b-own.crt',
      'c.x.test': '/certs/wild.crt',
      'd.x.test': '/certs/wild.crt',
      [wildName('*.x.test')]: '/certs/wild.crt',
      'x.test': '/certs/wild.crt',
      'a.y.test': '/certs/y-long.crt',
      [wildName('*.y.test')]: '/certs/y-long.crt',
      'other.test': '/certs/b-other.crt',
      // A certificate's own domain is one of its names.
      'y.test': '/certs/y-short.crt',
      'y2.test': '/certs/y-long.crt',
    };
    const bs = blocks(r);
    assert.deepEqual(Object.fromEntries([...bs].map(([n, b]) => [n, b.certFile])), want);
    const sni = new SniIndex(all.filter((c) => currentlyValid(c, NOW)));
    for (const [name, b] of bs) if (!name.startsWith('~')) assert.equal(b.certFile, sni.lookup(name)?.certFile, name);
  });

  test('HTTPS off: no ssl listen, no certificate, no redirect, no TLS setting', () => {
    const r = renderNginxConfig(plan({ listen: { host: '0.0.0.0', port: 80, httpsPort: 0 } }), simpleTable(['valid.test', '*.x.test'], 100), certs, NOW);
    assert.equal(blocks(r).size, 2);
    for (const l of r.text.split('\n').filter((x) => x.trim().startsWith('listen '))) assert.doesNotMatch(l, /ssl|:0\b/);
    assert.doesNotMatch(r.text, /ssl_|return 308|:443/);
  });
});

describe('renderNginxConfig: nextChange', () => {
  const cases: Array<[string, NginxCert[], number]> = [
    ['no certificate: never', [], Infinity],
    ['one valid certificate: its end', [cert('a.test', ['a.test'], { to: NOW + 5 * DAY })], NOW + 5 * DAY],
    ['a future certificate: its start', [cert('a.test', ['a.test'], { to: NOW + 5 * DAY }), cert('b.test', ['b.test'], { from: NOW + 2 * DAY, to: NOW + 9 * DAY })], NOW + 2 * DAY],
    ['expired certificates: never', [cert('a.test', ['a.test'], { from: NOW - 9 * DAY, to: NOW - DAY }), cert('b.test', ['b.test'], { from: NOW - 9 * DAY, to: NOW })], Infinity],
    ['the earliest of many', [cert('a.test', ['a.test'], { to: NOW + 50 * DAY }), cert('b.test', ['b.test'], { to: NOW + 1000 }), cert('c.test', ['c.test'], { from: NOW + 2000, to: NOW + 60 * DAY })], NOW + 1000],
    ['a certificate for no renderable name still changes at its end', [cert('a"b.test', ['a"b.test'], { to: NOW + 3 * DAY })], NOW + 3 * DAY],
  ];
  for (const [name, certs, want] of cases) test(name, () => assert.equal(renderNginxConfig(plan(), simpleTable([]), certs, NOW).nextChange, want));

  test('property: nextChange is the least future notBefore/notAfter', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -100, max: 100 }), fc.integer({ min: 1, max: 100 })), { maxLength: 8 }), (spans) => {
        const certs = spans.map(([from, len], i) => cert(`c${i}.test`, [`c${i}.test`], { from: NOW + from * 3_600_000, to: NOW + (from + len) * 3_600_000 }));
        const future = certs.flatMap((c) => [Date.parse(c.notBefore), Date.parse(c.notAfter)]).filter((t) => t > NOW);
        assert.equal(renderNginxConfig(plan(), simpleTable([]), certs, NOW).nextChange, future.length ? Math.min(...future) : Infinity);
      }),
    );
  });
});

describe('renderNginxConfig: route ids', () => {
  const t = table({
    domains: [
      ['a.test', dom('s', 'web')],
      ['b.test', dom('s', 'web')],
      ['api.test', dom('s', 'api')],
      ['*.w.test', dom('t', 'web')],
      ['site.test', dom('s', 'site', 'website')],
      ['idle.test', dom('s', 'idle')],
    ],
    stacks: [{ name: 's', current: null }, { name: 't', current: null }],
    endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001), ep('s', 'web', 2, '10.0.0.2', 3001), ep('s', 'api', 1, '10.0.0.3', 3002), ep('t', 'web', 1, '10.0.0.4', 3003)],
  });
  for (const generation of [0, 1, 42, 123456]) {
    test(`generation ${generation}: <generation>.<n>, one per proxied route, each naming its route`, () => {
      const r = renderNginxConfig(plan({ generation }), t, [cert('z.w.test', ['z.w.test'])], NOW);
      const bs = blocks(r);
      const ids = [...r.routes.keys()];
      assert.deepEqual(ids.sort(), [0, 1, 2, 3].map((n) => `${generation}.${n}`).sort());
      const lookupName = (n: string): string => (n.startsWith('~') ? 'q.w.test' : n);
      const seen = new Set<string>();
      for (const [name, b] of bs) {
        const route = t.lookup(lookupName(name));
        if (b.routeId === undefined) {
          assert.ok(route?.kind !== 'container' || route.endpoints.length === 0, name);
          continue;
        }
        seen.add(b.routeId);
        assert.equal(r.routes.get(b.routeId), route, `${name} -> ${b.routeId}`);
      }
      assert.deepEqual([...seen].sort(), ids.sort(), 'every id is in a block');
      // The certificate-only name under the wildcard counts for the wildcard route.
      assert.equal(bs.get('z.w.test')!.routeId, bs.get(wildName('*.w.test'))!.routeId);
      assert.equal(r.routes.get(bs.get('z.w.test')!.routeId!)!.domain, '*.w.test');
      // Routes of the same node share its upstream.
      assert.equal(bs.get('a.test')!.pass, bs.get('b.test')!.pass);
      assert.notEqual(bs.get('a.test')!.pass, bs.get('api.test')!.pass);
      assert.equal(upstreamBodies(r.text).length, 3);
    });
  }
});

describe('renderNginxConfig: HSTS', () => {
  const t = table({
    domains: [
      ['hsts.test', dom('s', 'web')],
      ['also.test', dom('s', 'web')],
      ['plain.test', dom('s', 'api')],
      ['site.test', dom('s', 'site', 'website')],
      ['short.test', dom('u', 'web')],
    ],
    stacks: [{ name: 's', current: null, hsts: { web: 31_536_000, site: 600 } }, { name: 'u', current: null, hsts: { web: 0 } }],
    endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001), ep('s', 'api', 1, '10.0.0.2', 3002), ep('u', 'web', 1, '10.0.0.3', 3003)],
  });
  const r = renderNginxConfig(plan(), t, [], NOW);
  const bs = blocks(r);
  const cases: Array<[string, number | undefined]> = [
    ['hsts.test', 31_536_000],
    ['also.test', 31_536_000],
    ['plain.test', undefined],
    ['site.test', 600],
    ['short.test', 0],
  ];
  for (const [name, age] of cases) {
    test(`${name}: ${age === undefined ? 'no header' : `max-age=${age}`}`, () => {
      assert.equal(bs.get(name)!.hsts, age === undefined ? undefined : `$vk_hsts_${age}`);
      if (age !== undefined) assert.equal(r.text.split(`map $https $vk_hsts_${age} { on "max-age=${age}"; default ""; }`).length, 2, 'its map, once');
    });
  }
  test('no route with hsts: no header and no map', () => {
    const r2 = renderNginxConfig(plan(), simpleTable(['a.test']), [cert('a.test', ['a.test'])], NOW);
    assert.doesNotMatch(r2.text, /Strict-Transport-Security|vk_hsts/);
  });
});

describe('renderNginxConfig: forwarded-for and balancing', () => {
  const cases: Array<[string, string[], string | null]> = [
    ['none', [], null],
    ['one network', ['10.0.0.0/8'], 'geo $vk_trusted { default 0; 10.0.0.0/8 1; }'],
    ['addresses and networks, both families', ['192.0.2.7', ' 10.1.0.0/16 ', 'fd00::/8', '::1'], 'geo $vk_trusted { default 0; 192.0.2.7 1; 10.1.0.0/16 1; fd00::/8 1; ::1 1; }'],
    ['bad entries are dropped', ['10.0.0.0/8', 'bogus', '1.2.3.4/33', '1.2.3.4/8/9', '10.0.0.0/8; deny all', '*'], 'geo $vk_trusted { default 0; 10.0.0.0/8 1; }'],
    ['only bad entries: as none', ['bogus', '300.1.1.1', 'fd00::/129'], null],
  ];
  for (const [name, trusted, geo] of cases) {
    test(`trusted proxies: ${name}`, () => {
      const r = renderNginxConfig(plan({ trustedProxies: trusted }), simpleTable(['a.test']), [], NOW);
      if (geo) {
        assert.ok(r.text.includes(`\n  ${geo}\n`), r.text);
        assert.ok(r.text.includes('\n  map $vk_trusted $vk_forwarded_for { 1 $proxy_add_x_forwarded_for; default $remote_addr; }\n'));
        assert.doesNotMatch(r.text, /map \$remote_addr \$vk_forwarded_for/);
      } else {
        assert.ok(r.text.includes('\n  map $remote_addr $vk_forwarded_for { default $remote_addr; }\n'));
        assert.doesNotMatch(r.text, /geo |vk_trusted|proxy_add_x_forwarded_for/);
      }
      assert.equal(r.text.match(/\$vk_forwarded_for \{/g)?.length, 1, 'one definition');
    });
  }

  for (const balance of ['round-robin', 'least-conn'] as const) {
    test(`balance ${balance}: least_conn ${balance === 'least-conn' ? 'in every app upstream' : 'nowhere'}`, () => {
      const t = table({
        domains: [
          ['a.test', dom('s', 'web')],
          ['b.test', dom('s', 'api')],
        ],
        stacks: [{ name: 's', current: null }],
        endpoints: [ep('s', 'web', 1, '10.0.0.1', 3001), ep('s', 'api', 1, '10.0.0.2', 3002)],
      });
      const r = renderNginxConfig(plan({ balance }), t, [], NOW);
      const ups = upstreamBodies(r.text);
      assert.equal(ups.length, 2);
      for (const u of ups) assert.equal(/^ {4}least_conn;$/m.test(u), balance === 'least-conn', u);
      assert.equal(r.text.match(/least_conn/g)?.length ?? 0, balance === 'least-conn' ? 2 : 0);
    });
  }
});

// --- Property: whatever the table and certificates, nginx -t accepts the text ---------------------

const HOSTILE = ['a"b.test', 'a;b.test', 'x{y.test', '$host.test', 'a b.test', 'a\nb.test', 'bücher.test', `${'q'.repeat(70)}.test`, '*.*.test', 'UP.test', '}'];
const LABELS = ['a', 'b', 'www', 'api', 'x-1', '0', 'shop', 'z9', 'long-label-with-dashes'];

const nameArb = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.boolean(), fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 }), fc.constantFrom('test', 'example.com', 'x.test')).map(([wild, labels, tld]) => `${wild ? '*.' : ''}${labels.join('.')}.${tld}`) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE) },
);
const ipArb = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.0.${a}.${b}`) },
  { weight: 2, arbitrary: fc.nat(0xffff).map((n) => `fd00::${n.toString(16)}`) },
  { weight: 1, arbitrary: fc.constantFrom('app.internal', '10.0.0.1; x', '', 'unix:/s', '::ffff:10.0.0.1') },
);
const portArb = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 65535 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 65536, -5, 1.5, 99999) });
const caseArb = fc.record({
  domains: fc.array(fc.tuple(nameArb, fc.constantFrom('s', 't', 'u"x'), fc.constantFrom('web', 'api', 'site'), fc.boolean()), { maxLength: 12 }),
  endpoints: fc.array(fc.tuple(fc.constantFrom('s', 't', 'u"x'), fc.constantFrom('web', 'api'), fc.integer({ min: 1, max: 5 }), ipArb, portArb), { maxLength: 12 }),
  hsts: fc.option(fc.integer({ min: 0, max: 63_072_000 })),
  certs: fc.array(
    fc.record({ names: fc.array(nameArb, { minLength: 1, maxLength: 3 }), from: fc.integer({ min: -60, max: 10 }), len: fc.integer({ min: 1, max: 90 }), pair: fc.nat(2), badPath: fc.boolean() }),
    { maxLength: 6 },
  ),
  httpsPort: fc.constantFrom(0, 443, 8443),
  host: fc.constantFrom('0.0.0.0', '127.0.0.1', '::'),
  balance: fc.constantFrom('round-robin' as const, 'least-conn' as const),
  trusted: fc.subarray(['10.0.0.0/8', '192.0.2.1', 'fd00::/8', 'bogus', '1.1.1.1/40']),
  tlsResumption: fc.boolean(),
  ticketKey: fc.boolean(),
  log: fc.boolean(),
  drain: fc.boolean(),
  generation: fc.nat(1_000_000),
});

describe('renderNginxConfig: property', () => {
  let ca: TestCa;
  let dir: string;
  let pairs: Array<{ certFile: string; keyFile: string }>;
  let ticketKeyFile: string;
  before(async () => {
    ca = await makeTestCa();
    pairs = [await ca.leaf(['a.test']), await ca.leaf(['*.x.test', 'x.test']), ca];
    dir = await mkdtemp(path.join(os.tmpdir(), 'viking-nginx-conf-'));
    await mkdir(path.join(dir, 'logs'));
    await mkdir(path.join(dir, 'tmp'));
    ticketKeyFile = path.join(dir, 'ticket.key');
    await writeFile(ticketKeyFile, randomBytes(80));
  });
  after(async () => {
    await ca?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('random route tables and certificates: nginx -t accepts every rendering, no hostile name is written', async () => {
    const seed = Number(process.env.VIKING_FC_SEED) || (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
    const file = path.join(dir, 'nginx.conf');
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          n++;
          const snap: RouteSnapshot = {
            revision: String(n),
            domains: c.domains.map(([d, stack, node, site]) => [d, dom(stack, node, site && node === 'site' ? 'website' : 'container')]),
            stacks: ['s', 't', 'u"x'].map((name) => ({ name, current: null, ...(c.hsts !== null ? { hsts: { web: c.hsts } } : {}) })),
            endpoints: c.endpoints.map(([stack, node, i, ip, port]) => ep(stack, node, i, ip, port)),
            sites: [],
          };
          const certs = c.certs.map((k, i): NginxCert => {
            const pair = pairs[k.pair]!;
            return {
              domain: k.names[0]!,
              names: k.names,
              notBefore: iso(NOW + k.from * DAY),
              notAfter: iso(NOW + (k.from + k.len) * DAY),
              certFile: k.badPath && i % 2 === 0 ? `${pair.certFile} x` : pair.certFile,
              keyFile: pair.keyFile,
            };
          });
          const p = plan({
            prefix: dir,
            listen: { host: c.host, port: 18080, httpsPort: c.httpsPort },
            workers: 1,
            balance: c.balance,
            trustedProxies: c.trusted,
            tlsResumption: c.tlsResumption,
            ticketKeyFile: c.ticketKey ? ticketKeyFile : null,
            logFile: c.log ? path.join(dir, 'requests.log') : null,
            generation: c.generation,
            drainFile: c.drain ? path.join(dir, 'draining') : null,
          });
          const t = RouteTable.build(snap);
          const r = renderNginxConfig(p, t, certs, NOW);
          for (const h of HOSTILE) if (h.length > 1) assert.ok(!r.text.includes(h), `hostile ${JSON.stringify(h)} written`);
          const bs = blocks(r);
          for (const name of bs.keys()) assert.ok(name.startsWith('~^[a-z0-9-]+\\.') || isRenderableName(name), name);
          for (const id of r.routes.keys()) assert.match(id, new RegExp(`^${c.generation}\\.\\d+$`));
          await writeFile(file, r.text);
          try {
            await run(NGINX, ['-t', '-q', '-p', `${dir}/`, '-e', 'stderr', '-c', file], { timeout: 10_000 });
          } catch (e) {
            const err = e as { stderr?: string; message: string };
            assert.fail(`nginx -t refused the rendering: ${err.stderr || err.message}\n${r.text}`);
          }
        }),
        { numRuns: 25, seed, endOnFailure: true },
      );
    } catch (e) {
      throw new Error(`seed ${seed} (rerun with VIKING_FC_SEED=${seed}): ${(e as Error).message}`);
    }
    assert.equal(n, 25);
  });
});

/**
 * The pure parts of HTTPS: which certificate SNI picks (table-driven plus a
 * property: an exact name always beats a wildcard), which names cover a
 * domain, where a redirect goes, the `hsts:` key of the Vikingfile (errors
 * with line and column), the --https-port default, and the HSTS header line.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SniIndex, currentlyValid, type SniEntry } from '../../lib/certs/sni.js';
import { checkCertDomain, namesCover } from '../../lib/certs/custom.js';
import { httpsLocation, wantsRedirect } from '../../lib/router/tls-redirect.js';
import { hstsLine } from '../../lib/router/route-table.js';
import { httpsPortOf } from '../../lib/cli/commands/router-flags.js';
import { VikingfileError, parseVikingfile } from '../../lib/vikingfile/index.js';
import { VikingError } from '../../lib/errors.js';

const entry = (domain: string, names: string[], notAfter = '2099-01-01T00:00:00Z'): SniEntry => ({ domain, names, notBefore: '2000-01-01T00:00:00Z', notAfter });

describe('SniIndex', () => {
  const exact = entry('app.example.com', ['app.example.com', 'www.app.example.com']);
  const wild = entry('*.example.com', ['*.example.com']);
  const apex = entry('example.com', ['example.com', '*.example.com'], '2098-01-01T00:00:00Z');
  const index = new SniIndex([wild, exact, apex]);
  const cases: Array<[string | undefined, SniEntry | undefined]> = [
    ['app.example.com', exact],
    ['APP.Example.COM.', exact],
    ['www.app.example.com', exact],
    ['other.example.com', wild], // the record stored under *.example.com beats example.com's SAN *.example.com
    ['example.com', apex],
    ['a.b.example.com', undefined], // a wildcard covers one label only
    ['.example.com', undefined],
    ['example.org', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [name, want] of cases) test(`${String(name)} -> ${want?.domain ?? 'none'}`, () => assert.equal(index.lookup(name), want));

  test('property: a certificate naming the host exactly always beats any wildcard, whatever the order', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
    fc.assert(
      fc.property(label, label, fc.array(fc.nat(3), { maxLength: 6 }), (host, zone, noise) => {
        const name = `${host}.${zone}.test`;
        const ex = entry(`exact-${name}`, [name]);
        const wc = entry(`*.${zone}.test`, [`*.${zone}.test`], '2199-01-01T00:00:00Z');
        // Other exact names of the zone; the '-' keeps them from ever being the host (CI drew host "n0" and noise 0: two exact certificates).
        const others = noise.map((n) => entry(`other-${n}.${zone}.test`, [`other-${n}.${zone}.test`]));
        for (const list of [[ex, wc, ...others], [...others, wc, ex]]) assert.equal(new SniIndex(list).lookup(name), ex);
      }),
    );
  });

  test('currentlyValid', () => {
    assert.equal(currentlyValid(entry('a', [])), true);
    assert.equal(currentlyValid(entry('a', [], '2001-01-01T00:00:00Z')), false);
  });
});

describe('names and domains', () => {
  const cases: Array<[string[], string, boolean]> = [
    [['app.example.com'], 'app.example.com', true],
    [['*.example.com'], 'app.example.com', true],
    [['*.example.com'], 'a.b.example.com', false],
    [['*.example.com'], 'example.com', false],
    [['*.example.com'], '*.example.com', true],
    [['app.example.com'], '*.example.com', false],
  ];
  for (const [names, domain, want] of cases) test(`${names.join(',')} covers ${domain}: ${want}`, () => assert.equal(namesCover(names, domain), want));

  test('domains that cannot be a key segment or a TLS name are refused', () => {
    for (const bad of ['../etc', 'a/b', 'localhost', '*.*.example.com', 'a*.example.com', '', '-a.example.com', `${'a'.repeat(64)}.com`]) {
      assert.throws(() => checkCertDomain(bad), (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_BAD_REQUEST', bad);
    }
    assert.equal(checkCertDomain(' App.Example.COM. '), 'app.example.com');
    assert.equal(checkCertDomain('*.example.com'), '*.example.com');
  });
});

describe('redirects', () => {
  test('location keeps path and query, drops the Host port, adds the HTTPS port unless 443', () => {
    assert.equal(httpsLocation('Shop.Example.com:8080', '/a?b=c', 443), 'https://shop.example.com/a?b=c');
    assert.equal(httpsLocation('shop.example.com', '/', 8443), 'https://shop.example.com:8443/');
    assert.equal(httpsLocation('shop.example.com', 'http://evil.test/x', 443), 'https://shop.example.com/');
  });
  test('ACME challenges are never redirected', () => {
    assert.equal(wantsRedirect('/.well-known/acme-challenge/abc', true), false);
    assert.equal(wantsRedirect('/x', true), true);
    assert.equal(wantsRedirect('/x', false), false);
  });
});

describe('hsts: in the Vikingfile', () => {
  const file = (value: string): string => ['viking:', '  name: demo', 'deploy:', '  web:', '    image: viking/node', '    expose: 80', '    domains: [a.example.com]', `    hsts: ${value}`].join('\n');
  test('true, a number and false', () => {
    const web = (v: string): number | undefined => (parseVikingfile(file(v)).nodes[0] as { hsts?: number }).hsts;
    assert.equal(web('true'), 31_536_000);
    assert.equal(web('600'), 600);
    assert.equal(web('0'), 0);
    assert.equal(web('false'), undefined);
  });
  test('bad values name line and column', () => {
    for (const [v, kind, col] of [['-1', 'bad-value', 11], ['1.5', 'bad-value', 11], ['yes please', 'wrong-type', 11], ['99999999999', 'bad-value', 11]] as const) {
      try {
        parseVikingfile(file(v));
        assert.fail(`hsts: ${v} was accepted`);
      } catch (e) {
        assert.ok(e instanceof VikingfileError, String(e));
        assert.deepEqual(e.problems.map((p) => [p.kind, p.line, p.column]), [[kind, 8, col]], `hsts: ${v}: ${e.problems.map((p) => p.message).join('; ')}`);
        assert.match(e.problems[0]!.message, /hsts/);
      }
    }
  });
  test('websites take hsts: too', () => {
    const vf = parseVikingfile(['viking:', '  name: demo', 'deploy:', '  site:', '    type: website', '    document_root: www', '    domains: [s.example.com]', '    hsts: 60'].join('\n'));
    assert.equal((vf.nodes[0] as { hsts?: number }).hsts, 60);
  });
  test('header line only for sane values', () => {
    assert.equal(hstsLine(600), 'strict-transport-security: max-age=600\r\n');
    for (const bad of [-1, 1.5, '600', null, undefined, 1e12]) assert.equal(hstsLine(bad), '');
  });
});

describe('--https-port', () => {
  test('explicit, off, and any free port when the router port is 0', () => {
    assert.equal(httpsPortOf({ 'https-port': 9443 }, 80), 9443);
    assert.equal(httpsPortOf({ 'https-port': 0 }, 80), 0);
    assert.equal(httpsPortOf({}, 0), -1);
    assert.ok([443, 8443].includes(httpsPortOf({}, 80)));
    assert.throws(() => httpsPortOf({ 'https-port': 70000 }, 80), /--https-port/);
  });
});

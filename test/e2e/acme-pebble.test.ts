/**
 * Automatic certificates end to end, on real parts: two `viking host`
 * processes on one real etcd, Debian's pebble as the ACME CA and
 * pebble-challtestsrv as its DNS server. Pebble really validates HTTP-01 by
 * resolving the test name and fetching the token from the routers' port, so
 * a certificate only exists if a router answered from etcd.
 *
 * Pebble issues 40-second certificates here (its certificateValidityPeriod),
 * so renewal at two thirds of the lifetime happens for real within the test;
 * no clock is faked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../lib/store/client.js';
import { ACME_ISSUER_KEY, certKey, certStatusKey, domainKey, PREFIX } from '../../lib/store/keys.js';
import type { CertRecord, CertStatus } from '../../lib/certs/record.js';
import { freePort } from '../../lib/net.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { pebbleInstalled, startPebble, type Pebble } from '../helpers/pebble.js';
import { uniqueName, waitFor } from '../helpers/wait.js';

// Two loopback addresses of their own, so the routers share one port (pebble's httpPort) without other tests' hosts.
// The nginx twin (acme-pebble-nginx) gets two others: the pool runs both files at once, and every router binds the
// default HTTPS port 443 on its address.
const IPS = process.env.VIKING_TEST_ROUTER_ENGINE === 'nginx' ? (['127.0.31.4', '127.0.31.5'] as const) : (['127.0.31.2', '127.0.31.3'] as const);
const VALIDITY_S = 40;

let etcd: TestEtcd;
let client: Etcd3;
let pebble: Pebble;
let routerPort: number;
let dataDir: string;
const hosts: HostProcess[] = [];

async function startHost(ip: string): Promise<HostProcess> {
  const h = await startHostProcess({
    name: uniqueName('acme'),
    etcd: etcd.url,
    ip,
    dataDir: path.join(dataDir, ip),
    routerPort,
    env: { NODE_EXTRA_CA_CERTS: pebble.caFile },
    extra: ['--listen', ip, '--acme-email', 'ops@viking.test', '--acme-directory', pebble.directoryUrl, '--acme-issuer-ttl', '3', '--lease-ttl', '3', '--stop-grace', '0'],
  });
  hosts.push(h);
  return h;
}

const readJson = async <T>(key: string): Promise<T | null> => {
  const text = await client.get(key).string();
  return text ? (JSON.parse(text) as T) : null;
};
const issuerHost = async (): Promise<string | null> => (await readJson<{ host: string }>(ACME_ISSUER_KEY))?.host ?? null;
const hostAt = (name: string): HostProcess => hosts.find((h) => h.name === name)!;
const ipOf = (h: HostProcess): string => IPS[hosts.indexOf(h)]!;

/** Claims a domain the way a push would (a container route of some stack). */
async function addDomain(domain: string): Promise<void> {
  await client.put(domainKey(domain)).value(JSON.stringify({ stack: 'certs', node: 'web', kind: 'container' }));
}

/** A real TLS handshake with the issued record, checked by OpenSSL against pebble's root only. */
async function handshake(record: CertRecord, servername: string, root: string): Promise<{ authorized: boolean; error: string | null; subject: string }> {
  const server = tls.createServer({ cert: record.certPem, key: record.keyPem }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    return await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ca: [root], rejectUnauthorized: false }, () => {
        const peer = s.getPeerX509Certificate();
        resolve({ authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : null, subject: peer?.subjectAltName ?? '' });
        s.end();
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

/** A TLS handshake with a router's HTTPS port, checked against `root`. */
function routerHandshake(host: string, port: number, servername: string, root: string): Promise<{ authorized: boolean; error: string | null; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, servername, ca: [root], rejectUnauthorized: false }, () => {
      const peer = s.getPeerX509Certificate();
      resolve({ authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : null, fingerprint: peer?.fingerprint256 ?? '' });
      s.end();
    });
    s.setTimeout(3000, () => s.destroy(new Error('handshake timed out')));
    s.on('error', reject);
  });
}

before(async () => {
  assert.ok(pebbleInstalled(), 'pebble, pebble-challtestsrv and openssl must be installed (scripts/install-deps.sh)');
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-acme-'));
  etcd = await startTestEtcd('acme');
  client = connectEtcd(etcd.url);
  routerPort = await freePort(IPS[0]);
  pebble = await startPebble({ httpPort: routerPort, validitySeconds: VALIDITY_S });
  await startHost(IPS[0]);
  await startHost(IPS[1]);
});

after(async () => {
  for (const h of hosts) await h.stop('SIGKILL').catch(() => {});
  client?.close();
  await pebble?.stop();
  await etcd?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

let first: CertRecord;

test('the router of a host that is not the issuer answers the challenge the issuer put; pebble validates through it and the chain verifies against pebble\'s root', async () => {
  const issuer = await waitFor('an issuer to be elected', issuerHost, 15_000);
  const other = hosts.find((h) => h.name !== issuer)!;
  // DNS sends pebble to the other host's router only: the issuer's own router is never asked.
  await pebble.pointName('app.viking.test', ipOf(other));
  await addDomain('app.viking.test');
  first = await waitFor('a certificate for app.viking.test', () => readJson<CertRecord>(certKey('app.viking.test')), 60_000, 200);
  assert.equal(first.source, 'acme');
  assert.deepEqual(first.names, ['app.viking.test']);
  assert.match(first.issuer, /Pebble Intermediate CA/);
  const status = await readJson<CertStatus>(certStatusKey('app.viking.test'));
  assert.equal(status?.state, 'valid');
  // Pebble issued only after it fetched the token from app.viking.test:<router port>, which its DNS answers with the
  // other host's address, where nothing but that host's router listens.
  assert.match(pebble.log(), new RegExp(`Attempting to validate w/ HTTP: http://app\\.viking\\.test:${routerPort}/\\.well-known/acme-challenge/`));
  assert.doesNotMatch(other.output(), /acme: ordering/, 'the other host did not order');

  const root = await pebble.root();
  const verdict = await handshake(first, 'app.viking.test', root);
  assert.equal(verdict.error, null);
  assert.equal(verdict.authorized, true);
  assert.equal(verdict.subject, 'DNS:app.viking.test');
  // And link by link: leaf <- intermediate <- root.
  const [leafPem, interPem] = first.certPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter(Boolean);
  const leaf = new X509Certificate(leafPem!);
  const inter = new X509Certificate(interPem!);
  const rootCert = new X509Certificate(root);
  assert.ok(leaf.verify(inter.publicKey) && leaf.checkIssued(inter));
  assert.ok(inter.verify(rootCert.publicKey) && inter.checkIssued(rootCert));
  assert.equal(leaf.checkHost('app.viking.test'), 'app.viking.test');
  assert.equal(first.fingerprint, leaf.fingerprint256);
  // A pebble root it was not issued under does not verify it (the check can fail).
  assert.equal((await handshake(first, 'app.viking.test', inter.toString())).authorized, false);

  // Every router serves it over HTTPS, the issuer's and the other: verified against pebble's root.
  for (const h of hosts) {
    assert.ok(h.httpsPort > 0, `${h.name} serves HTTPS`);
    const served = await waitFor(`${h.name}'s router to serve the certificate`, async () => {
      const got = await routerHandshake(ipOf(h), h.httpsPort, 'app.viking.test', root).catch(() => null);
      return got?.fingerprint === first.fingerprint ? got : null;
    }, 15_000, 200);
    assert.equal(served.authorized, true, `${h.name}: ${served.error}`);
  }
});

test('a wildcard domain is marked failed with an error that says to add a custom certificate, and nothing is ordered', async () => {
  await addDomain('*.apps.viking.test');
  const status = await waitFor('a failed status for the wildcard', async () => {
    const s = await readJson<CertStatus>(certStatusKey('*.apps.viking.test'));
    return s?.state === 'failed' ? s : null;
  }, 20_000, 100);
  assert.match(status.lastError ?? '', /wildcard/);
  assert.match(status.lastError ?? '', /viking certs add '\*\.apps\.viking\.test' --cert FILE --key FILE/);
  assert.equal(await client.get(certKey('*.apps.viking.test')).string(), null);
  // An operator adds a certificate for it (what `viking certs add` writes): the failure no longer shows.
  const custom: CertRecord = { ...first, domain: '*.apps.viking.test', names: ['*.apps.viking.test'], source: 'custom', updatedAt: new Date().toISOString() };
  await client.put(certKey('*.apps.viking.test')).value(JSON.stringify(custom));
  await waitFor('the stale failure to go', async () => (await client.get(certStatusKey('*.apps.viking.test')).string()) === null, 20_000, 100);
  assert.equal((await readJson<CertRecord>(certKey('*.apps.viking.test')))?.source, 'custom', 'ACME never replaces a custom certificate');
});

test(`a ${VALIDITY_S}-second certificate is renewed at two thirds of its lifetime, before it expires`, async () => {
  const renewed = await waitFor('the certificate of app.viking.test to be renewed', async () => {
    const r = await readJson<CertRecord>(certKey('app.viking.test'));
    return r && r.fingerprint !== first.fingerprint ? r : null;
  }, VALIDITY_S * 1000 + 20_000, 250);
  const lifetime = Date.parse(first.notAfter) - Date.parse(first.notBefore);
  const renewedAt = Date.parse(renewed.updatedAt);
  assert.ok(renewedAt < Date.parse(first.notAfter), `renewed at ${renewed.updatedAt}, before the old one expired at ${first.notAfter}`);
  assert.ok(renewedAt >= Date.parse(first.notBefore) + (lifetime * 2) / 3 - 1000, `not renewed before two thirds of its life (${renewed.updatedAt})`);
  assert.ok(Date.parse(renewed.notAfter) > Date.parse(first.notAfter));
  assert.equal((await handshake(renewed, 'app.viking.test', await pebble.root())).authorized, true);
});

test('every router answers a challenge from etcd, and hostile challenge paths get 404', async () => {
  const token = 'Tk_' + 'a'.repeat(40);
  const keyAuth = `${token}.${'b'.repeat(43)}`;
  await client.put(`${PREFIX.acmeChallenge}${token}`).value(keyAuth);
  try {
    for (const ip of IPS) {
      const ask = (target: string, method = 'GET'): Promise<string> =>
        rawCallAt(ip, `${method} ${target} HTTP/1.1\r\nHost: app.viking.test\r\nConnection: close\r\n\r\n`);
      await waitFor(`router on ${ip} to answer the challenge`, async () => (await ask(`/.well-known/acme-challenge/${token}`)).endsWith(`\r\n\r\n${keyAuth}`), 10_000, 50);
      for (const bad of [
        `/.well-known/acme-challenge/${token.slice(0, 10)}`,
        `/.well-known/acme-challenge/${'A'.repeat(129)}`,
        `/.well-known/acme-challenge/${token}/`,
        `/.well-known/acme-challenge/${token}?x=1`,
        `/.well-known/acme-challenge/..%2f..%2fetc%2fpasswd`,
        `/.well-known/acme-challenge/${token}.x`,
        '/.well-known/acme-challenge/',
      ]) {
        assert.match(await ask(bad), /^HTTP\/1\.1 404 /, bad);
      }
      assert.match(await ask(`/.well-known/acme-challenge/${token}`, 'POST'), /^HTTP\/1\.1 404 /);
    }
  } finally {
    await client.delete().key(`${PREFIX.acmeChallenge}${token}`);
  }
});

test('a failed validation is recorded with its error, the failure count and the next try, and is not retried before it', async () => {
  // Nothing listens on this address: pebble's validation fails.
  await pebble.pointName('nowhere.viking.test', '127.0.31.9');
  await addDomain('nowhere.viking.test');
  const failed = await waitFor('a failed status for nowhere.viking.test', async () => {
    const s = await readJson<CertStatus>(certStatusKey('nowhere.viking.test'));
    return s?.state === 'failed' ? s : null;
  }, 60_000, 100);
  assert.equal(failed.failures, 1);
  assert.match(failed.lastError ?? '', /connect|refused|127\.0\.31\.9/i);
  const wait = Date.parse(failed.nextTryAt!) - Date.parse(failed.updatedAt);
  assert.ok(wait >= 4.9 * 60_000 && wait <= 5.1 * 60_000, `first backoff is 5 minutes (${wait} ms)`);
  assert.equal(await client.get(certKey('nowhere.viking.test')).string(), null);
  // Other changes wake the issuer meanwhile; the failed domain still waits for its time.
  await pebble.pointName('other.viking.test', IPS[0]);
  await addDomain('other.viking.test');
  await waitFor('other.viking.test issued', () => readJson<CertRecord>(certKey('other.viking.test')), 60_000, 200);
  const still = await readJson<CertStatus>(certStatusKey('nowhere.viking.test'));
  assert.deepEqual([still?.state, still?.failures, still?.nextTryAt], ['failed', 1, failed.nextTryAt]);
});

test('when the issuer is SIGKILLed, the other host takes the issuer lease and orders the next certificate', async () => {
  const issuer = (await issuerHost())!;
  const dying = hostAt(issuer);
  const survivor = hosts.find((h) => h !== dying)!;
  const killedAt = Date.now();
  await dying.stop('SIGKILL');
  const next = await waitFor('the survivor to become the issuer', async () => ((await issuerHost()) === survivor.name ? survivor.name : null), 20_000, 50);
  const tookOverMs = Date.now() - killedAt;
  assert.equal(next, survivor.name);
  await pebble.pointName('next.viking.test', ipOf(survivor));
  await addDomain('next.viking.test');
  const record = await waitFor('a certificate for next.viking.test', () => readJson<CertRecord>(certKey('next.viking.test')), 60_000, 200);
  assert.equal((await handshake(record, 'next.viking.test', await pebble.root())).authorized, true);
  assert.match(survivor.output(), /acme: next\.viking\.test: certificate issued/);
  console.log(`# issuer lease moved ${tookOverMs} ms after SIGKILL (issuer TTL 3 s)`);
});

test('no private key ever reaches a host log', () => {
  for (const h of hosts) {
    assert.doesNotMatch(h.output(), /PRIVATE KEY/);
    assert.match(h.output(), /acme:/);
  }
});

function rawCallAt(ip: string, head: string): Promise<string> {
  return rawCallTo(ip, routerPort, head);
}

function rawCallTo(host: string, port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.write(head));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

/**
 * Custom certificates through the real API (fastify on a real port, a real
 * etcd) and the real `viking certs` CLI: add (exact, wildcard, with an
 * intermediate), the typed errors for every kind of bad input (nothing is
 * stored then), list as a table and as JSON, remove. Every answer and every
 * line the CLI prints is searched for the private keys: they must never
 * appear.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { docker } from '../helpers/docker.js';
import { VIKING_BIN } from '../helpers/host-process.js';
import { makeTestCa, type Issued, type TestCa } from '../helpers/test-ca.js';
import { connectEtcd, readJSON } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { certKey, certPemPrefix } from '../../lib/store/keys.js';
import type { CertRecord, CertSummary } from '../../lib/certs/record.js';
import { checkCertificate } from '../../lib/certs/custom.js';
import { VikingError } from '../../lib/errors.js';

let etcd: TestEtcd;
let client: Etcd3;
let app: FastifyInstance;
let dir: string;
let token: string;
let base: string;
let ca: TestCa;
let other: TestCa;
/** Every private key made here: none may show up in any output. */
const secrets: string[] = [];
/** Everything the API answered and the CLI printed. */
const seen: string[] = [];

const D = 'certs-api.test';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VIKING_BIN, ...args, '--api', base, '--token', token], { env: { ...process.env, VIKING_CONFIG: path.join(dir, 'none.json') } }, (err, stdout, stderr) => {
      seen.push(stdout, stderr);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function api(method: string, url: string, body?: unknown, auth = true): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  seen.push(text);
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function files(name: string, c: { certPem: string; keyPem: string }): Promise<[string, string]> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await writeFile(cert, c.certPem);
  await writeFile(key, c.keyPem);
  return [cert, key];
}

const keyBody = (pem: string): string => pem.split('\n').filter((l) => l && !l.startsWith('-----'))[0]!;

let shop: Issued;
let star: Issued;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-certs-'));
  etcd = await startTestEtcd('certs-api');
  client = connectEtcd(etcd.url);
  app = createApi({ client, docker, dataDir: dir, hostName: 'certs-host', maxUploadBytes: 1 << 20, routerPort: 1 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  token = (await createToken(client, 'tester')).token;
  [ca, other] = await Promise.all([makeTestCa('Certs Test Root'), makeTestCa('Other Root')]);
  [shop, star] = await Promise.all([ca.leaf([`shop.${D}`, `www.shop.${D}`]), ca.leaf([`*.${D}`])]);
  secrets.push(shop.keyPem, star.keyPem);
});

after(async () => {
  await app?.close();
  client?.close();
  await etcd?.stop();
  await ca?.remove();
  await other?.remove();
  await rm(dir, { recursive: true, force: true });
  // The final check runs over everything every test printed or answered.
  for (const s of secrets) for (const out of seen) assert.ok(!out.includes(keyBody(s)), 'a private key showed up in an answer or CLI output');
});

test('certs routes need a token like every other route', async () => {
  for (const [m, u, b] of [['GET', '/v1/certs'], ['POST', '/v1/certs', { domain: `shop.${D}`, cert: shop.certPem, key: shop.keyPem }], ['DELETE', `/v1/certs/shop.${D}`]] as const) {
    const r = await api(m, u, b, false);
    assert.equal(r.status, 401);
    assert.equal((r.json as { code: string }).code, 'VIKING_E_UNAUTHORIZED');
  }
  assert.equal((await client.getAll().prefix(certPemPrefix).keys()).length, 0);
});

test('viking certs add stores an exact and a wildcard certificate; the list shows them without keys', async () => {
  const [c1, k1] = await files('shop', shop);
  const add = await cli('certs', 'add', `shop.${D}`, '--cert', c1, '--key', k1);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, new RegExp(`certificate for shop\\.${D.replace('.', '\\.')} added`));
  const [c2, k2] = await files('star', star);
  const addStar = await cli('certs', 'add', `*.${D}`, '--cert', c2, '--key', k2, '--json');
  assert.equal(addStar.code, 0, addStar.stderr);
  assert.deepEqual((JSON.parse(addStar.stdout) as CertSummary).names, [`*.${D}`]);

  const stored = await readJSON<CertRecord>(client, certKey(`shop.${D}`));
  assert.equal(stored?.source, 'custom');
  assert.equal(stored?.keyPem, shop.keyPem, 'the key is stored for the routers');
  assert.deepEqual(stored?.names, [`shop.${D}`, `www.shop.${D}`]);

  const table = await cli('certs');
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0]!, /^DOMAIN\s+NAMES\s+SOURCE\s+ISSUER\s+EXPIRES\s+STATE\s+LAST ERROR$/);
  assert.match(lines.find((l) => l.startsWith(`shop.${D}`)) ?? '', /custom\s+Certs Test Root\s+\d{4}-\d\d-\d\d \(\d+ days\)\s+custom\s+-$/);
  assert.ok(lines.some((l) => l.startsWith(`*.${D}`)));
  const json = JSON.parse((await cli('certs', '--json')).stdout) as CertSummary[];
  assert.deepEqual(json.map((c) => c.domain), [`*.${D}`, `shop.${D}`]);
  const listed = await api('GET', '/v1/certs');
  assert.equal(listed.status, 200);
  for (const c of listed.json as Array<Record<string, unknown>>) assert.deepEqual(Object.keys(c).sort(), ['domain', 'issuer', 'lastError', 'names', 'notAfter', 'source', 'state']);
});

test('a chain through an intermediate is accepted when it is in order, refused when it is not', async () => {
  const inter = await ca.intermediate('Certs Test Intermediate');
  const leaf = await ca.leaf([`chain.${D}`], { by: inter });
  secrets.push(leaf.keyPem, inter.keyPem);
  const ok = await api('POST', '/v1/certs', { domain: `chain.${D}`, cert: leaf.certPem + inter.certPem, key: leaf.keyPem });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal((ok.json as CertSummary).issuer, 'Certs Test Intermediate');
  const reversed = await api('POST', '/v1/certs', { domain: `chain.${D}`, cert: leaf.certPem + other.certPem, key: leaf.keyPem });
  assert.equal(reversed.status, 400);
  assert.equal((reversed.json as { code: string }).code, 'VIKING_E_CERT_CHAIN_INVALID');
});

test('bad input gets its own error code from the CLI and the API, and nothing is stored', async () => {
  const before = (await client.getAll().prefix(certPemPrefix).strings());
  const foreign = await other.leaf([`bad.${D}`]);
  const deep = await ca.leaf([`*.${D}`]);
  secrets.push(foreign.keyPem, deep.keyPem);
  const [sc] = await files('shop2', shop);
  const [, fk] = await files('foreign', foreign);
  const garbage = path.join(dir, 'garbage.pem');
  await writeFile(garbage, 'not a pem\n');
  const cases: Array<[string[], string]> = [
    [['certs', 'add', `shop.${D}`, '--cert', sc, '--key', fk], 'VIKING_E_CERT_KEY_MISMATCH'],
    [['certs', 'add', `shop.${D}`, '--cert', garbage, '--key', fk], 'VIKING_E_CERT_INVALID'],
    [['certs', 'add', `shop.${D}`, '--cert', sc, '--key', garbage], 'VIKING_E_CERT_KEY_INVALID'],
    [['certs', 'add', `other.${D}`, '--cert', sc, '--key', (await files('shop3', shop))[1]], 'VIKING_E_CERT_NAME_MISMATCH'],
    [['certs', 'add', `a.b.${D}`, ...(await files('deep', deep)).flatMap((f, i) => [i === 0 ? '--cert' : '--key', f])], 'VIKING_E_CERT_NAME_MISMATCH'],
    [['certs', 'add', '../etc', '--cert', sc, '--key', fk], 'VIKING_E_BAD_REQUEST'],
    [['certs', 'add', `shop.${D}`, '--cert', path.join(dir, 'missing.crt'), '--key', fk], 'VIKING_E_BAD_REQUEST'],
  ];
  for (const [args, code] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`error ${code}: `), args.join(' '));
  }
  assert.deepEqual(await client.getAll().prefix(certPemPrefix).strings(), before, 'no refused certificate changed etcd');
});

test('an expired or not yet valid certificate is refused with VIKING_E_CERT_INVALID', () => {
  const day = 86_400_000;
  for (const [now, why] of [[Date.now() + 30 * day, /expired on/], [Date.now() - 2 * day, /not valid before/]] as const) {
    assert.throws(
      () => checkCertificate(`shop.${D}`, shop.certPem, shop.keyPem, 'custom', now),
      (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_CERT_INVALID' && why.test(e.message),
    );
  }
  assert.equal(checkCertificate(`shop.${D}`, shop.certPem, shop.keyPem).source, 'custom');
});

test('viking certs rm removes a certificate; removing it again is NOT_FOUND', async () => {
  const r = await cli('certs', 'rm', `*.${D}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await client.get(certKey(`*.${D}`)).string(), null);
  const again = await cli('certs', 'rm', `*.${D}`);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /error VIKING_E_NOT_FOUND: /);
  const list = JSON.parse((await cli('certs', '--json')).stdout) as CertSummary[];
  assert.ok(!list.some((c) => c.domain === `*.${D}`));
});

/**
 * ACME HTTP-01 answers in the router on real parts: real etcd, a Router with
 * two real worker processes (the answers reach them over IPC) and one serving
 * in-process, and a real app behind a domain. The challenge path belongs to
 * the router: answered from etcd on both request paths (the raw fast path
 * hands it over), never proxied to the app, and 404 for anything that is not
 * a known base64url token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../lib/store/client.js';
import { acmeChallengeKey } from '../../lib/store/keys.js';
import { Router, type RouterEngine } from '../../lib/router/router.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { call, endpointFor, putRoute, rawCall, startBackend, type Backend } from '../helpers/router-fixtures.js';
import { uniqueName, waitFor } from '../helpers/wait.js';

let etcd: TestEtcd;
let client: Etcd3;
let app: Backend;
let dataDir: string;
const routers: Router[] = [];

/** router-acme-challenge-nginx.test.ts runs this file against the nginx engine (nginx passes the challenge path to the Node server, its fallback). */
const ENGINE = (process.env.VIKING_TEST_ROUTER_ENGINE ?? 'node') as RouterEngine;

const TOKEN = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA';
const KEY_AUTH = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;

before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-acme-router-'));
  etcd = await startTestEtcd('acme-router');
  client = connectEtcd(etcd.url);
  app = await startBackend('app');
  await putRoute(client, { stack: 'certs', current: 'v1', domains: ['app.test'], endpoints: [endpointFor('certs', 'web', 'v1', 1, app.port)] });
  for (const workers of [2, 0]) {
    // A data dir each: the nginx engine keeps its nginx (pid file, configuration) there.
    const r = new Router({ client, hostName: uniqueName('acme-router'), dataDir: path.join(dataDir, `w${workers}`), port: 0, host: '127.0.0.1', workers, engine: ENGINE });
    await r.start();
    routers.push(r);
  }
});

after(async () => {
  for (const r of routers) await r.stop();
  await app?.close();
  client?.close();
  await etcd?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

test('a challenge put in etcd is answered by every router, worker processes included, and never reaches the app', async () => {
  // The app answers any other path of the domain through the fast path.
  assert.equal((await call(routers[0]!.port, 'app.test', { path: '/x' })).status, 200);
  const hitsBefore = app.hits;
  await client.put(acmeChallengeKey(TOKEN)).value(KEY_AUTH);
  for (const r of routers) {
    // Several fresh connections, so each of the two workers (node:cluster hands them out in turn) is asked.
    for (let i = 0; i < 4; i++) {
      const answer = await waitFor(`router :${r.port} to answer the challenge`, async () => {
        const a = await call(r.port, 'app.test', { path: `/.well-known/acme-challenge/${TOKEN}` });
        return a.status === 200 ? a : null;
      }, 10_000, 25);
      assert.equal(answer.body, KEY_AUTH);
      assert.equal(answer.headers['content-type'], 'text/plain');
    }
    // Any Host, even one no app serves: the CA asks for the name being validated.
    assert.equal((await call(r.port, 'unknown.test', { path: `/.well-known/acme-challenge/${TOKEN}` })).body, KEY_AUTH);
    const head = await call(r.port, 'app.test', { path: `/.well-known/acme-challenge/${TOKEN}`, method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  }
  assert.equal(app.hits, hitsBefore, 'no challenge request was proxied to the app');
});

test('a router worker that died and was started again answers the challenges at once', async () => {
  await client.put(acmeChallengeKey(TOKEN)).value(KEY_AUTH);
  const r = routers[0]!;
  const [victim] = r.workerPids();
  process.kill(victim!, 'SIGKILL');
  await waitFor('a new worker listening in its place', () => r.workerPids({ listening: true }).length === 2 && !r.workerPids().includes(victim!), 15_000, 25);
  // Every connection, on either worker, gets the answer: the new one had it before it listened.
  const statuses = [];
  for (let i = 0; i < 8; i++) statuses.push((await call(r.port, 'app.test', { path: `/.well-known/acme-challenge/${TOKEN}` })).status);
  assert.deepEqual(statuses, Array(8).fill(200));
});

test('hostile challenge paths get 404 from the router and never reach the app', async () => {
  await client.put(acmeChallengeKey(TOKEN)).value(KEY_AUTH);
  const hitsBefore = app.hits;
  const bad = [
    'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', // well-formed, unknown
    TOKEN.slice(0, 15), // too short
    'A'.repeat(129), // too long
    `${TOKEN}/`,
    `${TOKEN}?a=b`,
    `${TOKEN}%00`,
    `..%2F..%2Fetc%2Fpasswd`,
    `${TOKEN}.x`,
    '',
    '%41'.repeat(20),
  ];
  for (const r of routers) {
    for (const tail of bad) {
      const res = await rawCall(r.port, `GET /.well-known/acme-challenge/${tail} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n`);
      // nginx's own parser refuses a NUL in the path (400) before any routing: the app is not reached either way.
      const refused = ENGINE === 'nginx' && tail.includes('%00') ? /^HTTP\/1\.1 400 / : /^HTTP\/1\.1 404 /;
      assert.match(res, refused, `${tail} -> ${res.slice(0, 40)}`);
      assert.ok(!res.includes(KEY_AUTH), tail);
    }
    const post = await rawCall(r.port, `POST /.well-known/acme-challenge/${TOKEN} HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    assert.match(post, /^HTTP\/1\.1 404 /);
  }
  assert.equal(app.hits, hitsBefore);
});

test('a value that is not a key authorization for its token is never served', async () => {
  const other = 'Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg';
  await client.put(acmeChallengeKey(other)).value('<script>alert(1)</script>');
  const token2 = 'b'.repeat(43);
  await client.put(acmeChallengeKey(token2)).value(`${token2}.${'c'.repeat(43)}`);
  // Once the valid one is served, the bad one (same read) was seen and refused.
  await waitFor('the valid answer', async () => (await call(routers[1]!.port, 'app.test', { path: `/.well-known/acme-challenge/${token2}` })).status === 200, 10_000, 25);
  assert.equal((await call(routers[1]!.port, 'app.test', { path: `/.well-known/acme-challenge/${other}` })).status, 404);
  await client.delete().key(acmeChallengeKey(other));
  await client.delete().key(acmeChallengeKey(token2));
});

test('a challenge removed from etcd is no longer answered', async () => {
  await client.delete().key(acmeChallengeKey(TOKEN));
  for (const r of routers) {
    await waitFor(`router :${r.port} to forget the challenge`, async () => {
      const statuses = await Promise.all([1, 2, 3, 4].map(() => call(r.port, 'app.test', { path: `/.well-known/acme-challenge/${TOKEN}` }).then((a) => a.status)));
      return statuses.every((s) => s === 404);
    }, 10_000, 25);
  }
});

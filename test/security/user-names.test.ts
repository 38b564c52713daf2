/**
 * Issue 9, item 3: user names used as object keys.
 *
 * The attack: a user pushed a stack whose node is named `constructor`.
 * `'constructor' in websites` was true, so its domain was recorded as a
 * website whose document root was Object itself; the route feed threw on
 * every rebuild, every router of the cluster stayed on an old revision, and
 * the next release of another stack got 502s once its old containers left.
 *
 * Replayed here against real processes: a real etcd, a real `viking host`
 * (router, API, slave, builder) on the real Docker Engine, real pushes
 * through the CLI. The `constructor` stack works end to end; another
 * stack's next release is served; the router's acknowledged revision moves
 * on. Then the records an older viking wrote (and other malformed ones) are
 * put straight into etcd: the router leaves them out, logs why, `viking ps`
 * shows why, and keeps routing everybody else.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { routerGet } from '../helpers/http.js';
import { helloCopy } from '../helpers/hello.js';
import { connectEtcd } from '../../lib/store/client.js';
import { routerKey } from '../../lib/store/keys.js';
import type { RouterAck } from '../../lib/store/records.js';
import type { Etcd3 } from 'etcd3';

let etcd: TestEtcd;
let client: Etcd3;
let host: HostProcess;
let work: string;
const hostName = uniqueName('sec-names');
const good = uniqueName('good');
const evil = uniqueName('evil');
const goodDomain = `${good}.test`;
const evilDomain = `${evil}.test`;

/** hello with one replica, its node renamed and extra env, to keep the test quick. */
const copy = (dir: string, stack: string, message: string, edit: (vf: string) => string = (v) => v): Promise<string> =>
  helloCopy({ dir: path.join(work, dir), stack, message, domain: `${stack}.test`, edit: (vf) => edit(vf.replace('scale: 2', 'scale: 1')) });

const evilEdit = (vf: string): string =>
  vf.replace('  web:', '  constructor:').replace('      GREETING: Hello', '      GREETING: Hello\n      toString: t\n      valueOf: v\n      hasOwnProperty: h\n      constructor: c');

const push = async (dir: string): Promise<{ code: number; stdout: string; stderr: string }> => runCli(['push', dir, '--api', host.api]);

async function ackedRevision(): Promise<bigint> {
  const text = await client.get(routerKey(hostName)).string();
  return text ? BigInt((JSON.parse(text) as RouterAck).revision) : 0n;
}

async function etcdRevision(): Promise<bigint> {
  const res = await client.get('/nothing').exec();
  return BigInt(res.header.revision);
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-sec-names-'));
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  host = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data') });
});

after(async () => {
  await host?.stop();
  await removeHostContainers(hostName);
  for (const s of [good, evil]) await removeStackArtifacts(s);
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('a stack whose node is named constructor deploys and routes, and another stack\'s next release is served', async () => {
  const g1 = await push(await copy('g1', good, 'good v1'));
  assert.equal(g1.code, 0, `${g1.stdout}\n${g1.stderr}`);
  await waitFor('good v1 served', async () => /good v1/.test((await routerGet({ port: host.routerPort, host: goodDomain })).body));

  const e1 = await push(await copy('e1', evil, 'evil v1', evilEdit));
  assert.equal(e1.code, 0, `the constructor stack must deploy:\n${e1.stdout}\n${e1.stderr}`);
  // It works end to end: routed as the container node it is, with its env names intact.
  const evilRes = await waitFor('the constructor node served', async () => {
    const res = await routerGet({ port: host.routerPort, host: evilDomain });
    return res.status === 200 && /evil v1/.test(res.body) ? res : undefined;
  });
  assert.match(evilRes.body, /from constructor-1-v1/);
  const [c] = await docker.listContainers({ filters: { label: [`viking.host=${hostName}`, `viking.stack=${evil}`] } });
  assert.ok(c, 'the constructor container runs');
  const env = (await docker.getContainer(c.Id).inspect()).Config.Env;
  for (const kv of ['toString=t', 'valueOf=v', 'hasOwnProperty=h', 'constructor=c']) assert.ok(env.includes(kv), `${kv} in ${env.join(' ')}`);
  const domainRec = JSON.parse((await client.get(`/domains/${evilDomain}`).string())!) as { kind: string };
  assert.equal(domainRec.kind, 'container', 'a container node is never recorded as a website');

  // The other stack's next release: served, never a 502, and the router's revision moves past the switch.
  const g2 = await push(await copy('g2', good, 'good v2'));
  assert.equal(g2.code, 0, `${g2.stdout}\n${g2.stderr}`);
  const switched = await etcdRevision();
  await waitFor('the router to acknowledge the new release', async () => (await ackedRevision()) >= switched);
  for (let i = 0; i < 20; i++) {
    const res = await routerGet({ port: host.routerPort, host: goodDomain });
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /good v2/);
  }
});

test('records an older viking wrote, and malformed ones, are left out with a reason; everyone else keeps routing', async () => {
  const before = await ackedRevision();
  // What the old code wrote for a container node named constructor, plus other breakage.
  await client.put(`/domains/${evilDomain}`).value(JSON.stringify({ stack: evil, node: 'constructor', kind: 'website' }));
  await client.put(`/domains/bad-${evilDomain}`).value('{"stack": 42, "node": "__proto__", "kind": "toString"}');
  await client.put(`/ports/${evil}/constructor/80/tcp/127.0.0.1/1/v9.1`).value(JSON.stringify({ stack: evil, node: 'constructor', ip: { toString: 1 } }));
  await client.put(`/domains/junk-${evilDomain}`).value('not json at all');
  const wrote = await etcdRevision();
  await waitFor('the router to move past the bad records', async () => (await ackedRevision()) >= wrote);
  assert.ok((await ackedRevision()) > before);

  const res = await routerGet({ port: host.routerPort, host: goodDomain });
  assert.equal(res.status, 200);
  assert.match(res.body, /good v2/);
  // Only the bad record's own domain stops routing.
  assert.equal((await routerGet({ port: host.routerPort, host: evilDomain })).status, 404);

  // A new release of the good stack still goes live through the router.
  const g3 = await push(await copy('g3', good, 'good v3'));
  assert.equal(g3.code, 0, `${g3.stdout}\n${g3.stderr}`);
  const switched = await etcdRevision();
  await waitFor('the router to acknowledge good v3', async () => (await ackedRevision()) >= switched);
  const v3 = await routerGet({ port: host.routerPort, host: goodDomain });
  assert.equal(v3.status, 200, v3.body);
  assert.match(v3.body, /good v3/);

  // The router says why, and so does viking ps.
  await waitFor('the router log to name the bad records', () =>
    [`/domains/${evilDomain} left out`, `/domains/bad-${evilDomain} left out`, `/domains/junk-${evilDomain} left out`, `/ports/${evil}/constructor/80/tcp/127.0.0.1/1/v9.1 left out`].every((s) => host.output().includes(s)),
  );
  assert.match(host.output(), /routing: the record is not JSON \(\/domains\/junk-/);
  const ps = await runCli(['ps', evil, '--api', host.api, '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = JSON.parse(ps.stdout) as Array<{ node: string; reason: string | null }>;
  assert.ok(rows.some((r) => r.node === 'constructor' && /does not declare as a website/.test(r.reason ?? '')), ps.stdout);
  const all = await runCli(['ps', '--api', host.api]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /unroutable/, 'a record naming no valid stack gets a row of its own');
});

test('__proto__ and other prototype names are refused at their line and column, or by the API', async () => {
  const nodeProto = await push(await copy('p1', uniqueName('proto'), 'x', (vf) => vf.replace('  web:', '  __proto__:')));
  assert.notEqual(nodeProto.code, 0);
  assert.match(nodeProto.stderr + nodeProto.stdout, /VIKING_E_VIKINGFILE_INVALID.*Vikingfile:\d+:3: node name '__proto__'/);
  const envProto = await push(await copy('p2', uniqueName('proto'), 'x', (vf) => vf.replace('      GREETING: Hello', '      GREETING: Hello\n      __proto__: x')));
  assert.notEqual(envProto.code, 0);
  assert.match(envProto.stderr + envProto.stdout, /Vikingfile:\d+:7: env name '__proto__' is reserved/);
  const envSet = await runCli(['env', good, 'set', '__proto__=x', '--api', host.api]);
  assert.notEqual(envSet.code, 0);
  assert.match(envSet.stderr, /VIKING_E_BAD_REQUEST.*__proto__/);
  // Straight to the API, past the CLI: a 400 with a code, nothing changed.
  const res = await fetch(`${host.api}/v1/env/${good}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${host.token}`, 'content-type': 'application/json' },
    body: '{"set":{"__proto__":"x"}}',
  });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { code: string }).code, /^VIKING_E_/);
  const rec = JSON.parse((await client.get(`/stack/${good}`).string())!) as { env?: Record<string, string> };
  assert.deepEqual(Object.keys(rec.env ?? {}), []);
});

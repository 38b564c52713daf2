/**
 * One job state for ps, info, allocate and /metrics (issue 17): against a real
 * etcd, listJobs (ps, info, /metrics) and allocate (viking allocate, the
 * dashboard's replica page) agree with dispatch's own verdict (jobState):
 * - a stateless job on a draining host is moved by dispatch, so allocate
 *   plans it elsewhere (it used to report it placed on the draining host);
 * - a volume job on a dead host whose pin was removed (viking hosts rm) is
 *   moved by dispatch, so ps says lost (it used to say waiting-host);
 * - a volume job on a dead host it is pinned to waits for it in both.
 * No Docker: the keys are written as dispatch and the hosts would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { uniqueName } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { deployKey, drainKey, fixedKey, hostKey, procKey, runKey } from '../../lib/store/keys.js';
import { listJobs } from '../../lib/api/status.js';
import { allocate } from '../../lib/api/allocate.js';
import { diffDispatch } from '../../lib/dispatch/reconcile.js';
import { readSnapshot } from '../../lib/dispatch/snapshot.js';
import { jobPath } from '../../lib/store/keys.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';

const stack = uniqueName('js');
let etcd: TestEtcd;
let client: Etcd3;

const hostRec = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
});
const job = (node: string, volumes: string[] = []): JobSpec => ({
  stack, tag: 'v1', node, instance: 1, image: 'img', expose: [], volumes, env: {}, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
});

before(async () => {
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  for (const h of ['up', 'draining']) await client.put(hostKey(h)).value(JSON.stringify(hostRec(h)));
  await client.put(drainKey('draining')).value('');
  const place = async (j: JobSpec, host: string): Promise<void> => {
    await client.put(procKey(j)).value(JSON.stringify(j));
    await client.put(deployKey(host, j)).value('');
  };
  await place(job('web'), 'draining');
  await place(job('db', ['/data']), 'gone');
  await place(job('pinned', ['/data']), 'gone');
  await client.put(fixedKey(stack, 'pinned')).value('gone');
});

after(async () => {
  client?.close();
  await etcd?.stop();
});

test('a stateless job on a draining host: dispatch moves it, allocate plans it on another host', async () => {
  const diff = diffDispatch(await readSnapshot(client));
  assert.ok(diff.toMove.some((p) => p.job.node === 'web'));
  const a = await allocate(client, stack, 'v1', 'web');
  assert.deepEqual(a.replicas, [{ instance: 1, host: 'up', status: 'planned', reasons: [] }]);
  assert.deepEqual(a.hosts.map((h) => [h.host, h.fits]), [['up', true], ['draining', false]]);
});

test('a volume job on a dead host without its pin: dispatch moves it, ps says lost, allocate plans it', async () => {
  const diff = diffDispatch(await readSnapshot(client));
  assert.ok(diff.toMove.some((p) => jobPath(p.job) === jobPath(job('db'))));
  const row = (await listJobs(client, stack)).find((r) => r.node === 'db');
  assert.equal(row?.state, 'lost');
  assert.equal(row?.host, 'gone');
  assert.equal((await allocate(client, stack, 'v1', 'db')).replicas[0]?.status, 'planned');
});

test('a volume job on the dead host it is pinned to waits for it, in dispatch, ps and allocate alike', async () => {
  const diff = diffDispatch(await readSnapshot(client));
  assert.ok(diff.waiting.some((p) => p.job.node === 'pinned'));
  assert.equal((await listJobs(client, stack)).find((r) => r.node === 'pinned')?.state, 'waiting-host');
  assert.equal((await allocate(client, stack, 'v1', 'pinned')).replicas[0]?.status, 'waiting-host');
  // And ps of the whole cluster (what /metrics counts) says the same as ps of the stack.
  const all = (await listJobs(client)).filter((r) => r.stack === stack).map((r) => [r.node, r.state]);
  assert.deepEqual(all.sort(), [['db', 'lost'], ['pinned', 'waiting-host'], ['web', 'placed']]);
});

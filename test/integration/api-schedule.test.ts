/**
 * The pieces every rollout shares, against a real etcd: the per-stack lock
 * (a second change is refused while one runs, and the lock goes with it),
 * which older jobs a release retires (services it did not restart stay),
 * and how replicas and env are derived from a release's node spec.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { connectEtcd } from '../../lib/store/client.js';
import { withStackLock, readStackLock } from '../../lib/rollout/lock.js';
import { retireOldJobs, writeJobs } from '../../lib/rollout/rollout.js';
import { effectiveScale, jobsFromTemplate } from '../../lib/rollout/jobs.js';
import { procKey, stackLockKey } from '../../lib/store/keys.js';
import type { NodeTemplate } from '../../lib/store/records.js';
import { VikingError } from '../../lib/errors.js';

let etcd: TestEtcd;
let client: Etcd3;

const web: NodeTemplate = { node: 'web', image: 'img', expose: [80], volumes: [], env: { A: '1', B: '2' }, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2 };

before(async () => {
  etcd = await startTestEtcd('sched');
  client = connectEtcd(etcd.url);
});

after(async () => {
  client?.close();
  await etcd?.stop();
});

test('one change of a stack at a time: the second is refused with who holds it, and the lock goes with the first', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const first = withStackLock(client, 'shop', { what: 'push', by: 'alice', host: 'h1' }, async () => {
    await held;
    return 'done';
  });
  assert.equal((await waitFor('the first change to hold the lock', () => readStackLock(client, 'shop'), 5000)).by, 'alice');
  let ran = false;
  await assert.rejects(
    withStackLock(client, 'shop', { what: 'scale web=3', by: 'bob', host: 'h2' }, async () => {
      ran = true;
    }),
    (e: VikingError) => e.code === 'VIKING_E_STACK_BUSY' && /push by alice on h1 since/.test(e.message),
  );
  assert.equal(ran, false);
  // Other stacks are not held up.
  assert.equal(await withStackLock(client, 'other', { what: 'push', by: 'bob', host: 'h2' }, async () => 'ok'), 'ok');
  release();
  assert.equal(await first, 'done');
  assert.equal(await client.get(stackLockKey('shop')).string(), null);
  // A failing change frees the lock too.
  await assert.rejects(withStackLock(client, 'shop', { what: 'rm', by: 'bob', host: 'h2' }, async () => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(await client.get(stackLockKey('shop')).string(), null);
});

test('a release retires older jobs of the nodes it started and of nodes gone from it, not services it left running', async () => {
  const db: NodeTemplate = { ...web, node: 'db', service: true, scale: 1 };
  const gone: NodeTemplate = { ...web, node: 'gone', scale: 1 };
  await writeJobs(client, [
    ...jobsFromTemplate(web, 'shop', 'v1'),
    ...jobsFromTemplate(db, 'shop', 'v1'),
    ...jobsFromTemplate(gone, 'shop', 'v1'),
    ...jobsFromTemplate(web, 'shop', 'v2'),
    ...jobsFromTemplate(web, 'shopping', 'v1'),
  ]);
  const retired = await retireOldJobs(client, 'shop', 'v2', new Set(['web']), new Set(['web', 'db']));
  assert.equal(retired, 3);
  const left = (await client.getAll().prefix('/proc/').keys()).sort();
  assert.deepEqual(left, ['/proc/shop/v1/db/1', '/proc/shop/v2/web/1', '/proc/shop/v2/web/2', '/proc/shopping/v1/web/1', '/proc/shopping/v1/web/2']);
  assert.ok(await client.get(procKey({ stack: 'shopping', tag: 'v1', node: 'web', instance: 1 })).string(), 'another stack with a longer name is untouched');
});

test('replicas and env from a release\'s node spec', () => {
  const jobs = jobsFromTemplate(web, 'shop', 'v3', 3, { B: 'override', C: '3' });
  assert.deepEqual(jobs.map((j) => [j.instance, j.scale, j.tag]), [[1, 3, 'v3'], [2, 3, 'v3'], [3, 3, 'v3']]);
  assert.deepEqual(jobs[0]!.env, { A: '1', B: 'override', C: '3' });
  assert.deepEqual(web.env, { A: '1', B: '2' }, 'the template is not changed');
  // `viking scale` holds while the Vikingfile keeps the scale it was made against; a push that changes it wins.
  assert.equal(effectiveScale(web, undefined), 2);
  assert.equal(effectiveScale(web, { replicas: 5, declared: 2 }), 5);
  assert.equal(effectiveScale({ ...web, scale: 3 }, { replicas: 5, declared: 2 }), 3);
  assert.equal(effectiveScale({ ...web, scale: 3 }, { replicas: 5, declared: 2 }, true), 5, 'rollback and env keep it');
});

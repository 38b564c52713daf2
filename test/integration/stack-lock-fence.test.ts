/**
 * The stack lock is a fence, against a real etcd: once an operation's lock
 * is gone (its lease expired while the API host was paused or cut off) and
 * another operation holds the stack, every rollout write of the first is
 * refused with VIKING_E_STACK_LOCK_LOST and nothing of it lands. And what a
 * dead operation left (jobs of a release that never switched, older jobs a
 * switch had not retired yet) is settled by the next lock holder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { connectEtcd } from '../../lib/store/client.js';
import { withStackLock } from '../../lib/rollout/lock.js';
import { claimAndSwitch, retireOldJobs, writeJobs } from '../../lib/rollout/rollout.js';
import { updateStack, emptyStack } from '../../lib/rollout/stacks.js';
import { procKey, procStackPrefix, stackKey, stackLockKey } from '../../lib/store/keys.js';
import type { JobSpec, ReleaseRecord, StackRecord } from '../../lib/store/records.js';
import { VikingError } from '../../lib/errors.js';

let etcd: TestEtcd;
let client: Etcd3;

before(async () => {
  etcd = await startTestEtcd('lock-fence');
  client = connectEtcd(etcd.url);
});
after(async () => {
  client?.close();
  await etcd?.stop();
});

const job = (stack: string, tag: string, node: string, extra: Partial<JobSpec> = {}): JobSpec => ({
  stack, tag, node, instance: 1, image: 'img', expose: [], volumes: [], env: {}, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1, ...extra,
});
const release = (tag: string): ReleaseRecord => ({ tag, number: Number(tag.slice(1)), at: new Date().toISOString(), by: 't', images: {}, source: '/x', builtOn: 'h' });
const lockLost = (e: unknown): boolean => e instanceof VikingError && e.code === 'VIKING_E_STACK_LOCK_LOST';

/** What the stack is at v1, with its one job. */
async function stackAtV1(stack: string): Promise<void> {
  await client.put(stackKey(stack)).value(JSON.stringify({ ...emptyStack(stack), current: 'v1', lastRelease: 1, releases: [release('v1')] } satisfies StackRecord));
  await client.put(procKey(job(stack, 'v1', 'web'))).value(JSON.stringify(job(stack, 'v1', 'web')));
}

test('a push whose lock was taken over writes nothing more: jobs, switch, retirement and stack updates are refused', async () => {
  const stack = 'zombie';
  await stackAtV1(stack);
  const seen: string[] = [];
  await withStackLock(client, stack, { what: 'push', by: 'a', host: 'h1' }, async () => {
    // Our lease ends (as after a long pause) and another push takes the stack.
    const lease = (await client.get(stackLockKey(stack)).exec()).kvs[0]!.lease;
    await client.leaseClient.leaseRevoke({ ID: lease });
    await client.put(stackLockKey(stack)).value(JSON.stringify({ stack, what: 'push', by: 'b', host: 'h2', since: new Date().toISOString() }));

    await assert.rejects(writeJobs(client, [job(stack, 'v2', 'web')]), lockLost);
    seen.push('writeJobs');
    await assert.rejects(claimAndSwitch(client, stack, release('v2'), { domains: { web: ['zombie.test'] }, websites: {} }), lockLost);
    seen.push('claimAndSwitch');
    await assert.rejects(retireOldJobs(client, stack, 'v2', new Set(['web']), new Set(['web'])), lockLost);
    seen.push('retireOldJobs');
    await assert.rejects(updateStack(client, stack, (s) => ({ ...s, env: { X: '1' } })), lockLost);
    seen.push('updateStack');
  });
  assert.deepEqual(seen, ['writeJobs', 'claimAndSwitch', 'retireOldJobs', 'updateStack']);
  const record = JSON.parse((await client.get(stackKey(stack)).string())!) as StackRecord;
  assert.equal(record.current, 'v1', 'the stack was not switched');
  assert.deepEqual(record.env ?? {}, {}, 'nor updated');
  assert.equal(await client.get('/domains/zombie.test').string(), null, 'no domain claimed');
  assert.deepEqual(Object.keys(await client.getAll().prefix(procStackPrefix(stack)).strings()), [procKey(job(stack, 'v1', 'web'))], 'v1 kept, no v2 job written');
  await client.delete().key(stackLockKey(stack));
});

test('writeJobs writes a large release in full under its lock, and none of it once the lock is lost, whatever is in flight', async () => {
  const jobs = (stack: string): JobSpec[] => Array.from({ length: 2500 }, (_, i) => job(stack, 'v1', `n${Math.floor(i / 10)}`, { instance: (i % 10) + 1 }));
  await withStackLock(client, 'bulk', { what: 'push', by: 'a', host: 'h1' }, () => writeJobs(client, jobs('bulk')));
  assert.equal((await client.getAll().prefix(procStackPrefix('bulk')).keys()).length, 2500, 'every batch landed');

  await withStackLock(client, 'bulk-lost', { what: 'push', by: 'a', host: 'h1' }, async () => {
    const lease = (await client.get(stackLockKey('bulk-lost')).exec()).kvs[0]!.lease;
    await client.leaseClient.leaseRevoke({ ID: lease });
    await client.put(stackLockKey('bulk-lost')).value('{}');
    await assert.rejects(writeJobs(client, jobs('bulk-lost')), lockLost);
  });
  assert.equal((await client.getAll().prefix(procStackPrefix('bulk-lost')).keys()).length, 0, 'no batch landed after the lock was lost');
  await client.delete().key(stackLockKey('bulk-lost'));
});

test('the next lock holder settles a rollout that died: unswitched jobs withdrawn, unretired ones retired, services kept', async () => {
  const stack = 'orphans';
  await stackAtV1(stack);
  // A push of v2 died after writing its jobs (before its switch); an old service of v0 runs on purpose.
  const left = [job(stack, 'v2', 'web'), job(stack, 'v2', 'worker'), job(stack, 'v0', 'queue', { service: true })];
  for (const j of left) await client.put(procKey(j)).value(JSON.stringify(j));
  const settled = await withStackLock(client, stack, { what: 'push', by: 'c', host: 'h1' }, async ({ settled }) => settled);
  assert.deepEqual(settled, { removed: 2, tags: ['v2'] });
  assert.deepEqual(
    Object.keys(await client.getAll().prefix(procStackPrefix(stack)).strings()).sort(),
    [procKey(job(stack, 'v0', 'queue')), procKey(job(stack, 'v1', 'web'))].sort(),
  );
});

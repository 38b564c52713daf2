/**
 * The leader role against a real etcd member: campaigning is single-flight
 * (a stale vacancy watcher cannot start a second round, a second `elected`
 * or a second Dispatcher), and a write the leader fence refuses is counted,
 * logged and makes the host step down at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd, watchedPrefixes } from '../../lib/store/client.js';
import { LEADER_KEY, PREFIX, procKey, runKey } from '../../lib/store/keys.js';
import { LeaderElection } from '../../lib/leader/election.js';
import { LeaderRole } from '../../lib/leader/leader.js';
import { HostLease } from '../../lib/host/host-lease.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';
import { hostOfJob } from '../../lib/store/placements.js';

let etcd: TestEtcd;
let client: Etcd3;

before(async () => {
  etcd = await startTestEtcd('leader-role');
  client = connectEtcd(etcd.url);
});
after(async () => {
  client?.close();
  await etcd?.stop();
});

const hostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
});

const job = (stack: string, node: string, instance: number): JobSpec => ({
  stack, tag: 'v1', node, instance, image: 'viking/busybox', expose: [], volumes: [], env: {}, service: false,
  tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
});

async function leaseIds(): Promise<Set<string>> {
  const res = await client.leaseClient.leaseLeases();
  return new Set(res.leases.map((l) => String(l.ID)));
}

/** The vacancy watcher a waiting candidate holds (private; read to know the wait has begun). */
const waiterOf = (e: LeaderElection): unknown => (e as unknown as { waiter?: unknown }).waiter;

test('a stale vacancy watcher cannot run a second campaign: one elected, one Dispatcher', async () => {
  const holder = new LeaderElection(client, 'vac-holder', 2);
  holder.start();
  await waitFor('the holder to lead', () => holder.current);
  const before = await leaseIds();

  // A campaigns on its own client, so its watches can be counted apart.
  const aClient = connectEtcd(etcd.url);
  const logs: string[] = [];
  const a = new LeaderRole(aClient, 'vac-a', { ttlSeconds: 2, log: (m) => logs.push(m) });
  let elected = 0;
  a.election.on('elected', () => elected++);
  try {
    a.start();
    const firstLease = await waitFor('A to hold a lease', async () => [...(await leaseIds())].find((id) => !before.has(id)));
    const firstWaiter = await waitFor('A to wait for a vacancy', () => waiterOf(a.election));

    // A's lease is lost while it waits (as when etcd was unreachable for 2 TTLs): it campaigns again.
    await client.leaseClient.leaseRevoke({ ID: firstLease });
    await waitFor('A to wait again, on a new lease', async () => {
      const ids = await leaseIds();
      const w = waiterOf(a.election);
      return !ids.has(firstLease) && [...ids].some((id) => !before.has(id)) && w && w !== firstWaiter;
    });

    // The holder goes: every watcher A ever made sees the delete.
    await holder.resign();
    await waitFor('A to lead', () => a.isLeader);
    await waitFor('its Dispatcher to watch /proc', () => watchedPrefixes(aClient).includes(PREFIX.proc));
    // Give a second campaign round (the old bug) the time to finish and start its Dispatcher too.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(elected, 1, `elected once, not ${elected} times`);
    assert.equal(watchedPrefixes(aClient).filter((p) => p === PREFIX.proc).length, 1, `one Dispatcher watches /proc: ${watchedPrefixes(aClient).join(' ')}`);
    assert.equal(a.stats.dispatchersStarted, 1);
    assert.equal(logs.filter((l) => l.includes('is now the leader')).length, 1, logs.join('\n'));
  } finally {
    await a.stop();
    await holder.resign();
    aClient.close();
  }
});

test('a write refused by the leader fence is counted and logged, and the leader steps down', async () => {
  const lease = new HostLease(client, hostRecord('fence-host'), 5);
  await lease.start();
  const aClient = connectEtcd(etcd.url);
  const logs: string[] = [];
  const a = new LeaderRole(aClient, 'fence-a', { ttlSeconds: 2, log: (m) => logs.push(m) });
  try {
    a.start();
    await waitFor('A to lead', () => a.isLeader);
    await waitFor('its Dispatcher to watch /proc', () => watchedPrefixes(aClient).includes(PREFIX.proc));
    // Behind A's back another host becomes the leader (as after A froze past its lease).
    await client.delete().key(LEADER_KEY);
    await client.put(LEADER_KEY).value('fence-b');
    // A still believes it leads (its lease is alive) and has work to do.
    const j = job('fenced', 'web', 1);
    await client.put(procKey(j)).value(JSON.stringify(j));
    await waitFor('the refusal to be counted', () => a.stats.fencedWrites >= 1);
    await waitFor('A to step down', () => !a.isLeader);
    assert.ok(logs.some((l) => /refused by the leader fence .*fence-b leads/.test(l)), logs.join('\n'));
    assert.equal(await hostOfJob(client, j), null, 'the refused write placed nothing');
    await waitFor('its Dispatcher to stop', () => !watchedPrefixes(aClient).includes(PREFIX.proc));
    assert.equal(await client.get(LEADER_KEY).string(), 'fence-b', 'A did not take /leader back while fence-b holds it');
  } finally {
    await a.stop();
    await client.delete().key(LEADER_KEY);
    await client.delete().prefix(`${PREFIX.proc}fenced/`);
    await lease.close();
    aClient.close();
  }
});

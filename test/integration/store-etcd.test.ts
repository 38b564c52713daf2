/**
 * The store, election, host lease and dispatch against a real etcd member.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd, readPrefix, watchPrefix } from '../../lib/store/client.js';
import { DISPATCH_EPOCH_KEY, LEADER_KEY, deployKey, hostKey, jobPath, procKey, runKey, PREFIX } from '../../lib/store/keys.js';
import { LeaderElection } from '../../lib/leader/election.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Dispatcher, snapshotFingerprint } from '../../lib/dispatch/dispatch.js';
import { readSnapshot } from '../../lib/dispatch/snapshot.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';
import { PLACEMENT_LAYOUT, hostOfJob, placedHosts } from '../../lib/store/placements.js';

let etcd: TestEtcd;
let client: Etcd3;

before(async () => {
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
});
after(async () => {
  client?.close();
  await etcd?.stop();
});

const hostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test', layout: PLACEMENT_LAYOUT,
});

const job = (stack: string, node: string, instance: number, extra: Partial<JobSpec> = {}): JobSpec => ({
  stack, tag: 'v1', node, instance, image: 'viking/busybox', expose: [], volumes: [], env: {}, service: false,
  tags: [], prefer: [], memory: 0, cpu: 0, scale: 3, ...extra,
});

test('readPrefix at a revision is a snapshot: later writes are not in it', async () => {
  await client.put('/snap/a').value('{"n":1}');
  const first = await readPrefix<{ n: number }>(client, '/snap/');
  await client.put('/snap/b').value('{"n":2}');
  const again = await readPrefix<{ n: number }>(client, '/snap/', first.revision);
  const now = await readPrefix<{ n: number }>(client, '/snap/');
  assert.deepEqual(again.entries.map((e) => e.key), ['/snap/a']);
  assert.deepEqual(now.entries.map((e) => [e.key, e.value?.n]), [['/snap/a', 1], ['/snap/b', 2]]);
});

test('watchPrefix wakes on put and delete under its prefix only', async () => {
  let wakes = 0;
  const w = watchPrefix(client, '/watched/', () => wakes++);
  await waitFor('watch to open', async () => {
    await client.put('/watched/x').value('1');
    return wakes > 0;
  });
  const before = wakes;
  await client.put('/elsewhere/x').value('1');
  await client.delete().key('/watched/x');
  await waitFor('delete to wake', () => wakes > before);
  await w.cancel();
});

test('election: one leader at a time, resign hands over, and the old fence no longer writes', async () => {
  const a = new LeaderElection(client, 'host-a', 2);
  const b = new LeaderElection(client, 'host-b', 2);
  const elected: string[] = [];
  a.on('elected', () => elected.push('a'));
  b.on('elected', () => elected.push('b'));
  a.start();
  await waitFor('a to lead', () => a.current);
  b.start();
  assert.equal(await client.get(LEADER_KEY).string(), 'host-a');
  assert.equal(b.current, undefined);
  const oldFence = a.current!.createRevision;
  await a.resign();
  await waitFor('b to lead', () => b.current);
  assert.deepEqual(elected, ['a', 'b']);
  assert.equal(await client.get(LEADER_KEY).string(), 'host-b');
  const stale = await client.if(LEADER_KEY, 'Create', '==', oldFence).then(client.put('/fenced').value('x')).commit();
  assert.equal(stale.succeeded, false, 'a write fenced on the old leadership must fail');
  assert.equal(await client.get('/fenced').string(), null);
  await b.resign();
  assert.equal(await client.get(LEADER_KEY).string(), null);
});

test('host lease: the host key and leased endpoints vanish when the lease is revoked', async () => {
  const lease = new HostLease(client, hostRecord('lease-host'), 2);
  await lease.start();
  await lease.put('/ports/s/n/80/tcp/127.0.0.1/1/v1.1', '{}');
  assert.ok(await client.get(hostKey('lease-host')).string());
  await lease.close();
  assert.equal(await client.get(hostKey('lease-host')).string(), null);
  assert.equal(await client.get('/ports/s/n/80/tcp/127.0.0.1/1/v1.1').string(), null);
});

test('dispatch places, spreads, removes and moves jobs off a dead host', async () => {
  const election = new LeaderElection(client, 'dispatcher', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  const h1 = new HostLease(client, hostRecord('d-one'), 2);
  const h2 = new HostLease(client, hostRecord('d-two'), 2);
  const h3 = new HostLease(client, hostRecord('d-three'), 2);
  await Promise.all([h1.start(), h2.start(), h3.start()]);
  const dispatcher = new Dispatcher(client, () => election.current, { resyncMs: 1000 });
  dispatcher.start();
  try {
    const jobs = [1, 2, 3].map((n) => job('disp', 'web', n));
    for (const j of jobs) await client.put(procKey(j)).value(JSON.stringify(j));
    const placed = await waitFor('3 jobs placed', async () => {
      const where = await placedHosts(client, 'disp');
      return where.size === 3 ? where : undefined;
    });
    assert.deepEqual(new Set(placed.values()), new Set(['d-one', 'd-two', 'd-three']), 'one replica per host');
    for (const j of jobs) assert.equal(await client.get(deployKey(placed.get(jobPath(j))!, j)).string(), '', 'one empty deploy key per job');
    assert.equal(await client.getAll().prefix(PREFIX.deploy).count(), 3, 'no other deploy key');
    assert.equal(await client.getAll().prefix(PREFIX.run).count(), 0, 'no /run index: every host reads the deploy keys');

    // The host of job 1 dies: its job moves to a survivor, its deploy key goes.
    const deadHost = placed.get(jobPath(jobs[0]!))!;
    await [h1, h2, h3].find((h) => h.name === deadHost)!.close();
    const moved = await waitFor('job 1 moved', async () => {
      const h = await hostOfJob(client, jobs[0]!);
      return h && h !== deadHost ? h : undefined;
    });
    assert.notEqual(moved, deadHost);
    assert.equal(await client.get(deployKey(deadHost, jobs[0]!)).string(), null);
    assert.equal(await client.get(deployKey(moved, jobs[0]!)).string(), '');

    // Job 3 is no longer wanted: its /run and /deploy go.
    const host3 = await hostOfJob(client, jobs[2]!);
    await client.delete().key(procKey(jobs[2]!));
    await waitFor('job 3 removed', async () => (await hostOfJob(client, jobs[2]!)) === null);
    assert.equal(await client.get(deployKey(host3!, jobs[2]!)).string(), null);

    // A volume job pins its node to the host it first lands on.
    const vol = job('disp', 'db', 1, { volumes: ['/data'], scale: 1 });
    await client.put(procKey(vol)).value(JSON.stringify(vol));
    const volHost = await waitFor('volume job placed', () => hostOfJob(client, vol));
    assert.equal(await client.get('/fixed/disp/db').string(), volHost);
  } finally {
    await dispatcher.stop();
    await election.resign();
    await Promise.all([h1.close(), h2.close(), h3.close()]);
    await client.delete().prefix(`${PREFIX.proc}disp/`);
  }
});

test('right after etcd came back, a host whose key went but whose API answers keeps its jobs for the outage grace; one whose API is gone moves at once', async () => {
  const election = new LeaderElection(client, 'dispatcher-outage', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  // o-alive's API accepts connections (a live host process still putting its key back); o-gone's port refuses.
  const api = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1');
  await once(api, 'listening');
  const aliveApi = `http://127.0.0.1:${(api.address() as net.AddressInfo).port}`;
  const records = { 'o-alive': { ...hostRecord('o-alive'), api: aliveApi }, 'o-gone': hostRecord('o-gone'), 'o-spare': hostRecord('o-spare') };
  const leases = Object.values(records).map((r) => new HostLease(client, r, 2));
  await Promise.all(leases.map((h) => h.start()));
  const leaseOf = (name: string) => leases.find((h) => h.name === name)!;
  let backAt = 0;
  const dispatcher = new Dispatcher(client, () => election.current, { resyncMs: 500, hostGraceMs: 0, outageGraceMs: 2500, etcdBackAt: () => backAt });
  dispatcher.start();
  const jobs = [1, 2, 3].map((n) => job('outage', 'web', n));
  const hostOf = (j: JobSpec) => hostOfJob(client, j);
  try {
    for (const j of jobs) await client.put(procKey(j)).value(JSON.stringify(j));
    const placed = await waitFor('one job on each host', async () => {
      const hosts = await Promise.all(jobs.map(hostOf));
      return new Set(hosts).size === 3 && hosts.every(Boolean) ? (hosts as string[]) : undefined;
    });
    const on = (host: string) => jobs[placed.indexOf(host)]!;
    // etcd just came back: both keys go (their extended leases ended before the hosts put them back).
    backAt = Date.now();
    const gone = Date.now();
    await Promise.all([leaseOf('o-alive').close(), leaseOf('o-gone').close()]);
    const movedGone = await waitFor('the unreachable host\'s job moved', async () => {
      const h = await hostOf(on('o-gone'));
      return h && h !== 'o-gone' ? h : undefined;
    }, 5000);
    const goneMs = Date.now() - gone;
    assert.ok(goneMs < 2000, `the job of a host whose API refuses moved ${goneMs} ms after its key went (at once, not after the grace)`);
    assert.equal(await hostOf(on('o-alive')), 'o-alive', 'the job of the host whose API answers is held');
    const moved = await waitFor('the held job moved once the grace is over', async () => {
      const h = await hostOf(on('o-alive'));
      return h && h !== 'o-alive' ? h : undefined;
    }, 10_000);
    const heldMs = Date.now() - gone;
    assert.ok(heldMs >= 2000, `the held job moved ${heldMs} ms after its key went: not before the grace (2.5 s from etcd back)`);
    assert.deepEqual([movedGone, moved], ['o-spare', 'o-spare']);
  } finally {
    await dispatcher.stop();
    await election.resign();
    await Promise.all(leases.map((h) => h.close()));
    api.close();
    await client.delete().prefix(`${PREFIX.proc}outage/`);
  }
});

test('rolling upgrade: while a host of the old layout lives, and for the grace after, dispatch keeps /run naming every placement; then /run goes', async () => {
  const election = new LeaderElection(client, 'upgrader', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  const fresh = new HostLease(client, hostRecord('u-new'), 2);
  const { layout: _layout, ...oldRecord } = hostRecord('u-old');
  const old = new HostLease(client, oldRecord, 2);
  await Promise.all([fresh.start(), old.start()]);
  const graceMs = 3000;
  const dispatcher = new Dispatcher(client, () => election.current, { resyncMs: 500, legacyRunGraceMs: graceMs });
  dispatcher.start();
  const jobs = [1, 2].map((n) => job('upgrade', 'web', n));
  try {
    // A placement the old layout's leader made before (both keys), and one it left in /run only for a job placed nowhere.
    const stale = job('upgrade', 'gone', 1);
    await client.put(runKey(stale)).value('u-old');
    for (const j of jobs) await client.put(procKey(j)).value(JSON.stringify(j));
    const run = await waitFor('/run to name the placement of both jobs', async () => {
      const where = await placedHosts(client, 'upgrade');
      const index = await client.getAll().prefix(`${PREFIX.run}upgrade/`).strings();
      const want = Object.fromEntries([...where].map(([path, host]) => [`${PREFIX.run}${path}`, host]));
      return where.size === 2 && JSON.stringify(Object.entries(index).sort()) === JSON.stringify(Object.entries(want).sort()) ? index : undefined;
    });
    assert.deepEqual(new Set(Object.values(run)), new Set(['u-new', 'u-old']), 'one replica per host, both in /run');
    assert.equal(await client.get(runKey(stale)).string(), null, 'the /run entry of a job placed nowhere went');
    // A placement another leader made in /deploy alone (a new-layout leader before the old host joined) gets its /run entry.
    const extraJob = job('upgrade', 'web', 3);
    await client.put(deployKey('u-new', extraJob)).value('');
    await client.put(procKey(extraJob)).value(JSON.stringify(extraJob));
    await waitFor('job 3 in /run too, naming the host it was placed on', async () => (await client.get(runKey(extraJob)).string()) === 'u-new');
    assert.equal(await hostOfJob(client, extraJob), 'u-new', 'dispatch left the placement where it was');
    // The fingerprint a pass takes from its snapshot is the one the resync tick reads.
    await waitFor('the snapshot\'s fingerprint to be the one the resync reads', async () => (await readSnapshot(client)).print === (await snapshotFingerprint(client)));
    await old.close();
    const closedAt = Date.now();
    // The old host's job moves, and /run follows it while the grace lasts.
    await waitFor('the old host\'s job in /run on the new host', async () => {
      const index = await client.getAll().prefix(`${PREFIX.run}upgrade/`).strings();
      return Object.keys(index).length === 3 && Object.values(index).every((h) => h === 'u-new');
    });
    assert.ok(Date.now() - closedAt < graceMs, 'kept within the grace after the last old-layout host went');
    await waitFor('/run emptied after the grace', async () => (await client.getAll().prefix(PREFIX.run).count()) === 0, graceMs + 5000);
    assert.ok(Date.now() - closedAt >= graceMs - 100, `/run went ${Date.now() - closedAt} ms after the old host: not before the grace (${graceMs} ms)`);
    const where = await placedHosts(client, 'upgrade');
    assert.deepEqual(new Set(where.values()), new Set(['u-new']), 'the old host\'s job moved to the new one');
    assert.equal(where.size, 3);
  } finally {
    await dispatcher.stop();
    await election.resign();
    await Promise.all([fresh.close(), old.close()]);
    await client.delete().prefix(`${PREFIX.proc}upgrade/`);
    for (const h of ['u-new', 'u-old']) await client.delete().prefix(`${PREFIX.deploy}${h}/`);
  }
});

test('every pass rewrites the dispatch epoch, so a late commit of an earlier pass (fenced on its epoch) places nothing', async () => {
  const election = new LeaderElection(client, 'epochs', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  const lease = new HostLease(client, hostRecord('e-host'), 2);
  await lease.start();
  const d = new Dispatcher(client, () => election.current);
  const j = job('epoch', 'web', 1);
  try {
    await d.dispatchOnce();
    const first = (await client.get(DISPATCH_EPOCH_KEY).exec()).kvs[0]!.mod_revision;
    await d.dispatchOnce();
    const second = (await client.get(DISPATCH_EPOCH_KEY).exec()).kvs[0]!.mod_revision;
    assert.ok(BigInt(second) > BigInt(first), `the epoch moved from ${first} to ${second}`);
    // A try of a commit made under the first pass's epoch, landing now (as a retried transaction's
    // first try can): the same compares a placement carries.
    const late = await client
      .if(LEADER_KEY, 'Create', '==', election.current!.createRevision)
      .and(DISPATCH_EPOCH_KEY, 'Mod', '==', first)
      .then(client.put(deployKey('e-host', j)).value(''))
      .commit();
    assert.equal(late.succeeded, false, 'the late commit is refused');
    assert.equal(await client.get(deployKey('e-host', j)).string(), null);
  } finally {
    await election.resign();
    await lease.close();
  }
});

test('a job on a dead host with an extra placement on the live host it moves to ends placed once, there', async () => {
  const election = new LeaderElection(client, 'extras', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  const lease = new HostLease(client, hostRecord('x-live'), 2);
  await lease.start();
  const d = new Dispatcher(client, () => election.current, { hostGraceMs: 0 });
  const j = job('extras', 'web', 1);
  try {
    await client.put(deployKey('x-dead', j)).value('');
    await client.put(deployKey('x-live', j)).value('');
    await client.put(procKey(j)).value(JSON.stringify(j));
    // The kept placement (the older) is on a host with no key: the job moves, and the only
    // host left is the one holding its extra. The move's put and the extra's delete are one key.
    const result = await d.dispatchOnce();
    assert.equal(result.conflicts, 0);
    assert.deepEqual([...(await placedHosts(client, 'extras'))], [['extras/v1/web/1', 'x-live']]);
    assert.deepEqual(await client.getAll().prefix(PREFIX.deploy).keys().then((ks) => ks.filter((k) => k.includes('/extras/'))), [deployKey('x-live', j)]);
  } finally {
    await election.resign();
    await lease.close();
    await client.delete().prefix(`${PREFIX.proc}extras/`);
    await client.delete().key(deployKey('x-live', j));
  }
});

test('a dispatcher that is not the leader writes nothing', async () => {
  const j = job('fenced', 'web', 1);
  await client.put(procKey(j)).value(JSON.stringify(j));
  const lease = new HostLease(client, hostRecord('f-host'), 2);
  await lease.start();
  try {
    // A fence naming a leadership that does not exist (revision 1 is long gone).
    const d = new Dispatcher(client, () => ({ createRevision: '1' }));
    const epochBefore = await client.get(DISPATCH_EPOCH_KEY).string();
    const result = await d.dispatchOnce();
    assert.equal(d.fencedWrites, 1, 'the pass\'s epoch write was refused by the leader fence');
    assert.equal(result.placed, 0, 'so it planned nothing');
    assert.equal(await hostOfJob(client, j), null);
    assert.equal(await client.get(DISPATCH_EPOCH_KEY).string(), epochBefore, 'and wrote no epoch');
  } finally {
    await lease.close();
  }
});

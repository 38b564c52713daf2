/**
 * Runs alone: a keepalive must get around a frozen member within ms.
 *
 * A host's lease when the etcd member its keepalive stream is on stops
 * answering without a reset (a pulled cable; here SIGSTOP, which looks the
 * same to a client: the connection stays open and nothing comes back).
 *
 * etcd ends a lease its TTL after the last renewal it got. The etcd client
 * notices a hung keepalive stream only a whole TTL after its last answer,
 * then needs another try: by then etcd has ended the lease, so a live,
 * connected host lost its key and endpoints, the leader moved its jobs and
 * they ran twice while the host took its work down (found on the servers of
 * test/e2e/netns-faults: a replica ran twice after one server's cable was
 * pulled). The host must renew through another member in time.
 *
 * A real 3-member etcd; the host's client knows only the two followers (so
 * the raft leader, and every lease's clock, keeps running); each follower in
 * turn is frozen for longer than the 2 s lease. Whichever one the keepalive
 * stream is on, the host key must never be deleted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3, Watcher } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { hostKey } from '../../lib/store/keys.js';
import { HostLease } from '../../lib/host/host-lease.js';
import type { HostRecord } from '../../lib/store/records.js';

let etcd: EtcdCluster;
let observer: Etcd3;
let single: Etcd3[] = [];

before(async () => {
  etcd = await startEtcdCluster(3);
  observer = connectEtcd(etcd.urls);
  single = etcd.urls.map((u) => connectEtcd([u]));
});

after(async () => {
  for (const m of etcd.members) m.process.kill('SIGCONT');
  observer?.close();
  for (const c of single) c.close();
  await etcd?.stop();
});

test('a member that stops answering mid-stream costs a host neither its key nor its endpoint', { timeout: 120_000 }, async (t) => {
  const ids = await Promise.all(single.map(async (c) => (await c.maintenance.status()).header.member_id));
  const leaderId = (await single[0]!.maintenance.status()).leader;
  const followers = ids.map((id, i) => (id === leaderId ? -1 : i)).filter((i) => i >= 0);
  assert.equal(followers.length, 2);
  const own = connectEtcd(followers.map((i) => etcd.urls[i]!));
  const name = 'stalled-member-host';
  const record: HostRecord = {
    name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
    api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
  };
  const lease = new HostLease(own, record, 2, followers.map((i) => etcd.urls[i]!));
  const endpoint = `/ports/stalled-app/web/80/tcp/127.0.0.1/32768/${name}`;
  lease.onRenewed = () => void lease.put(endpoint, '{}').catch(() => {});
  await lease.start();
  await lease.put(endpoint, '{}');
  const deletes: string[] = [];
  const watchers: Watcher[] = [];
  try {
    for (const key of [hostKey(name), endpoint]) {
      const w = await observer.watch().key(key).create();
      w.on('delete', () => deletes.push(`${key} at ${new Date().toISOString()}`));
      watchers.push(w);
    }
    for (const round of [0, 1, 0, 1]) {
      const i = followers[round]!;
      await waitFor('the lease renewed before the next round', () => lease.sinceRenewed() < 800, 10_000, 50);
      etcd.members[i]!.process.kill('SIGSTOP');
      const t0 = Date.now();
      let worst = 0;
      while (Date.now() - t0 < 5000) {
        worst = Math.max(worst, lease.sinceRenewed());
        await new Promise((r) => setTimeout(r, 50));
      }
      etcd.members[i]!.process.kill('SIGCONT');
      t.diagnostic(`member ${i} frozen 5 s: longest without a renewal ${worst} ms`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(deletes, [], 'the host key and its endpoint were never deleted');
    assert.equal(await observer.get(endpoint).string(), '{}');
  } finally {
    for (const w of watchers) await w.cancel().catch(() => {});
    await lease.close();
    own.close();
  }
});

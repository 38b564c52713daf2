/**
 * A host's lease across a loss of etcd quorum longer than its TTL (found by
 * test/chaos/servers-chaos: after quorum came back every host waited out its
 * own old lease, so every host key and endpoint lapsed and the routers
 * answered 503 for every app). etcd's new leader gives every lease a fresh
 * TTL, so the old lease still holds the key when quorum is back: the host
 * takes the key over from its own lost lease at once, and its record and
 * endpoints never disappear.
 *
 * A real 3-member etcd; two members are frozen (SIGSTOP) for 8 s, longer
 * than the 3 s lease; the host's client talks only to the member that stays
 * up, as a server's `viking host` talks to its own member.
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
let own: Etcd3;
let observer: Etcd3;

const record: HostRecord = {
  name: 'quorum-host', ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
};

before(async () => {
  etcd = await startEtcdCluster(3);
  own = connectEtcd([etcd.urls[0]!]);
  observer = connectEtcd(etcd.urls);
});

after(async () => {
  for (const m of etcd.members) m.process.kill('SIGCONT');
  own?.close();
  observer?.close();
  await etcd?.stop();
});

test('quorum lost for longer than the lease: the host key and its endpoint never lapse, and the host renews again', { timeout: 90_000 }, async () => {
  const lease = new HostLease(own, record, 3);
  const endpoint = '/ports/quorum-app/web/80/tcp/127.0.0.1/32768/v1.1';
  lease.onRenewed = () => void lease.put(endpoint, '{}').catch(() => {});
  await lease.start();
  await lease.put(endpoint, '{}');
  const deletes: string[] = [];
  const watchers: Watcher[] = [];
  for (const key of [hostKey(record.name), endpoint]) {
    const w = await observer.watch().key(key).create();
    w.on('delete', () => deletes.push(`${key} at ${new Date().toISOString()}`));
    watchers.push(w);
  }
  try {
    const frozen = etcd.members.slice(1);
    for (const m of frozen) m.process.kill('SIGSTOP');
    await waitFor('the host to notice its lease is not renewed', () => lease.sinceRenewed() > 4000, 20_000, 100);
    await new Promise((r) => setTimeout(r, 8000 - 4000));
    for (const m of frozen) m.process.kill('SIGCONT');
    const back = Date.now();
    await waitFor('the host lease renewed after quorum is back', () => lease.sinceRenewed() < 1000, 30_000, 100);
    const renewedMs = Date.now() - back;
    // Longer than the old lease could live after the new etcd leader gave it a fresh TTL.
    await new Promise((r) => setTimeout(r, 8000));
    assert.deepEqual(deletes, [], 'the host key and its endpoint never disappeared');
    assert.equal(await observer.get(hostKey(record.name)).string() !== null, true);
    assert.equal(await observer.get(endpoint).string(), '{}');
    process.stdout.write(`host lease renewed ${renewedMs} ms after quorum came back\n`);
  } finally {
    for (const w of watchers) await w.cancel().catch(() => {});
    await lease.close();
  }
});

/**
 * Watches that go quiet: a lost event, or a stream stuck on a member that
 * no longer delivers, must not leave work unplaced or a route stale. Dispatch
 * and the router's route feed re-read their prefixes at one revision
 * periodically; here their watches are cancelled behind their back (a stream
 * that delivers nothing), a second client writes, and the change is still
 * acted on within the resync period. Real etcd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd, watchedPrefixes, type PrefixWatch } from '../../lib/store/client.js';
import { PREFIX, domainKey, portsKey, procKey, runKey, stackKey } from '../../lib/store/keys.js';
import { LeaderElection } from '../../lib/leader/election.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { DISPATCH_RESYNC_MS, Dispatcher } from '../../lib/dispatch/dispatch.js';
import { ROUTE_RESYNC_MS, RouteFeed } from '../../lib/router/feed.js';
import { emptyStack } from '../../lib/rollout/stacks.js';
import type { RouteSnapshot } from '../../lib/router/snapshot.js';
import type { HostRecord, JobSpec, PortEndpoint, StackRecord } from '../../lib/store/records.js';
import { hostOfJob } from '../../lib/store/placements.js';

let etcd: TestEtcd;
let client: Etcd3;
let writer: Etcd3;

before(async () => {
  etcd = await startTestEtcd('resync');
  client = connectEtcd(etcd.url);
  writer = connectEtcd(etcd.url);
});
after(async () => {
  client?.close();
  writer?.close();
  await etcd?.stop();
});

/** Cancels a reconciler's watches (private) so that only its periodic resync can see changes. */
async function deafen(o: object): Promise<void> {
  const w = o as unknown as { watches: PrefixWatch[] };
  await Promise.all(w.watches.map((x) => x.cancel()));
  w.watches = [];
}

const hostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
});

test(`dispatch places a job whose watch event was lost within its resync period (${DISPATCH_RESYNC_MS} ms)`, async () => {
  const election = new LeaderElection(client, 'resync-leader', 2);
  election.start();
  await waitFor('leadership', () => election.current);
  const lease = new HostLease(writer, hostRecord('resync-host'), 5);
  await lease.start();
  const d = new Dispatcher(client, () => election.current);
  d.start();
  try {
    await waitFor('its watches', () => watchedPrefixes(client).includes(PREFIX.proc));
    await deafen(d);
    assert.ok(!watchedPrefixes(client).includes(PREFIX.proc), 'no watch left to deliver the event');
    const j: JobSpec = {
      stack: 'lost', tag: 'v1', node: 'web', instance: 1, image: 'img', expose: [], volumes: [], env: {}, service: false,
      tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
    };
    const t0 = Date.now();
    await writer.put(procKey(j)).value(JSON.stringify(j));
    await waitFor('the job placed without a watch event', () => hostOfJob(client, j), DISPATCH_RESYNC_MS + 3000, 20);
    const took = Date.now() - t0;
    console.log(`dispatch: placed ${took} ms after a write its watch never delivered (resync ${DISPATCH_RESYNC_MS} ms)`);
    assert.ok(took <= DISPATCH_RESYNC_MS + 500, `placed after ${took} ms`);
  } finally {
    await d.stop();
    await election.resign();
    await lease.close();
  }
});

test(`the route feed serves a route whose watch event was lost within its resync period (${ROUTE_RESYNC_MS} ms)`, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-resync-'));
  const snaps: RouteSnapshot[] = [];
  const feed = new RouteFeed({ client, hostName: 'resync-router', dataDir, onSnapshot: (s) => snaps.push(s) });
  feed.start();
  try {
    await waitFor('the first snapshot', () => snaps.length > 0);
    await waitFor('its watches', () => watchedPrefixes(client).includes(PREFIX.ports));
    await deafen(feed);
    const stack: StackRecord = { ...emptyStack('lostroute'), current: 'v1', lastRelease: 1, releases: [{ tag: 'v1', number: 1, at: new Date().toISOString(), by: 't', images: {}, source: '/x', builtOn: 'h' }] };
    const endpoint: PortEndpoint = {
      stack: 'lostroute', tag: 'v1', node: 'web', instance: 1, host: 'h', ip: '127.0.0.1', port: 80, hostPort: 12345, proto: 'tcp', container: 'c1', primary: true,
    };
    const t0 = Date.now();
    await writer
      .if(stackKey('lostroute'), 'Version', '==', 0)
      .then(
        writer.put(stackKey('lostroute')).value(JSON.stringify(stack)),
        writer.put(domainKey('lost.test')).value(JSON.stringify({ stack: 'lostroute', node: 'web', kind: 'container' })),
        writer.put(portsKey(endpoint)).value(JSON.stringify(endpoint)),
      )
      .commit();
    const snap = await waitFor(
      'the route in a snapshot without a watch event',
      () => snaps.find((s) => s.endpoints.some((e) => e.container === 'c1') && s.domains.some(([d]) => d === 'lost.test')),
      ROUTE_RESYNC_MS + 3000,
      20,
    );
    const took = Date.now() - t0;
    console.log(`route feed: route served ${took} ms after a write its watch never delivered (resync ${ROUTE_RESYNC_MS} ms)`);
    assert.ok(took <= ROUTE_RESYNC_MS + 500, `took ${took} ms`);
    assert.equal(feed.latest, snaps.at(-1));
    assert.ok(BigInt(snap.revision) > 0n);
  } finally {
    await feed.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

/**
 * Each host watches only its own keys (the mistake that capped CoreOS fleet
 * was every agent watching everything): a host watches its own /deploy and
 * the three route prefixes its router needs, plus the ACME challenge answers
 * every router serves and its own cron runs (`/cron/host/<me>/`); only the
 * leader adds the prefixes dispatch and the cron scheduler read, and
 * only the ACME issuer the keys it orders certificates from. A host without
 * the router role watches no route prefix at all. Counted on real hosts
 * against a real etcd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { VikingHost } from '../../lib/host/host.js';

let etcd: TestEtcd;
let dir: string;
const hosts: VikingHost[] = [];

before(async () => {
  etcd = await startTestEtcd();
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-watch-'));
});
after(async () => {
  for (const h of hosts) await h.stop();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a host watches its own /deploy and the routes; only the leader watches what dispatch needs', async () => {
  const names = [uniqueName('w'), uniqueName('w'), uniqueName('w')];
  for (const [i, name] of names.entries()) {
    const h = new VikingHost({
      name, ip: `127.0.0.${i + 2}`, etcd: [etcd.url], master: true, routerPort: 0, apiPort: 0,
      dataDir: path.join(dir, name), leaseTtlSeconds: 2, leaderTtlSeconds: 2,
    });
    await h.start();
    hosts.push(h);
  }
  const leader = await waitFor('a leader', () => hosts.find((h) => h.leader?.isLeader));
  const issuer = await waitFor('an ACME issuer', () => hosts.find((h) => h.acmeIssuer?.isIssuer));
  const routes = ['/acme-challenge/', '/domains/', '/ports/', '/stack/'];
  // Dispatch's three (placements are its own /deploy writes; the resync sees others'), and the cron scheduler's /stack/.
  const dispatch = ['/fixed/', '/host/', '/proc/', '/stack/'];
  const issuing = ['/certs/acme/config', '/certs/pem/', '/domains/'];
  const count = (h: VikingHost): number => 6 + (h === leader ? dispatch.length : 0) + (h === issuer ? issuing.length : 0);
  await waitFor('all watches open', () => hosts.every((h) => h.watches().length === count(h)));
  for (const h of hosts) {
    const expected = [`/deploy/${h.config.name}/`, `/cron/host/${h.config.name}/`, ...routes, ...(h === leader ? dispatch : []), ...(h === issuer ? issuing : [])].sort();
    assert.deepEqual(h.watches(), expected, `${h.config.name}${h === leader ? ' (leader)' : ''}${h === issuer ? ' (issuer)' : ''}`);
    assert.ok(!h.watches().includes('/deploy/'), 'never the whole /deploy tree');
  }
});

test('a host without the router role (--no-router) watches only its own keys: no /ports, no ACME, no issuer campaign', async () => {
  const name = uniqueName('w');
  const h = new VikingHost({ name, ip: '127.0.0.5', etcd: [etcd.url], master: false, router: false, routerPort: 0, apiPort: 0, dataDir: path.join(dir, name), leaseTtlSeconds: 2 });
  await h.start();
  hosts.push(h);
  const own = [`/cron/host/${name}/`, `/deploy/${name}/`];
  await waitFor('its watches open', () => h.watches().length === own.length);
  assert.deepEqual(h.watches(), own);
  assert.equal(h.routerPort, 0);
  assert.equal(h.acmeIssuer, undefined, 'never campaigns for the issuer role');
});

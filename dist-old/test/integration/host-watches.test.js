/**
 * Each host watches only its own keys (the mistake that capped CoreOS fleet
 * was every agent watching everything): a host watches its own /deploy and
 * the three route prefixes its router needs; only the leader adds the
 * prefixes dispatch reads. Counted on real hosts against a real etcd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd } from '../helpers/etcd.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { VikingHost } from '../../lib/host/host.js';
let etcd;
let dir;
const hosts = [];
before(async () => {
    etcd = await startTestEtcd();
    dir = await mkdtemp(path.join(os.tmpdir(), 'viking-watch-'));
});
after(async () => {
    for (const h of hosts)
        await h.stop();
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
    const routes = ['/domains/', '/ports/', '/stack/'];
    const dispatch = ['/fixed/', '/host/', '/proc/', '/run/'];
    await waitFor('all watches open', () => hosts.every((h) => h.watches().length === (h === leader ? 8 : 4)));
    for (const h of hosts) {
        const expected = [`/deploy/${h.config.name}/`, ...routes, ...(h === leader ? dispatch : [])].sort();
        assert.deepEqual(h.watches(), expected, `${h.config.name}${h === leader ? ' (leader)' : ''}`);
        assert.ok(!h.watches().includes('/deploy/'), 'never the whole /deploy tree');
    }
});
//# sourceMappingURL=host-watches.test.js.map
/**
 * `viking host` restarted or upgraded (SIGTERM, then started again): the
 * stop is planned, so the host's record and endpoints stay under a grace
 * lease, the leader moves nothing, the containers keep serving, and the host
 * that comes back adopts them. Measured with keep-alive GETs and POSTs
 * through the other host's router: no container restarted or moved, no
 * request failed. A host that does not come back within its grace has its
 * work moved.
 *
 * Two `viking host` processes on 127.0.0.2-3 sharing this Docker daemon, a
 * 3-member etcd; default settings except the grace of the second test.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startCluster, type Cluster, type TestHost } from '../helpers/cluster.js';
import { runCli, startHostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { helloCopy } from '../helpers/hello.js';
import { Load } from '../helpers/load.js';
import { connectEtcd } from '../../lib/store/client.js';
import { LEADER_KEY, PREFIX, hostKey } from '../../lib/store/keys.js';
import type { HostRecord, PortEndpoint } from '../../lib/store/records.js';
import { placedHosts } from '../../lib/store/placements.js';

const stack = uniqueName('restart');
const domain = `${stack}.test`;
let cluster: Cluster;
let client: Etcd3;
let work: string;

/** Every container of the stack on the daemon: id, host, job, running, when it started. */
async function containers(): Promise<Array<{ id: string; host: string; job: string; running: boolean; startedAt: string }>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`viking.stack=${stack}`] } });
  return Promise.all(
    list.map(async (c) => ({
      id: c.Id,
      host: c.Labels['viking.host']!,
      job: `${c.Labels['viking.tag']}/${c.Labels['viking.node']}/${c.Labels['viking.instance']}`,
      running: c.State === 'running',
      startedAt: (await docker.getContainer(c.Id).inspect()).State.StartedAt,
    })),
  );
}

async function placements(): Promise<Record<string, string>> {
  return Object.fromEntries(await placedHosts(client, stack));
}

async function endpoints(): Promise<PortEndpoint[]> {
  const ports = await client.getAll().prefix(`${PREFIX.ports}${stack}/`).strings();
  return Object.values(ports).map((v) => JSON.parse(v) as PortEndpoint);
}

async function hostRecord(name: string): Promise<HostRecord | undefined> {
  const text = await client.get(hostKey(name)).string();
  return text ? (JSON.parse(text) as HostRecord) : undefined;
}

/** Starts a host again as its server would: same name, address and data dir. */
async function restart(h: TestHost, extra: string[] = []): Promise<void> {
  const again = await startHostProcess({
    name: h.name, etcd: cluster.etcd.urls.join(','), ip: h.ip, master: true,
    dataDir: path.join(cluster.dataDir, `h${cluster.hosts.indexOf(h) + 1}`),
    extra: ['--lease-ttl', '2', '--leader-ttl', '2', ...extra],
  });
  Object.assign(h, again, { alive: true });
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-restart-'));
  cluster = await startCluster({ prefix: uniqueName('rs'), hosts: 2 });
  client = connectEtcd(cluster.etcd.urls);
  const dir = await helloCopy({ dir: path.join(work, 'app'), stack, message: 'restarting', domain });
  const push = await runCli(['push', dir, '--api', cluster.hosts[0]!.api]);
  assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
});

after(async () => {
  client?.close();
  await cluster?.stop();
  await removeStackArtifacts(stack);
  await rm(work, { recursive: true, force: true });
});

test('a host restarted with SIGTERM keeps its containers: none restarted or moved, no request failed', { timeout: 120_000 }, async (t) => {
  // The leader is the victim: leadership moves, and the new leader must still leave the work alone.
  const leaderName = await waitFor('a leader', () => client.get(LEADER_KEY).string());
  const victim = cluster.hosts.find((h) => h.name === leaderName)!;
  const survivor = cluster.hosts.find((h) => h !== victim)!;
  const before = await waitFor('one replica on each host', async () => {
    const list = (await containers()).filter((c) => c.running);
    return list.length === 2 && new Set(list.map((c) => c.host)).size === 2 ? list : undefined;
  });
  const placedBefore = await placements();
  const load = new Load({ port: survivor.routerPort, ip: survivor.ip, host: domain, clients: 4, ok: /restarting/, pauseMs: 5 });
  await waitFor('load flowing', () => load.ok > 50);

  const t0 = Date.now();
  await victim.stop('SIGTERM');
  victim.alive = false;
  assert.match(victim.output(), /planned stop: 1 endpoint\(s\) kept serving until/);
  const record = await hostRecord(victim.name);
  assert.ok(record?.stopping, `the stopped host's record is kept, marked stopping: ${JSON.stringify(record)}`);
  const listed = await runCli(['hosts', '--api', survivor.api]);
  assert.match(listed.stdout, new RegExp(`${victim.name}\\s.*stopping \\(work kept until \\d\\d:\\d\\d:\\d\\d\\)`), listed.stdout + listed.stderr);
  // Longer than its lease TTL (2 s), the leader's failover (2 s) and a dispatch resync (5 s): nothing moves.
  await waitFor('a new leader', async () => (await client.get(LEADER_KEY).string()) === survivor.name, 10_000);
  await new Promise((r) => setTimeout(r, 8000));
  assert.deepEqual(await placements(), placedBefore, 'no job moved while its host was away');
  assert.equal((await endpoints()).length, 2, 'both endpoints still routed');

  await restart(victim);
  const downMs = Date.now() - t0;
  await waitFor('the host back, its record taken over', async () => {
    const r = await hostRecord(victim.name);
    return r && !r.stopping;
  }, 15_000);
  await waitFor('the adoption logged', () => /back from a planned stop/.test(victim.output()), 15_000);
  // Some more passes of the slave (resync 5 s) and of dispatch under load.
  await new Promise((r) => setTimeout(r, 6000));
  await load.stop();

  const after = await containers();
  t.diagnostic(`host down ${downMs} ms; ${load.ok} requests answered, ${load.failed.length} failed`);
  assert.deepEqual(load.failed, [], 'no request failed');
  assert.deepEqual(
    after.map((c) => [c.id, c.host, c.job, c.running, c.startedAt]).sort(),
    before.map((c) => [c.id, c.host, c.job, c.running, c.startedAt]).sort(),
    'the same containers, never restarted, on the same hosts',
  );
  assert.deepEqual(await placements(), placedBefore);
  const eps = await endpoints();
  assert.deepEqual(eps.map((e) => e.container).sort(), before.map((c) => c.id).sort(), 'both published again');
});

test('a host that does not come back within its grace has its work moved', { timeout: 120_000 }, async () => {
  const victim = cluster.hosts[1]!;
  const survivor = cluster.hosts[0]!;
  // The grace is a host flag: this host gets 3 s so the test need not wait the default 60 s.
  await victim.stop('SIGTERM');
  await restart(victim, ['--stop-grace', '3']);
  await waitFor('the victim serving a replica', async () => (await endpoints()).some((e) => e.host === victim.name), 30_000);
  const t0 = Date.now();
  await victim.stop('SIGTERM');
  victim.alive = false;
  assert.ok((await hostRecord(victim.name))?.stopping, 'marked stopping');
  const moved = await waitFor('both replicas on the survivor', async () => {
    const run = await placements();
    return Object.values(run).length === 2 && Object.values(run).every((h) => h === survivor.name) ? run : undefined;
  }, 30_000);
  const took = Date.now() - t0;
  assert.ok(took >= 2500, `not before the grace ended: ${took} ms`);
  assert.equal(Object.keys(moved).length, 2);
  await waitFor('both endpoints on the survivor', async () => {
    const eps = await endpoints();
    return eps.length === 2 && eps.every((e) => e.host === survivor.name);
  }, 30_000);
  // The returning host finds its old container unwanted and removes it.
  await restart(victim);
  await waitFor('the victim\'s stale container removed', async () => (await containers()).every((c) => c.host !== victim.name), 30_000);
});

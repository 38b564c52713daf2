/**
 * A frozen leader (SIGSTOP for 10 s, then SIGCONT), with real `viking host`
 * processes on default settings and a 3-member etcd:
 *
 * - a new leader dispatches within 3 s of the freeze (a job written right
 *   after the freeze gets its /run);
 * - the old leader wakes to work the cluster has not done yet (the new
 *   leader is paused for a moment itself), tries to place it, and the fence
 *   refuses the write: counted in its /metrics
 *   (viking_leader_fenced_writes_total) and logged, not only "no duplicate";
 * - a checker samples etcd and the Docker daemon every 100 ms: no job is
 *   ever assigned to two hosts nor runs in two containers. It never kills a
 *   container itself.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { LEADER_KEY, PREFIX, jobPath, procKey, runKey } from '../../lib/store/keys.js';
import type { JobSpec } from '../../lib/store/records.js';
import { hostOfJob } from '../../lib/store/placements.js';

let etcd: EtcdCluster;
let client: Etcd3;
let dataDir: string;
const hosts: HostProcess[] = [];
const prefix = uniqueName('frz');
const stack = prefix;
const figures: string[] = [];

before(async () => {
  await baseImages();
  etcd = await startEtcdCluster(3);
  client = connectEtcd(etcd.urls);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-freeze-'));
  for (let i = 1; i <= 3; i++) {
    // Default settings: no --lease-ttl, no --leader-ttl. The first host leads (it starts first) and runs no
    // jobs (they need the tag `work`): a frozen host's own containers are the slave's concern, not this test's.
    hosts.push(
      await startHostProcess({
        name: `${prefix}-${i}`, etcd: etcd.urls.join(','), ip: `127.0.0.${i + 1}`, master: true, dataDir: path.join(dataDir, `h${i}`),
        extra: i === 1 ? [] : ['--tags', 'work'],
      }),
    );
    if (i === 1) await waitFor('the first host to lead', async () => (await client.get(LEADER_KEY).string()) === `${prefix}-1`);
  }
});

after(async () => {
  for (const h of hosts) {
    if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGCONT');
  }
  await Promise.all(hosts.map((h) => h.stop()));
  for (const h of hosts) await removeHostContainers(h.name);
  client?.close();
  await etcd?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (figures.length) console.log(figures.join('\n'));
});

const job = (node: string): JobSpec => ({
  stack, tag: 'v1', node, instance: 1, image: 'viking/busybox', run: ['sleep', '3600'], expose: [], volumes: [], env: {},
  service: false, tags: ['work'], prefer: [], memory: 16 * 1024 * 1024, cpu: 0, scale: 1,
});

const leaderName = async (): Promise<string | undefined> => (await client.get(LEADER_KEY).string()) ?? undefined;
const byName = (name: string): HostProcess => hosts.find((h) => h.name === name)!;

/** Samples every 100 ms: /deploy keys per job across hosts, and running containers per job on the daemon. */
function startChecker(): { stop(): Promise<void>; worst: () => { deploys: number; containers: number; samples: number } } {
  let deploys = 0;
  let containers = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const keys = await client.getAll().prefix(PREFIX.deploy).keys().catch(() => [] as string[]);
      const perJob = new Map<string, number>();
      for (const k of keys) {
        const rest = k.slice(PREFIX.deploy.length).split('/').slice(1).join('/');
        if (rest.startsWith(`${stack}/`)) perJob.set(rest, (perJob.get(rest) ?? 0) + 1);
      }
      const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`] } }).catch(() => []);
      const perContainer = new Map<string, number>();
      for (const c of list) {
        const id = `${c.Labels['viking.node']}/${c.Labels['viking.instance']}`;
        perContainer.set(id, (perContainer.get(id) ?? 0) + 1);
      }
      deploys = Math.max(deploys, ...perJob.values(), 0);
      containers = Math.max(containers, ...perContainer.values(), 0);
      samples++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
    worst: () => ({ deploys, containers, samples }),
  };
}

async function fencedWrites(h: HostProcess): Promise<number> {
  const res = await fetch(`${h.api}/metrics`, { headers: { authorization: `Bearer ${h.token}` } });
  const text = await res.text();
  const m = /^viking_leader_fenced_writes_total (\d+)/m.exec(text);
  assert.ok(m, `no viking_leader_fenced_writes_total in /metrics of ${h.name}`);
  return Number(m[1]);
}

test('a frozen leader: a new one dispatches within 3 s, the old one wakes and the fence refuses its write', async () => {
  const warm = job('warm');
  await client.put(procKey(warm)).value(JSON.stringify(warm));
  const a = byName(await waitFor('a leader', leaderName));
  assert.equal(a.name, `${prefix}-1`, 'the host without work leads');
  await waitFor('the first job placed', () => hostOfJob(client, warm));
  assert.equal(await fencedWrites(a), 0);
  const checker = startChecker();
  try {
    // Freeze the leader; the work that arrives next needs a new one.
    const t0 = Date.now();
    a.child.kill('SIGSTOP');
    const j1 = job('after-freeze');
    await client.put(procKey(j1)).value(JSON.stringify(j1));
    await waitFor('a new leader to place the job written after the freeze', () => hostOfJob(client, j1), 15_000, 20);
    const tDispatch = Date.now() - t0;
    const b = byName(await waitFor('the new leader', async () => {
      const l = await leaderName();
      return l && l !== a.name ? l : undefined;
    }));
    figures.push(`leader ${a.name} SIGSTOPped -> ${b.name} placed a new job after ${tDispatch} ms`);
    assert.ok(tDispatch <= 3000, `the new leader dispatched ${tDispatch} ms after the freeze`);

    // Keep the old leader frozen 10 s. Then pause the new leader for a moment and give the cluster work:
    // the old one wakes still believing it leads, with something to place.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 10_000 - Date.now())));
    b.child.kill('SIGSTOP');
    const j2 = job('while-old-wakes');
    await client.put(procKey(j2)).value(JSON.stringify(j2));
    const tWake = Date.now();
    a.child.kill('SIGCONT');
    await waitFor('the old leader\'s refused write to be counted', async () => (await fencedWrites(a)) >= 1, 10_000);
    figures.push(`old leader woken: its write refused by the fence and counted after ${Date.now() - tWake} ms`);
    b.child.kill('SIGCONT');
    assert.match(a.output(), /refused by the leader fence/, 'the refusal is logged');
    assert.match(a.output(), /lost leadership/);

    // The cluster settles: both jobs placed once, one container each.
    for (const j of [warm, j1, j2]) {
      await waitFor(`${jobPath(j)} running in one container`, async () => {
        const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`, `viking.node=${j.node}`] } });
        return list.length === 1 && (await hostOfJob(client, j));
      }, 30_000);
    }
    // Exactly one host leads, and only it has a running Dispatcher's view: nobody else was refused since.
    const leader = await waitFor('a leader after all', leaderName);
    assert.ok(hosts.some((h) => h.name === leader));
  } finally {
    await checker.stop();
  }
  const worst = checker.worst();
  figures.push(`checker: ${worst.samples} samples, most /deploy keys of one job ${worst.deploys}, most containers of one job ${worst.containers}`);
  assert.ok(worst.samples > 50, 'the checker sampled');
  assert.equal(worst.deploys, 1, 'no job was ever assigned to two hosts');
  assert.equal(worst.containers, 1, 'no job ever ran in two containers');
});

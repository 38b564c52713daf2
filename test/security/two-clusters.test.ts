/**
 * Issue 9, item 4: two clusters on one Docker Engine.
 *
 * The attack (an accident, as it happened): a host owned every container
 * labelled `viking.host=<name>`, and `viking up` defaults the name, so a
 * second cluster on the same machine removed the first one's containers
 * while it ran and again when it stopped; the first cluster's app ended
 * `failed` for good.
 *
 * Replayed against real processes on the one real Docker Engine: cluster A
 * is a real etcd and a `viking host` named N; cluster B is a `viking up
 * --name N` (its own etcd). Each serves a pushed app. B runs, stops (Ctrl-C
 * removes its containers) and starts again; A's container is the very same
 * one throughout and its app answers every request. Then a second host
 * named N in cluster A is refused with VIKING_E_HOST_NAME_TAKEN, and two
 * hosts claiming one name at the same moment: exactly one wins.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { VIKING_BIN, runCli, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { helloCopy } from '../helpers/hello.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePort } from '../../lib/net.js';
import { connectEtcd } from '../../lib/store/client.js';
import { claimHostName } from '../../lib/host/host-lease.js';
import { VikingError } from '../../lib/errors.js';
import type { HostRecord } from '../../lib/store/records.js';

const name = uniqueName('same');
const stackA = uniqueName('clua');
const stackB = uniqueName('club');
let work: string;
let etcdA: TestEtcd;
let hostA: HostProcess;
let clusterA = '';
const upOutput: string[] = [];
const ups: ChildProcess[] = [];

async function containersOf(stack: string): Promise<Array<{ id: string; state: string; cluster: string | undefined }>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`viking.stack=${stack}`] } });
  return list.map((c) => ({ id: c.Id, state: c.State, cluster: c.Labels['viking.cluster'] }));
}

/** `viking up --name <name>` in the foreground, as a user runs it; resolves with its ports once ready. */
async function startUp(dataDir: string, etcdPort: number, config: string): Promise<{ child: ChildProcess; routerPort: number; apiPort: number; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [
    VIKING_BIN, 'up', '--data-dir', dataDir, '--name', name, '--router-port', '0', '--api-port', '0',
    '--etcd-port', String(etcdPort), '--registry-port', '0',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIKING_CONFIG: config } });
  ups.push(child);
  const i = upOutput.push('') - 1;
  child.stdout?.on('data', (d: Buffer) => (upOutput[i] += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (upOutput[i] += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await waitFor('viking up to be ready', () => /ready router=(\d+) api=(\d+)/.exec(upOutput[i]!), 60_000, 100).catch(async (err: Error) => {
    // etcd's own words when it would not start (CI once saw "etcd exited at start" and nothing more).
    const etcdLog = await readFile(path.join(dataDir, 'etcd.log'), 'utf8').then((t) => t.split('\n').slice(-15).join('\n'), () => '(no etcd.log)');
    throw new Error(`${err.message}\n--- viking up said ---\n${upOutput[i]}\n--- etcd.log (last lines) ---\n${etcdLog}`);
  });
  return { child, routerPort: Number(ready[1]), apiPort: Number(ready[2]), exited };
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-sec-clusters-'));
  etcdA = await startTestEtcd();
  hostA = await startHostProcess({ name, etcd: etcdA.url, master: true, dataDir: path.join(work, 'a') });
  const client = connectEtcd(etcdA.url);
  clusterA = (await client.get('/cluster/id').string()) ?? '';
  client.close();
});

after(async () => {
  for (const u of ups) if (u.exitCode === null && u.signalCode === null) u.kill('SIGKILL');
  await hostA?.stop();
  // Only what these two clusters made: by stack (unique to this test), whichever cluster.
  for (const s of [stackA, stackB]) {
    for (const c of await containersOf(s)) await docker.getContainer(c.id).remove({ force: true }).catch(() => {});
    await removeStackArtifacts(s);
  }
  if (clusterA) await removeHostContainers(name, clusterA);
  await etcdA?.stop();
  await rm(work, { recursive: true, force: true });
});

test('a second cluster whose host has the same name never touches the first one\'s containers', async (t) => {
  assert.match(clusterA, /^[0-9a-f]{16}$/, 'the first host made the cluster id');
  const a = await helloCopy({ dir: path.join(work, 'pa'), stack: stackA, message: 'cluster A', domain: `${stackA}.test`, edit: (v) => v.replace('scale: 2', 'scale: 1') });
  const pushA = await runCli(['push', a, '--api', hostA.api]);
  assert.equal(pushA.code, 0, `${pushA.stdout}\n${pushA.stderr}`);
  const [mine] = await containersOf(stackA);
  assert.ok(mine && mine.state === 'running' && mine.cluster === clusterA, JSON.stringify(mine));
  const image = (await docker.getContainer(mine.id).inspect()).Image;
  assert.equal((await docker.getImage(image).inspect()).Config.Labels?.['viking.cluster'], clusterA, 'the built image carries the cluster id');

  // A's app is asked all along; every answer must be A's.
  let asked = 0;
  const failures: string[] = [];
  let polling = true;
  // A failed assertion must not leave the poller running: the file would never end (CI killed it after 900 s).
  t.after(() => {
    polling = false;
  });
  const poller = (async () => {
    while (polling) {
      asked++;
      const res = await routerGet({ port: hostA.routerPort, host: `${stackA}.test` }).catch((err: Error) => ({ status: 0, body: err.message }));
      if (res.status !== 200 || !/cluster A/.test(res.body)) failures.push(`${res.status} ${res.body.slice(0, 80)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // Cluster B: `viking up` on this same Docker Engine, defaulting to... the same host name.
  const config = path.join(work, 'b-config.json');
  const etcdPort = await freePort();
  const dataB = path.join(work, 'b');
  let b = await startUp(dataB, etcdPort, config);
  const b1 = await helloCopy({ dir: path.join(work, 'pb'), stack: stackB, message: 'cluster B', domain: `${stackB}.test`, edit: (v) => v.replace('scale: 2', 'scale: 1') });
  const pushB = await runCli(['push', b1], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' });
  assert.equal(pushB.code, 0, `${pushB.stdout}\n${pushB.stderr}`);
  const [theirs] = await containersOf(stackB);
  assert.ok(theirs && theirs.cluster && theirs.cluster !== clusterA, `cluster B labels its own: ${JSON.stringify(theirs)}`);
  assert.match((await routerGet({ port: b.routerPort, host: `${stackB}.test` })).body, /cluster B/);
  // Several slave passes of B (resync every 5 s, plus the events of its own start).
  await new Promise((r) => setTimeout(r, 6000));

  // Ctrl-C: B removes its own containers, and only those.
  b.child.kill('SIGINT');
  assert.equal(await b.exited, 0, upOutput.at(-1));
  assert.deepEqual(await containersOf(stackB), [], 'B removed its own container on the way out');

  // B again, on the same data: same cluster, it runs its app again, and still leaves A alone.
  b = await startUp(dataB, etcdPort, config);
  await waitFor('B to run its app again', async () => /cluster B/.test((await routerGet({ port: b.routerPort, host: `${stackB}.test` }).catch(() => ({ body: '' }))).body), 60_000, 200);
  await new Promise((r) => setTimeout(r, 6000));
  b.child.kill('SIGINT');
  assert.equal(await b.exited, 0, upOutput.at(-1));

  polling = false;
  await poller;
  const after = await containersOf(stackA);
  assert.deepEqual(after.map((c) => [c.id, c.state]), [[mine.id, 'running']], 'A\'s container is the same one, still running');
  t.diagnostic(`cluster A's app answered ${asked - failures.length} of ${asked} requests while cluster B ran, stopped and ran again`);
  assert.ok(asked > 50, `asked ${asked} times`);
  assert.deepEqual(failures, [], `A's app failed ${failures.length} of ${asked} requests`);
  const ps = await runCli(['ps', stackA, '--api', hostA.api, '--json']);
  assert.deepEqual((JSON.parse(ps.stdout) as Array<{ state: string }>).map((r) => r.state), ['running']);
});

test('a second host with a live host\'s name in the same cluster is refused with VIKING_E_HOST_NAME_TAKEN', async () => {
  const started = Date.now();
  await assert.rejects(
    startHostProcess({ name, etcd: etcdA.url, ip: '127.0.0.3', dataDir: path.join(work, 'a2') }),
    (err: Error) => {
      assert.match(err.message, /exited with 1 before ready/);
      assert.match(err.message, /VIKING_E_HOST_NAME_TAKEN/);
      assert.match(err.message, new RegExp(`another live host of this cluster is named ${name}`));
      return true;
    },
  );
  assert.ok(Date.now() - started < 15_000, 'refused within a lease TTL or so, not after a long wait');
  // The live host kept its name, its record and its app.
  const client = connectEtcd(etcdA.url);
  try {
    const rec = JSON.parse((await client.get(`/host/${name}`).string())!) as HostRecord;
    assert.equal(rec.ip, '127.0.0.1');
  } finally {
    client.close();
  }
  assert.match((await routerGet({ port: hostA.routerPort, host: `${stackA}.test` })).body, /cluster A/);
});

test('two hosts claiming one name at the same moment: exactly one wins', async () => {
  const client = connectEtcd(etcdA.url);
  try {
    const contested = uniqueName('race');
    const record = (ip: string): HostRecord => ({
      name: contested, ip, tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false, api: '', routerPort: 0, draining: false, startedAt: '', version: 'test',
    });
    const leases = Array.from({ length: 5 }, () => client.lease(5));
    const ids = await Promise.all(leases.map((l) => l.grant()));
    const results = await Promise.allSettled(ids.map((id, i) => claimHostName(client, record(`127.0.1.${i}`), { leaseId: id }, 1000)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, JSON.stringify(results));
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as VikingError).code, 'VIKING_E_HOST_NAME_TAKEN');
    await Promise.all(leases.map((l) => l.revoke()));
  } finally {
    client.close();
  }
});

/**
 * Issue 10, end to end: servers made of network namespaces
 * (test/helpers/servers.ts), each with its own address, dockerd and disk,
 * installed the way an operator does it: `bootstrap.sh` on the first,
 * `bootstrap.sh --join http://FIRST:2379` on every other. Then the cluster
 * is used as a user would: push hello at scale 3 (one replica per server,
 * the image built on one and pulled by the others from the cluster
 * registry), every router serves every replica, logs follow from every
 * server, a server is drained and undrained, a joiner's supervisor brings
 * a killed `viking up` back with the same etcd role, a pulled cable moves
 * a server's work, a fourth server joins as an etcd client and takes new
 * work, a server is powered off and on again as boot would, and `viking rm`
 * leaves nothing in any daemon. Teardown leaves nothing on the machine.
 *
 * Only lab addresses (10.213.K.0/24) and loopback receive traffic.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { sweepDeadLabs } from '../helpers/netns-lab.js';
import { startServers, waitRunning, PORTS, type Servers, type VikingServer, type RunResult } from '../helpers/servers.js';
import { VIKING_BIN } from '../helpers/host-process.js';
import { helloCopy } from '../helpers/hello.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { labLeftovers } from '../helpers/lab-leftovers.js';
import { connectEtcd } from '../../lib/store/client.js';
import { PREFIX, hostKey } from '../../lib/store/keys.js';
import type { HostRow } from '../../lib/host-admin/ops.js';
import { placedHosts } from '../../lib/store/placements.js';

const stack = uniqueName('srv');
let cluster: Servers;
let s1: VikingServer & { bootstrap: RunResult };
let s2: VikingServer & { bootstrap: RunResult };
let s3: VikingServer & { bootstrap: RunResult };
let s4: (VikingServer & { bootstrap: RunResult }) | undefined;
let client: Etcd3;
let infoAlone: RunResult;
const figures: string[] = [];
let failed = false;

/** A test that notes its failure, so the servers' logs are kept for whoever reads it (node 20's context cannot tell). */
function step(name: string, o: { timeout: number }, fn: () => Promise<void>): void {
  test(name, o, async () => {
    try {
      await fn();
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}
const three = (): VikingServer[] => [s1, s2, s3];
const all = (): VikingServer[] => [s1, s2, s3, ...(s4 ? [s4] : [])];

/** The etcd role a row of `viking hosts --json` reports (member / client). */
type Row = HostRow & { etcd?: string };

async function hosts(on: VikingServer = s1): Promise<Row[]> {
  const r = await on.viking(['hosts', '--json'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `viking hosts on ${on.name}: ${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Row[];
}

async function viking(on: VikingServer, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  const r = await on.viking(args, { timeoutMs });
  assert.equal(r.code, 0, `viking ${args.join(' ')} on ${on.name} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Running containers of the test stack in one server's own dockerd. */
async function running(s: VikingServer): Promise<number> {
  return (await s.docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } })).length;
}

async function counts(): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(all().map(async (s) => [s.name, await running(s)] as const)));
}

/** Waits until each server's dockerd runs the given number of the stack's containers. */
async function waitCounts(want: Record<string, number>, what: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(what, async () => {
    const now = await counts();
    return Object.entries(want).every(([name, n]) => now[name] === n) ? now : undefined;
  }, timeoutMs, 200).catch(async (err: Error) => {
    throw new Error(`${err.message}\nnow: ${JSON.stringify(await counts())}`);
  });
}

/** Placements of the stack's web jobs: job -> host. */
async function placements(): Promise<Map<string, string>> {
  return new Map([...(await placedHosts(client, stack))].filter(([k]) => k.includes('/web/')));
}

/** The replica hostnames the router of `s` answers from, until `count` distinct ones were seen. */
async function servesReplicas(s: VikingServer, count: number, timeoutMs = 30_000): Promise<Set<string>> {
  const seen = new Set<string>();
  await waitFor(`router of ${s.name} at ${s.ip}:${PORTS.router} to answer hello.local from ${count} replicas`, async () => {
    const res = await routerGet({ ip: s.ip, port: PORTS.router, host: 'hello.local', timeoutMs: 3000 });
    assert.equal(res.status, 200, res.body);
    seen.add(/from (\S+):/.exec(res.body)?.[1] ?? '');
    return seen.size >= count;
  }, timeoutMs, 20);
  return seen;
}

before(async () => {
  await sweepDeadLabs();
  cluster = await startServers();
  const t0 = Date.now();
  s1 = await cluster.seed();
  figures.push(`seed: bootstrap.sh --ip (no example) ${s1.bootstrap.ms} ms`);
  infoAlone = await s1.viking(['info'], { timeoutMs: 20_000 });
  client = connectEtcd([s1.etcd]);
  // Joins one after another: each one's etcd member add must see the one before.
  s2 = await cluster.join();
  figures.push(`join 2 (etcd member): bootstrap.sh --join ${s2.bootstrap.ms} ms`);
  s3 = await cluster.join();
  figures.push(`join 3 (etcd member): bootstrap.sh --join ${s3.bootstrap.ms} ms`);
  figures.push(`three servers installed and joined: ${Date.now() - t0} ms`);
});

after(async () => {
  client?.close();
  if (failed && cluster) process.stdout.write(`servers: logs of every server kept in ${await cluster.keepLogs()}\n`);
  await cluster?.teardown();
  process.stdout.write(`servers figures:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
});

step('three servers: bootstrap --join trusts only the cluster registry, ends with viking hosts, and each holds an etcd member', { timeout: 60_000 }, async () => {
  const registry = `${s1.ip}:${PORTS.registry}`;
  assert.match(`${infoAlone.stdout}${infoAlone.stderr}`, /WARNING: etcd has 1 voting member/, `viking info warns on a cluster with one etcd member:\n${infoAlone.stdout}${infoAlone.stderr}`);
  for (const s of [s2, s3]) {
    const daemon = JSON.parse(await readFile(s.machine.daemonJson, 'utf8')) as { 'insecure-registries'?: string[] };
    assert.deepEqual(daemon['insecure-registries'], [registry], `${s.name}'s daemon.json trusts the cluster registry only`);
    assert.match(s.bootstrap.stdout, /restart/i, `${s.name}'s bootstrap says it restarted dockerd:\n${s.bootstrap.stdout}`);
    // It ends by printing `viking hosts` with itself in it.
    const tail = s.bootstrap.stdout.slice(s.bootstrap.stdout.lastIndexOf('----->'));
    assert.match(tail, new RegExp(`\\n${s.name}\\s+${s.ip.replace(/\./g, '\\.')}\\s`), `bootstrap of ${s.name} ends with viking hosts listing it:\n${tail}`);
  }
  const rows = await hosts(s2);
  assert.deepEqual(rows.map((r) => r.name).sort(), [s1.name, s2.name, s3.name].sort());
  for (const s of three()) {
    const row = rows.find((r) => r.name === s.name)!;
    assert.equal(row.ip, s.ip);
    assert.equal(row.etcd, 'member', `${s.name} holds an etcd member: ${JSON.stringify(row)}`);
  }
  const table = await viking(s3, ['hosts']);
  for (const s of three()) assert.match(table.stdout, new RegExp(`${s.name}\\s+${s.ip.replace(/\./g, '\\.')}`));
  const members = (await client.cluster.memberList({})).members ?? [];
  assert.equal(members.length, 3, `three etcd members: ${JSON.stringify(members)}`);
  assert.ok(members.every((m) => !m.isLearner), 'every member promoted from learner');
  const info = await viking(s1, ['info']);
  assert.doesNotMatch(info.stdout + info.stderr, /WARNING: etcd/, 'no warning with three voting members');
  assert.match(info.stdout, /etcd\s+3 voting/);
});

step('push hello scale 3: one replica in each server\'s dockerd, built on one, pulled by the others from the cluster registry', { timeout: 240_000 }, async () => {
  const registry = `${s1.ip}:${PORTS.registry}`;
  for (const s of three()) assert.equal((await s.docker.listImages()).filter((i) => (i.RepoTags ?? []).some((t) => t.includes(stack))).length, 0, `${s.name} has no image of the stack yet`);
  const dir = await helloCopy({ dir: path.join(cluster.lab.dir, stack), stack, message: 'across servers', edit: (vf) => vf.replace('scale: 2', 'scale: 3') });
  const t0 = Date.now();
  const push = await viking(s1, ['push', dir], 180_000);
  assert.match(push.stdout, new RegExp(`\\[${registry.replace(/\./g, '\\.')}/${stack}/app\\]`), 'pushed to the cluster registry');
  await waitCounts({ [s1.name]: 1, [s2.name]: 1, [s3.name]: 1 }, 'exactly one replica in each server\'s dockerd');
  const run = await placements();
  assert.deepEqual([...run.values()].sort(), [s1.name, s2.name, s3.name].sort(), `placements: ${JSON.stringify([...run])}`);
  const image = `${registry}/${stack}/app:v1`;
  for (const s of three()) {
    const tags = (await s.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
    assert.ok(tags.includes(image), `${s.name} has ${image}: ${tags.join(' ')}`);
  }
  // s1 built it (the push went to its API); the joiners pulled it: a pulled image has no local build parent.
  for (const s of [s2, s3]) {
    const img = await s.docker.getImage(image).inspect();
    assert.equal(img.Parent, '', `${s.name}'s image was pulled, not built there`);
    assert.ok(img.RepoDigests.some((d) => d.startsWith(`${registry}/${stack}/app@sha256:`)), `${s.name} pulled it from ${registry}: ${img.RepoDigests.join(' ')}`);
  }
  for (const s of three()) await servesReplicas(s, 3);
  figures.push(`push hello scale 3 (cold: no image on any server) -> every router serves 3 replicas: ${Date.now() - t0} ms`);
});

step('every server\'s router serves hello.local from all three replicas, across the bridge', { timeout: 60_000 }, async () => {
  const containerHostnames = new Set<string>();
  for (const s of three()) {
    for (const c of await s.docker.listContainers({ filters: { label: [`viking.stack=${stack}`] } })) containerHostnames.add((await s.docker.getContainer(c.Id).inspect()).Config.Hostname);
  }
  for (const s of three()) {
    const seen = await servesReplicas(s, 3);
    assert.deepEqual([...seen].sort(), [...containerHostnames].sort(), `${s.name}'s router reaches the replicas of all three servers`);
  }
});

step('viking logs -f shows lines from all three servers as they are written', { timeout: 60_000 }, async () => {
  const child = spawn(s2.machine.prefix[0] as string, [...s2.machine.prefix.slice(1), process.execPath, VIKING_BIN, 'logs', stack, 'web', '-f', '--tail', '0'], { env: s2.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // Give the follow streams of all three hosts time to attach: a first marker must come through from each.
    const marker = (s: VikingServer, n: number): string => `marker-${n}-${s.name}`;
    const write = async (s: VikingServer, line: string): Promise<void> => {
      const [c] = await s.docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } });
      assert.ok(c, `${s.name} runs a replica`);
      const exec = await s.docker.getContainer(c.Id).exec({ Cmd: ['node', '-e', `require('fs').writeFileSync('/proc/1/fd/1', ${JSON.stringify(`${line}\n`)})`], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({});
      await new Promise((r) => stream.on('end', r).resume());
    };
    await waitFor('the follow to stream from all three servers', async () => {
      for (const s of three()) if (!out.includes(marker(s, 0))) await write(s, marker(s, 0));
      return three().every((s) => out.includes(marker(s, 0)));
    }, 20_000, 500);
    // Now as they are written: each new line shows up within seconds, prefixed with its replica.
    const t0 = Date.now();
    for (const s of three()) await write(s, marker(s, 1));
    await waitFor('a new line from each server', () => three().every((s) => out.includes(marker(s, 1))), 10_000, 20);
    figures.push(`viking logs -f: a line written in each of 3 servers' containers shown in ${Date.now() - t0} ms`);
    const prefixes = new Set(out.split('\n').filter((l) => l.includes('marker-1-')).map((l) => l.split('|')[0]!.trim()));
    assert.equal(prefixes.size, 3, `three replicas' prefixes: ${[...prefixes].join(' ')}\n${out}`);
  } finally {
    child.kill('SIGTERM');
  }
});

step('drain server 2: its replica moves, it takes no new work; undo: it takes work again', { timeout: 180_000 }, async () => {
  const t0 = Date.now();
  const drain = await viking(s1, ['hosts', 'drain', s2.name]);
  assert.match(drain.stdout, /draining/);
  await waitCounts({ [s2.name]: 0 }, 'server 2 runs none of the stack');
  await waitFor('3 replicas running on servers 1 and 3', async () => (await running(s1)) + (await running(s3)) === 3, 60_000, 200);
  await servesReplicas(s2, 3);
  figures.push(`drain server 2: its replica moved and all 3 serve ${Date.now() - t0} ms`);
  assert.equal((await hosts()).find((r) => r.name === s2.name)?.draining, true);
  await viking(s1, ['scale', stack, 'web=4']);
  await waitFor('4 replicas running on servers 1 and 3', async () => (await running(s1)) + (await running(s3)) === 4, 60_000, 200);
  assert.equal(await running(s2), 0, 'a draining server takes no new work');
  assert.ok([...(await placements()).values()].every((h) => h !== s2.name));

  await viking(s1, ['hosts', 'drain', s2.name, '--undo']);
  assert.equal((await hosts()).find((r) => r.name === s2.name)?.draining, false);
  await viking(s1, ['scale', stack, 'web=5']);
  await waitCounts({ [s2.name]: 1 }, 'the new replica lands on server 2 again');
});

step('a joiner\'s supervisor restarts a killed viking up --join, which comes back with the same etcd role', { timeout: 120_000 }, async () => {
  const before = await s3.upPid();
  assert.ok(before, `${s3.name} runs viking up`);
  const supervisor = await s3.supervisorPid();
  assert.ok(supervisor, `${s3.name}'s supervisor runs`);
  const joinState = await readFile(path.join(s3.data, 'join.json'), 'utf8');
  const membersBefore = ((await client.cluster.memberList({})).members ?? []).map((m) => `${m.ID}:${m.name}`).sort();
  const t0 = Date.now();
  process.kill(before, 'SIGKILL');
  const after = await waitFor('the supervisor to start viking up again', async () => {
    const pid = await s3.upPid();
    return pid && pid !== before ? pid : undefined;
  }, 30_000, 100);
  await waitFor(`${s3.name}'s host key back in etcd`, async () => (await client.get(hostKey(s3.name)).string()) !== null, 30_000, 100);
  await waitFor(`${s3.name} listed as an etcd member`, async () => (await hosts()).find((r) => r.name === s3.name)?.etcd === 'member', 30_000, 200);
  figures.push(`supervisor: viking up SIGKILLed on ${s3.name}, back (new pid ${after}) and in viking hosts ${Date.now() - t0} ms`);
  assert.equal(await s3.supervisorPid(), supervisor, 'the same supervisor loop');
  const { updatedAt: _b, ...stateBefore } = JSON.parse(joinState) as Record<string, unknown>;
  const { updatedAt: _a, ...stateAfter } = JSON.parse(await readFile(path.join(s3.data, 'join.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(stateAfter, stateBefore, 'the join state is the same (role, member id, endpoints)');
  assert.equal(stateAfter.role, 'member');
  const membersAfter = ((await client.cluster.memberList({})).members ?? []).map((m) => `${m.ID}:${m.name}`).sort();
  assert.deepEqual(membersAfter, membersBefore, 'the same etcd members: no second member added');
  await waitFor('etcd healthy through the restarted member', async () => {
    const c = connectEtcd([s3.etcd]);
    try {
      return (await c.get(hostKey(s1.name)).string()) !== null;
    } finally {
      c.close();
    }
  }, 30_000, 200);
});

step('a pulled cable: the cut server\'s work moves to the others; cable back, it takes work again', { timeout: 120_000 }, async () => {
  // A joiner that runs a replica (server 3's moved away while its viking up was restarted).
  const run = [...(await placements())];
  const victim = [s3, s2].find((s) => run.some(([, h]) => h === s.name));
  assert.ok(victim, `a joiner runs a replica: ${JSON.stringify(run)}`);
  const other = victim === s3 ? s2 : s3;
  const lost = run.filter(([, h]) => h === victim.name).map(([job]) => job);
  const t0 = Date.now();
  await victim.cutCable();
  try {
    // The test's etcd client talks to server 1's member, which keeps quorum with server 2.
    await waitFor(`${victim.name}'s replicas placed on live servers`, async () => {
      const now = await placements();
      return lost.every((job) => now.get(job) && now.get(job) !== victim.name);
    }, 30_000, 100);
    const placedMs = Date.now() - t0;
    await waitFor('5 replicas running on the two other servers', async () => (await running(s1)) + (await running(other)) === 5, 60_000, 200);
    for (const s of [s1, other]) await servesReplicas(s, 5, 30_000);
    figures.push(`cable cut on ${victim.name}: ${lost.length} replica(s) re-placed ${placedMs} ms, running elsewhere ${Date.now() - t0} ms`);
  } finally {
    await victim.restoreCable();
  }
  await waitFor(`${victim.name} back in viking hosts`, async () => (await hosts()).some((r) => r.name === victim.name), 30_000, 200);
  await waitCounts({ [victim.name]: 0 }, 'the cut server stops the copies the cluster moved away', 30_000);
});

step('a fourth server joins later as an etcd client only, and new replicas land on it', { timeout: 180_000 }, async () => {
  s4 = await cluster.join({ tags: ['late'] });
  figures.push(`join 4 (etcd client): bootstrap.sh --join ${s4.bootstrap.ms} ms`);
  const daemon = JSON.parse(await readFile(s4.machine.daemonJson, 'utf8')) as { 'insecure-registries'?: string[] };
  assert.deepEqual(daemon['insecure-registries'], [`${s1.ip}:${PORTS.registry}`]);
  const row = (await hosts()).find((r) => r.name === s4!.name);
  assert.ok(row, `${s4.name} in viking hosts`);
  assert.equal(row.ip, s4.ip);
  assert.equal(row.etcd, 'client', `${s4.name} is an etcd client only: ${JSON.stringify(row)}`);
  assert.deepEqual(row.tags, ['late']);
  assert.equal(((await client.cluster.memberList({})).members ?? []).length, 3, 'still three etcd members');
  const t0 = Date.now();
  // Two new replicas: the server whose cable was pulled is empty too, and spread gives each empty server one.
  await viking(s4, ['scale', stack, 'web=7']);
  await waitCounts({ [s4.name]: 1 }, 'a new replica lands on server 4').catch(async (err: Error) => {
    const ps = await s1.viking(['ps', stack]);
    const show = await s1.viking(['hosts', 'show', s4!.name]);
    throw new Error(`${err.message}\nviking ps:\n${ps.stdout}${ps.stderr}\nviking hosts show ${s4!.name}:\n${show.stdout}${show.stderr}`);
  });
  await servesReplicas(s4, 7, 30_000);
  figures.push(`scale 5 -> 7 after server 4 joined: its replica runs and its router serves all 7 in ${Date.now() - t0} ms`);
});

step('power off server 4 and on again: its work moves away, and it comes back as boot would', { timeout: 120_000 }, async () => {
  assert.ok(s4, 'server 4 joined');
  const srv = s4;
  const off = await srv.powerOff();
  assert.ok(off.killed >= 5, `every process of ${srv.name} died at once: ${off.killed}`);
  const t0 = Date.now();
  await waitFor(`${srv.name}'s replica placed elsewhere`, async () => [...(await placements()).values()].every((h) => h !== srv.name), 30_000, 100);
  figures.push(`power off ${srv.name}: its replica re-placed in ${Date.now() - t0} ms`);
  const t1 = Date.now();
  await srv.powerOn();
  await waitFor(`${srv.name} back in viking hosts as an etcd client`, async () => (await hosts()).find((r) => r.name === srv.name)?.etcd === 'client', 60_000, 200);
  assert.ok(await srv.supervisorPid(), 'its supervisor runs again');
  figures.push(`power on ${srv.name} (dockerd.sh start + viking-supervise.sh start): in viking hosts after ${Date.now() - t1} ms`);
});

step('viking rm leaves nothing of the stack in any daemon', { timeout: 120_000 }, async () => {
  await viking(s2, ['rm', stack, '--yes']);
  for (const s of all()) {
    const containers = await s.docker.listContainers({ all: true, filters: { label: [`viking.stack=${stack}`] } });
    assert.deepEqual(containers.map((c) => c.Names), [], `${s.name} has no container of the stack`);
    const images = (await s.docker.listImages()).filter((i) => (i.RepoTags ?? []).some((t) => t.includes(`/${stack}/`)) || i.Labels?.['viking.stack'] === stack);
    assert.deepEqual(images.map((i) => i.RepoTags), [], `${s.name} has no image of the stack`);
  }
  assert.equal((await placedHosts(client, stack)).size, 0);
  assert.equal((await client.getAll().prefix(`${PREFIX.ports}${stack}/`).keys()).length, 0);
});

step('teardown removes every namespace, link, rule, cgroup, mount, process and file of the servers', { timeout: 120_000 }, async () => {
  const { id, dir } = cluster.lab;
  client.close();
  if (failed) process.stdout.write(`servers: logs of every server kept in ${await cluster.keepLogs()}\n`);
  failed = false;
  const t0 = Date.now();
  await cluster.teardown();
  figures.push(`teardown of ${all().length} servers: ${Date.now() - t0} ms`);
  assert.deepEqual(await labLeftovers(id, dir), []);
});

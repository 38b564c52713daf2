/**
 * Servers joining a cluster through `viking up --join`, with real etcd
 * members on loopback addresses (127.0.0.x) and real `viking up` processes:
 * the seed and the next two become voting etcd members (two of them joining
 * at once), a fourth is a client only, a restart never adds a second member,
 * a crash between member add and start is resumed, a learner left by a
 * server that never came back is removed, and a bad token changes nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectEtcd } from '../../lib/store/client.js';
import { addLearner, listMembers } from '../../lib/join/membership.js';
import { writeJoinState, type JoinState } from '../../lib/join/join-state.js';
import { removeHostContainers } from '../helpers/docker.js';
import { runCli } from '../helpers/host-process.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePortPair, seedToken, startUp, type UpProcess } from '../helpers/up-process.js';

const base = uniqueName('join');
let work: string;
const procs: UpProcess[] = [];
let seed: UpProcess;
let token: string;

async function server(n: number, o: { join?: boolean; token?: string } = {}): Promise<UpProcess> {
  const ip = `127.0.0.${n}`;
  const p = startUp({
    name: `${base}-${n}`, ip, dataDir: path.join(work, `s${n}`), etcdPort: await freePortPair(ip),
    ...(o.join === false ? { registryPort: await freePortPair('127.0.0.1') } : { join: seed.etcdUrl, token: o.token ?? token }),
  });
  procs.push(p);
  return p;
}

/** Restarts a server exactly as its supervisor would: same command, same data dir. */
function restart(p: UpProcess, o: { token?: string } = {}): UpProcess {
  const again = startUp({ name: p.name, ip: p.ip, dataDir: p.dataDir, etcdPort: p.etcdPort, join: seed.etcdUrl, token: o.token ?? token });
  procs.push(again);
  return again;
}

async function members(): Promise<Array<{ name: string; isLearner: boolean; peerURLs: string[] }>> {
  const client = connectEtcd(seed.etcdUrl);
  try {
    return await listMembers(client);
  } finally {
    client.close();
  }
}

const joinState = async (p: { dataDir: string }): Promise<JoinState> => JSON.parse(await readFile(path.join(p.dataDir, 'join.json'), 'utf8')) as JoinState;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-join-'));
  seed = await server(2, { join: false });
  await seed.ready;
  token = await seedToken(seed);
});

after(async () => {
  for (const p of procs.reverse()) await p.stop().catch(() => {});
  for (let n = 2; n < 12; n++) await removeHostContainers(`${base}-${n}`);
  await rm(work, { recursive: true, force: true });
});

test('a bad token is refused before anything in the cluster changes', async () => {
  const before = await members();
  const bad = await server(9, { token: 'vkt_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
  assert.notEqual(await bad.exited, 0);
  assert.match(bad.output(), /VIKING_E_JOIN_TOKEN_INVALID/);
  const none = await server(10, { token: '' });
  assert.notEqual(await none.exited, 0);
  assert.match(none.output(), /VIKING_E_JOIN_TOKEN_INVALID: joining .* needs an API token/);
  assert.deepEqual(await members(), before);
});

test('two servers joining at once both become voting etcd members; the seed shows as the first', async () => {
  assert.equal((await joinState(seed)).role, 'seed');
  const [a, b] = [await server(3), await server(4)];
  await Promise.all([a.ready, b.ready]);
  const list = await members();
  assert.deepEqual(list.map((m) => [m.name, m.isLearner]).sort(), [[`${base}-2`, false], [`${base}-3`, false], [`${base}-4`, false]]);
  for (const p of [a, b]) {
    const s = await joinState(p);
    assert.equal(s.role, 'member');
    assert.equal(s.phase, 'voting');
    // The voting members it saw when it was promoted: the seed and itself at least.
    assert.ok(s.endpoints.includes(seed.etcdUrl) && s.endpoints.includes(p.etcdUrl), JSON.stringify(s.endpoints));
  }
  // One of them waited for the other's join lock, or etcd's one-learner rule would have refused it.
  assert.match(a.output() + b.output(), /added as etcd learner/);
});

test('a fourth server is an etcd client of the three members', async () => {
  const c = await server(5);
  await c.ready;
  const s = await joinState(c);
  assert.equal(s.role, 'client');
  assert.deepEqual(s.endpoints, [`http://127.0.0.2:${seed.etcdPort}`, procs[3]!.etcdUrl, procs[4]!.etcdUrl].sort());
  assert.equal((await members()).length, 3);
  const hosts = await runCli(['hosts', '--json', '--api', `http://127.0.0.5:${(await c.ready).api}`], { VIKING_TOKEN: token });
  assert.equal(hosts.code, 0, hosts.stderr);
  const rows = JSON.parse(hosts.stdout) as Array<{ name: string; etcd: string }>;
  assert.deepEqual(rows.filter((r) => r.name.startsWith(base)).map((r) => [r.name, r.etcd]), [
    [`${base}-2`, 'member'], [`${base}-3`, 'member'], [`${base}-4`, 'member'], [`${base}-5`, 'client'],
  ]);
});

test('a restarted member and a restarted client come back as they were, adding no member', async () => {
  const member = procs.find((p) => p.name === `${base}-3` && p.child.exitCode === null)!;
  const client = procs.find((p) => p.name === `${base}-5`)!;
  await member.stop();
  await client.stop();
  // The supervisor runs the same command again, with no token this time: the join state is enough.
  const [m2, c2] = [restart(member, { token: '' }), restart(client, { token: '' })];
  await Promise.all([m2.ready, c2.ready]);
  assert.equal((await members()).length, 3);
  assert.equal((await joinState(m2)).role, 'member');
  assert.equal((await joinState(c2)).role, 'client');
  assert.doesNotMatch(m2.output(), /added as etcd learner/);
});

test('a crash right after member add is resumed, not added twice', async () => {
  // Take member 4 out for good, so the cluster has room (2 voting) again.
  const gone = procs.find((p) => p.name === `${base}-4`)!;
  await gone.stop();
  const client = connectEtcd(seed.etcdUrl);
  try {
    const id = (await listMembers(client)).find((m) => m.name === gone.name)!.id;
    await client.cluster.memberRemove({ ID: id });
  } finally {
    client.close();
  }
  // Another that died the same way, whose supervisor starts it again: its join.json says what a crash leaves.
  const ip = '127.0.0.6';
  const etcdPort = await freePortPair(ip);
  const dataDir = path.join(work, 's6');
  const name = `${base}-6`;
  await writeJoinState(dataDir, { role: 'member', phase: 'adding', name, ip, join: seed.etcdUrl, peerUrl: `http://${ip}:${etcdPort + 1}`, clientUrl: `http://${ip}:${etcdPort}`, endpoints: [seed.etcdUrl] });
  const c2 = connectEtcd(seed.etcdUrl);
  try {
    await addLearner(c2, `http://${ip}:${etcdPort + 1}`, { waitMs: 30_000 });
  } finally {
    c2.close();
  }
  const crashed = startUp({ name, ip, dataDir, etcdPort, join: seed.etcdUrl, token: '' });
  procs.push(crashed);
  await crashed.ready;
  assert.match(crashed.output(), /resuming etcd member \w+ \(learner\)/);
  const list = await members();
  assert.deepEqual(list.map((m) => [m.name, m.isLearner]).sort(), [[`${base}-2`, false], [`${base}-3`, false], [name, false]]);
});

test('a learner left by a server that never returned is removed by the next joiner', async () => {
  const client = connectEtcd(seed.etcdUrl);
  try {
    await addLearner(client, 'http://127.0.0.11:2380', { waitMs: 30_000 });
  } finally {
    client.close();
  }
  assert.equal((await members()).filter((m) => m.isLearner).length, 1);
  const next = await server(7);
  await next.ready;
  assert.match(next.output(), /removing etcd learner \(never started\) http:\/\/127\.0\.0\.11:2380/);
  const list = await members();
  assert.equal(list.filter((m) => m.isLearner).length, 0);
  assert.equal(list.length, 3);
  assert.equal((await joinState(next)).role, 'client');
});

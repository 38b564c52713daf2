/**
 * etcd losing members, on the real parts: a 3-member etcd cluster, two
 * `viking host` processes, a scale-2 stack spread over both, and keep-alive
 * GETs and POSTs through both routers the whole time.
 *
 * One member lost (the etcd leader, SIGKILL): the API, a push and routing
 * keep working. Two of three lost (the second SIGSTOPped, so calls to it
 * hang instead of failing fast): both routers keep serving what they had,
 * the hosts keep their containers, every API route answers 503
 * VIKING_E_ETCD_UNAVAILABLE within 2 s, and the CLI says in one line that
 * etcd has no quorum. Quorum back: the same containers run, /run and /ports
 * are as before, and the next push works.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { runCli } from '../helpers/host-process.js';
import { baseImages, docker, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { helloCopy } from '../helpers/hello.js';
import { Load } from '../helpers/load.js';
import { connectEtcd } from '../../lib/store/client.js';
import { PREFIX } from '../../lib/store/keys.js';
import { createApi } from '../../lib/api/server.js';
import { placedHosts } from '../../lib/store/placements.js';

const stack = uniqueName('quorum');
const domain = `${stack}.quorum.test`;
let cluster: Cluster;
let client: Etcd3;
let work: string;
let loads: Load[] = [];
/** Members this file stopped, continued in after() whatever happened. */
const stopped = new Set<number>();
const figures: string[] = [];
/** A test failed: the hosts' logs are printed in after(), for whoever reads a CI run. */
let failed = false;

const push = async (message: string) => {
  const dir = await helloCopy({ dir: path.join(work, message), stack, message, domain });
  return runCli(['push', dir, '--api', cluster.hosts[0]!.api]);
};

/** Running containers of the stack: id -> job. */
async function running(): Promise<Map<string, string>> {
  const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } });
  return new Map(list.map((c) => [c.Id, `${c.Labels['viking.tag']}/${c.Labels['viking.node']}/${c.Labels['viking.instance']}@${c.Labels['viking.host']}`]));
}

async function strings(prefix: string): Promise<Record<string, string>> {
  return client.getAll().prefix(prefix).strings();
}

/** The index of the member that leads etcd now. */
async function etcdLeaderIndex(): Promise<number> {
  for (let i = 0; i < cluster.etcd.urls.length; i++) {
    if (stopped.has(i)) continue;
    const one = new Etcd3({ hosts: cluster.etcd.urls[i]! });
    try {
      const s = await one.maintenance.status();
      if (s.leader === s.header.member_id) return i;
    } catch {
      /* not this one */
    } finally {
      one.close();
    }
  }
  throw new Error('no etcd leader');
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-quorum-'));
  cluster = await startCluster({ prefix: uniqueName('qh'), hosts: 2 });
  client = connectEtcd(cluster.etcd.urls);
  const first = await push('first');
  assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
  loads = cluster.hosts.map((h) => new Load({ port: h.routerPort, host: domain, ip: h.ip, ok: /from \S+: /, clients: 4 }));
  await waitFor('load through both routers', () => loads.every((l) => l.ok > 20));
});

after(async () => {
  process.stdout.write(`etcd quorum figures:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
  for (const l of loads) await l.stop();
  if (failed || process.env.VIKING_TEST_KEEP_LOGS) for (const h of cluster?.hosts ?? []) process.stdout.write(`--- ${h.name}\n${h.output()}\n`);
  for (const i of stopped) cluster.etcd.members[i]?.process.kill('SIGCONT');
  client?.close();
  await cluster?.stop();
  await removeStackArtifacts(stack);
  await rm(work, { recursive: true, force: true });
});

const failures = (): string[] => loads.flatMap((l) => l.failed);

test('one etcd member lost (the etcd leader): API, push and routing keep working', { timeout: 120_000 }, async () => {
  const leader = await etcdLeaderIndex();
  cluster.etcd.members[leader]!.process.kill('SIGKILL');
  stopped.add(leader);
  const ps = await waitFor('viking ps to answer', async () => {
    const r = await runCli(['ps', stack, '--api', cluster.hosts[1]!.api]);
    return r.code === 0 ? r : undefined;
  }, 15_000, 200);
  assert.match(ps.stdout, /running/);
  const started = Date.now();
  const second = await push('second');
  assert.equal(second.code, 0, `push with one member lost:\n${second.stdout}\n${second.stderr}`);
  figures.push(`push with the etcd leader member killed: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await waitFor('both routers to serve the second release', () => loads.every((l) => l.answeredBy.size > 0) && true);
  assert.deepEqual(failures(), [], 'no request failed with one member lost');
});

test('two of three lost: routers serve, containers stay, the API answers 503 in 2 s, the CLI says so; quorum back: nothing lost', { timeout: 180_000 }, async () => {
  try {
    await twoOfThreeLost();
  } catch (err) {
    failed = true;
    throw err;
  }
});

async function twoOfThreeLost(): Promise<void> {
  const live = [0, 1, 2].filter((i) => !stopped.has(i));
  // Settled: two containers of one release, two endpoints, nothing retiring, and the same for a second.
  // (Two running containers alone can be one new and one old replica mid-rollout, on a slower host.)
  const settled = async (): Promise<string | undefined> => {
    const now = await running();
    const tags = new Set([...now.values()].map((v) => v.split('/')[0]));
    const retiring = Object.keys(await strings(PREFIX.retiring)).filter((k) => k.includes(`/${stack}/`));
    if (now.size !== 2 || tags.size !== 1 || retiring.length > 0) return undefined;
    if (Object.keys(await strings(`${PREFIX.ports}${stack}/`)).length !== 2) return undefined;
    return [...now.keys()].sort().join(',');
  };
  let last = '';
  let since = 0;
  await waitFor('the stack to settle on one release', async () => {
    const s = await settled();
    if (!s || s !== last) {
      [last, since] = [s ?? '', Date.now()];
      return false;
    }
    return Date.now() - since >= 1000;
  }, 30_000, 100);
  const before = { containers: await running(), run: Object.fromEntries(await placedHosts(client, stack)), ports: await strings(`${PREFIX.ports}${stack}/`) };
  assert.equal(Object.keys(before.ports).length, 2);
  const okBefore = loads.map((l) => l.ok);

  // A stopped process keeps its sockets open and answers nothing: the way a hung or cut member looks.
  const victims = live.slice(0, live.length - 1);
  for (const v of victims) {
    cluster.etcd.members[v]!.process.kill('SIGSTOP');
    stopped.add(v);
  }
  const lostAt = Date.now();

  // Every host's API: a read and a write, each answered 503 within 2 s.
  for (const h of cluster.hosts) {
    for (const [method, url, body] of [
      ['GET', '/v1/ps', undefined],
      ['GET', '/v1/info', undefined],
      ['POST', `/v1/stacks/${stack}/scale`, JSON.stringify({ nodes: { web: 3 } })],
    ] as const) {
      const t0 = Date.now();
      const res = await fetch(`${h.api}${url}`, {
        method,
        headers: { authorization: `Bearer ${h.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(10_000),
      });
      const took = Date.now() - t0;
      const json = (await res.json()) as { code?: string; message?: string };
      assert.equal(res.status, 503, `${h.name} ${method} ${url}: ${JSON.stringify(json)}`);
      assert.equal(json.code, 'VIKING_E_ETCD_UNAVAILABLE');
      assert.ok(took < 2000, `${h.name} ${method} ${url} answered in ${took} ms`);
      figures.push(`no quorum: ${h.name} ${method} ${url} -> 503 in ${took} ms`);
    }
  }

  // Every route of the API, in process against the same etcd: none hangs.
  const app = createApi({ client, docker, dataDir: work, hostName: 'sweep', clusterId: 'sweep', maxUploadBytes: 1024, routerPort: 0, etcdUrls: cluster.etcd.urls });
  await app.ready();
  const token = cluster.hosts[0]!.token;
  const answers = await Promise.all(
    app.vikingRoutes.map(async (r) => {
      const url = r.url.replace(/:[a-z]+/gi, (p) => (p === ':instance' ? '1' : 'x'));
      const t0 = Date.now();
      const res = await app.inject({ method: r.method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { payload: {} }) });
      const json = (res.headers['content-type'] ?? '').toString().startsWith('application/json') ? (res.json() as { code?: string; message?: string }) : {};
      return { route: `${r.method} ${r.url}`, status: res.statusCode, code: json.code, message: json.message, took: Date.now() - t0 };
    }),
  );
  await app.close();
  assert.ok(answers.length > 20, `the sweep saw the routes: ${answers.length}`);
  for (const a of answers) {
    assert.ok(a.took < 2000, `${a.route} answered in ${a.took} ms`);
    if (a.route === 'GET /v1/ping') assert.equal(a.status, 200);
    // The dashboard's own files (GET /ui, /ui/*) are served without etcd: the page loads and says etcd is away.
    else if (a.route.startsWith('GET /ui')) assert.ok(a.status === 200 || a.status === 404, `${a.route}: ${JSON.stringify(a)}`);
    else assert.deepEqual([a.status, a.code], [503, 'VIKING_E_ETCD_UNAVAILABLE'], `${a.route}: ${JSON.stringify(a)}`);
  }
  figures.push(`no quorum: ${answers.length} routes in process, slowest ${Math.max(...answers.map((a) => a.took))} ms`);

  // The CLI: one plain line, exit 1.
  const t0 = Date.now();
  const cli = await runCli(['ps', '--api', cluster.hosts[1]!.api]);
  figures.push(`no quorum: viking ps exited ${cli.code} after ${Date.now() - t0} ms: ${cli.stderr.trim()}`);
  assert.equal(cli.code, 1);
  const lines = cli.stderr.trim().split('\n');
  assert.equal(lines.length, 1, cli.stderr);
  assert.match(lines[0]!, /^error VIKING_E_ETCD_UNAVAILABLE: etcd has no quorum or cannot be reached .*endpoint health/);

  // Hold the outage well past the host and leader lease TTLs (2 s here), sampling every 100 ms.
  const containersSeen = new Set<number>();
  while (Date.now() - lostAt < 12_000) {
    const now = await running();
    containersSeen.add(now.size);
    assert.deepEqual([...now.keys()].sort(), [...before.containers.keys()].sort(), 'the hosts keep their containers without etcd');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(loads.every((l, i) => l.ok > okBefore[i]! + 50), `both routers kept answering: ${loads.map((l) => l.ok)}`);
  assert.deepEqual(failures(), [], 'no request failed without quorum');

  // Quorum back.
  for (const v of victims) {
    cluster.etcd.members[v]!.process.kill('SIGCONT');
    stopped.delete(v);
  }
  const backAt = Date.now();
  await waitFor('the API to answer again', async () => (await runCli(['ps', stack, '--api', cluster.hosts[0]!.api])).code === 0, 30_000, 200);
  figures.push(`quorum back: API answers after ${Date.now() - backAt} ms`);
  // Converged: /ports as before, and it stays so over several lease TTLs, with the same containers.
  const settledAt = Date.now();
  while (Date.now() - settledAt < 8_000) {
    const show = (m: Map<string, string>): string[] => [...m].map(([id, job]) => `${id.slice(0, 12)} ${job}`).sort();
    assert.deepEqual(show(await running()), show(before.containers), 'the same containers run after quorum is back');
    await new Promise((r) => setTimeout(r, 200));
  }
  await waitFor('/ports to be as before', async () => JSON.stringify(await strings(`${PREFIX.ports}${stack}/`)) === JSON.stringify(before.ports), 10_000);
  assert.deepEqual(Object.fromEntries(await placedHosts(client, stack)), before.run, 'every job is placed where it was');
  assert.deepEqual(failures(), [], 'no request failed when quorum came back');
  const third = await push('third');
  assert.equal(third.code, 0, `push after quorum is back:\n${third.stdout}\n${third.stderr}`);
  assert.deepEqual(failures(), [], 'no request failed in the push after');
  figures.push(`requests through the routers: ${loads.map((l) => l.total).join(' + ')}, failed ${failures().length}`);
}

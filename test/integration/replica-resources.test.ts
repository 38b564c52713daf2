/**
 * What replicas use and how they died (issue 18), with a real slave, a real
 * API and real busybox containers on Docker:
 * - a job with a 24 MiB limit that then asks for 96 MiB is killed by the
 *   kernel; Docker reports State.OOMKilled, the slave records "killed: out of
 *   memory" and the row `viking ps` prints carries it as the reason;
 * - a steady job shows its CPU %, memory against its 32 MiB limit and uptime
 *   in `viking ps --stats` (GET /v1/ps joined with GET /v1/resources), and the
 *   same figures are gauges in /metrics;
 * - a replica, a cron run and a one-off of one node get the same sandbox
 *   (lib/slave/sandbox.ts) and the same VIKING_* environment.
 * - concurrent /metrics scrapes and /v1/local/resources calls share one
 *   sample: one Docker stats call per container, counted on a real Docker
 *   socket seen through a counting proxy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { docker } from '../helpers/docker.js';
import { startSlaveHost, type SlaveHost } from '../helpers/slave-host.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { deployKey, procKey, runKey } from '../../lib/store/keys.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
import { listJobs } from '../../lib/api/status.js';
import { reasonText } from '../../lib/cli/commands/ps.js';
import type { JobSpec } from '../../lib/store/records.js';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { ApiClient } from '../../lib/cli/api-client.js';
import { replicaStats, replicaStatsTable } from '../../lib/cli/commands/top.js';
import { CRON_LABEL, CronRunner } from '../../lib/cron/runner.js';
import { startOneOff } from '../../lib/ops/oneoff.js';
import { cronHostKey, cronRunKey } from '../../lib/store/keys.js';
import type { ContainerInspectInfo } from 'dockerode';
import net from 'node:net';
import Docker from 'dockerode';

const host = uniqueName('oom');
const stack = uniqueName('oomst');
let h: SlaveHost;
let client: Etcd3;
let app: FastifyInstance;
let dir: string;
let api: ApiClient;
let token: string;

before(async () => {
  h = await startSlaveHost(host, '127.0.0.1', { healthTimeoutMs: 15_000, drainMs: 100, resyncMs: 1000, backoff: { baseMs: 60_000, maxMs: 60_000, maxFailures: 3 } });
  client = h.client;
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-resources-'));
  app = createApi({ client, docker, dataDir: dir, hostName: host, maxUploadBytes: 1 << 20, routerPort: 1 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  token = (await createToken(client, 'resources')).token;
  api = new ApiClient({ api: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token, from: { api: 'flag', token: 'flag' } });
});

after(async () => {
  await app?.close();
  await h?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const deploy = async (job: JobSpec): Promise<void> => {
  await client.put(procKey(job)).value(JSON.stringify(job));
  await client.put(deployKey(host, job)).value('');
  await client.put(deployKey(host, job)).value('');
};
const job = (node: string, run: string, memoryMiB: number): JobSpec => ({
  stack, tag: 'v1', node, instance: 1, image: BUSYBOX_IMAGE, expose: [], volumes: [], run,
  env: {}, service: false, tags: [], prefer: [], memory: memoryMiB * 1024 * 1024, cpu: 0, scale: 1,
});

test('viking ps --stats: CPU, memory against the limit and uptime from the Docker Engine; the same as /metrics gauges', async () => {
  // Busy for a moment (some CPU to see), then idle.
  await deploy(job('steady', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 600', 32));
  await waitFor('steady runs', async () => (await listJobs(client, stack)).find((r) => r.node === 'steady' && r.state === 'running'), 30_000, 200);
  const row = await waitFor('its usage', async () => (await replicaStats(api, stack)).find((r) => r.node === 'steady' && r.memoryBytes !== null), 20_000, 300);
  assert.equal(row.memoryLimitBytes, 32 * 1024 * 1024);
  assert.ok(row.memoryBytes! > 0 && row.memoryBytes! < 32 * 1024 * 1024, String(row.memoryBytes));
  assert.ok(row.cpuPct === null || (row.cpuPct >= 0 && row.cpuPct <= 100 * os.availableParallelism()), String(row.cpuPct));
  assert.ok(row.startedAt !== null && Date.parse(row.startedAt) <= Date.now());
  const table = replicaStatsTable([row], Date.now());
  assert.match(table, /CPU\s+MEMORY\s+LIMIT\s+RESTARTS\s+UPTIME/);
  assert.match(table, /32\.0M/);
  const metrics = await (await fetch(`${api.base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  assert.match(metrics, new RegExp(`viking_container_memory_limit_bytes\\{stack="${stack}",node="steady",tag="v1",replica="1"\\} ${32 * 1024 * 1024}`));
  assert.match(metrics, new RegExp(`viking_container_memory_bytes\\{stack="${stack}",node="steady",tag="v1",replica="1"\\} \\d+`));
});

test('an OOM-killed replica shows "killed: out of memory" as its reason in viking ps', async () => {
  // Up first (the slave sees it running), then one 96 MiB buffer under a 24 MiB limit.
  await deploy(job('hog', 'sleep 1; exec dd if=/dev/zero of=/dev/null bs=96M count=1', 24));
  const row = await waitFor('the job failed with a reason', async () => (await listJobs(client, stack)).find((r) => r.node === 'hog' && r.reason !== null), 30_000, 200);
  assert.equal(row.reason, 'killed: out of memory');
  assert.match(reasonText(row, Date.now()) ?? '', /^killed: out of memory; next try in \d+s$/);
  assert.ok(['backoff', 'crash-loop'].includes(row.state), row.state);
});

test('a replica, a cron run and a one-off of one node get the same sandbox and VIKING_* environment', async () => {
  const spec = { ...job('boxed', 'exec sleep 600', 0), cpu: 0.5, env: { GREETING: 'ahoy' } };
  const cluster = (await client.get('/cluster/id').string()) ?? '';
  const runner = new CronRunner({ host, cluster, client, docker, resyncMs: 1000 });
  const started: string[] = [];
  try {
    await deploy(spec);
    const replica = await waitFor('the replica runs', async () => (await docker.listContainers({ filters: { label: [`viking.host=${host}`, 'viking.node=boxed'] } }))[0], 30_000, 200);
    started.push((await startOneOff({ docker, owner: { cluster, host }, spec, cmd: ['sleep', '600'], tty: false, stdin: false, detach: true, by: 'test' })).id);
    const tick = Date.now();
    await client.put(cronRunKey(stack, 'boxed', tick)).value(JSON.stringify({ stack, node: 'boxed', tick: new Date(tick).toISOString(), tag: 'v1', claimedBy: host, claimedAt: new Date().toISOString(), state: 'placed', host }));
    await client.put(cronHostKey(host, stack, 'boxed', tick)).value(JSON.stringify(spec));
    runner.start();
    const cron = await waitFor('the cron run runs', async () => (await docker.listContainers({ filters: { label: [`${CRON_LABEL.run}=${stack}/boxed/${tick}`] } }))[0], 30_000, 200);
    started.push(cron.Id);
    const sandbox = (i: ContainerInspectInfo) => {
      const c = i.HostConfig;
      return { Init: c.Init, Memory: c.Memory, PidsLimit: c.PidsLimit, NanoCpus: c.NanoCpus, CapDrop: c.CapDrop, SecurityOpt: c.SecurityOpt, RestartPolicy: c.RestartPolicy?.Name, log: [c.LogConfig?.Type, c.LogConfig?.Config['max-size']] };
    };
    const env = (i: ContainerInspectInfo) => i.Config.Env.filter((e) => /^(GREETING|VIKING_(STACK|TAG|NODE|HOST))=/.test(e)).sort();
    const [r, o, c] = await Promise.all([replica.Id, started[0]!, cron.Id].map((id) => docker.getContainer(id).inspect()));
    assert.deepEqual(sandbox(r!), { Init: true, Memory: 512 * 1024 ** 2, PidsLimit: 512, NanoCpus: 5e8, CapDrop: ['NET_RAW'], SecurityOpt: ['no-new-privileges'], RestartPolicy: 'no', log: ['json-file', '10m'] });
    assert.deepEqual(sandbox(o!), sandbox(r!), 'the one-off is confined like the replica');
    assert.deepEqual(sandbox(c!), sandbox(r!), 'the cron run is confined like the replica');
    assert.deepEqual(env(r!), ['GREETING=ahoy', `VIKING_HOST=${host}`, 'VIKING_NODE=boxed', `VIKING_STACK=${stack}`, 'VIKING_TAG=v1']);
    assert.deepEqual(env(o!), env(r!));
    assert.deepEqual(env(c!), env(r!));
  } finally {
    await runner.stop();
    await client.delete().key(deployKey(host, spec));
    await Promise.all(started.map((id) => docker.getContainer(id).remove({ force: true }).catch(() => {})));
  }
});

/** A Unix socket in front of the real Docker socket that counts the stats calls passing through. */
async function countingDockerSocket(where: string): Promise<{ docker: Docker; stats: () => number; close: () => Promise<void> }> {
  let stats = 0;
  const server = net.createServer((client) => {
    const engine = net.connect('/var/run/docker.sock');
    client.on('data', (d: Buffer) => {
      stats += (d.toString('latin1').match(/^GET [^ ]*\/containers\/[^/ ]+\/stats/gm) ?? []).length;
      engine.write(d);
    });
    engine.pipe(client);
    client.on('end', () => engine.end());
    client.on('error', () => engine.destroy());
    engine.on('error', () => client.destroy());
  });
  const socketPath = path.join(where, 'docker.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { docker: new Docker({ socketPath }), stats: () => stats, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('concurrent /metrics scrapes and /v1/local/resources calls make one Docker stats call per container', async () => {
  await waitFor('steady runs', async () => (await listJobs(client, stack)).find((r) => r.node === 'steady' && r.state === 'running'), 30_000, 200);
  const counting = await countingDockerSocket(dir);
  const counted = createApi({ client, docker: counting.docker, dataDir: dir, hostName: host, maxUploadBytes: 1 << 20, routerPort: 1 });
  try {
    await counted.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(counted.server.address() as AddressInfo).port}`;
    const get = (p: string): Promise<Response> => fetch(`${base}${p}`, { headers: { authorization: `Bearer ${token}` } });
    const answers = await Promise.all([get('/metrics'), get('/metrics'), get('/metrics'), get('/v1/local/resources'), get(`/v1/local/resources?stack=${stack}`)]);
    assert.ok(answers.every((r) => r.ok));
    const running = (await answers[3]!.json()) as Array<{ stack: string }>;
    assert.ok(running.length >= 1);
    assert.equal(counting.stats(), running.length, `${counting.stats()} stats calls for ${running.length} running containers and 5 concurrent callers`);
    const texts = await Promise.all(answers.slice(0, 3).map((r) => r.text()));
    for (const t of texts) assert.match(t, new RegExp(`viking_container_memory_bytes\\{stack="${stack}",node="steady"`));
  } finally {
    await counted.close();
    await counting.close();
  }
});

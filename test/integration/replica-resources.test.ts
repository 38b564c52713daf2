/**
 * What replicas use and how they died (issue 18), with a real slave, a real
 * API and real busybox containers on Docker:
 * - a job with a 24 MiB limit that then asks for 96 MiB is killed by the
 *   kernel; Docker reports State.OOMKilled, the slave records "killed: out of
 *   memory" and the row `viking ps` prints carries it as the reason;
 * - a steady job shows its CPU %, memory against its 32 MiB limit and uptime
 *   in `viking ps --stats` (GET /v1/ps joined with GET /v1/resources), and the
 *   same figures are gauges in /metrics;
 * - concurrent /metrics scrapes and /v1/local/resources calls share one
 *   sample: one Docker stats call per container, counted on a real Docker
 *   socket seen through a counting proxy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { baseImages, docker, removeHostContainers } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { deployKey, procKey, runKey } from '../../lib/store/keys.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Slave } from '../../lib/slave/slave.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
import { listJobs } from '../../lib/api/status.js';
import { reasonText } from '../../lib/cli/commands/ps.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import { ApiClient } from '../../lib/cli/api-client.js';
import { replicaStats, replicaStatsTable } from '../../lib/cli/commands/top.js';
import net from 'node:net';
import Docker from 'dockerode';

const host = uniqueName('oom');
const stack = uniqueName('oomst');
let etcd: TestEtcd;
let client: Etcd3;
let lease: HostLease;
let slave: Slave;
let app: FastifyInstance;
let dir: string;
let api: ApiClient;
let token: string;

const record: HostRecord = {
  name: host, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
};

before(async () => {
  await baseImages();
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  lease = new HostLease(client, record, 3);
  await lease.start();
  slave = new Slave({ host, ip: '127.0.0.1', client, docker, lease, healthTimeoutMs: 15_000, drainMs: 100, resyncMs: 1000, backoff: { baseMs: 60_000, maxMs: 60_000, maxFailures: 3 } });
  slave.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-resources-'));
  app = createApi({ client, docker, dataDir: dir, hostName: host, maxUploadBytes: 1 << 20, routerPort: 1 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  token = (await createToken(client, 'resources')).token;
  api = new ApiClient({ api: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token, from: { api: 'flag', token: 'flag' } });
});

after(async () => {
  await app?.close();
  await slave?.stop();
  await lease?.close();
  client?.close();
  await removeHostContainers(host);
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const deploy = async (job: JobSpec): Promise<void> => {
  await client.put(procKey(job)).value(JSON.stringify(job));
  await client.put(runKey(job)).value(host);
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

/**
 * The slave against a real Docker Engine and a real etcd: containers
 * started from /deploy with their labels, env, cwd and published ports,
 * health-checked before /ports is written, removed when unwanted, backed
 * off when they crash, and containers it does not own left alone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd, readPrefix } from '../../lib/store/client.js';
import { counterKey, deployKey, procKey } from '../../lib/store/keys.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Slave } from '../../lib/slave/slave.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
import type { DeployState, HostRecord, JobSpec, PortEndpoint } from '../../lib/store/records.js';

const host = uniqueName('slave');
const stack = uniqueName('st');
const ip = '127.0.0.1';
let etcd: TestEtcd;
let client: Etcd3;
let lease: HostLease;
let slave: Slave;

const record: HostRecord = {
  name: host, ip, tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
};

/** A busybox httpd that serves what the job's env and cwd were. */
const webJob = (instance: number, extra: Partial<JobSpec> = {}): JobSpec => ({
  stack, tag: 'v1', node: 'web', instance, image: BUSYBOX_IMAGE, expose: [8080], volumes: [],
  run: 'mkdir -p /www && echo "$GREETING $VIKING_INSTANCE $(pwd)" > /www/index.html && exec httpd -f -p 8080 -h /www',
  cwd: '/tmp', env: { GREETING: 'ahoy' }, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2,
  health: { path: '/' }, ...extra,
});

async function deploy(job: JobSpec): Promise<void> {
  await client.put(procKey(job)).value(JSON.stringify(job));
  await client.put(deployKey(host, job)).value('');
}

async function endpointsOf(job: JobSpec): Promise<PortEndpoint[]> {
  const { entries } = await readPrefix<PortEndpoint>(client, `/ports/${job.stack}/${job.node}/`);
  return entries.map((e) => e.value!).filter((e) => e.tag === job.tag && e.instance === job.instance);
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: ip, port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const stateOf = async (job: JobSpec): Promise<DeployState | undefined> => {
  const text = await client.get(deployKey(host, job)).string();
  return text ? (JSON.parse(text) as DeployState) : undefined;
};

before(async () => {
  await baseImages();
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  lease = new HostLease(client, record, 3);
  await lease.start();
  slave = new Slave({ host, ip, client, docker, lease, healthTimeoutMs: 15_000, drainMs: 100, resyncMs: 1000 });
  slave.start();
});

after(async () => {
  await slave?.stop();
  await lease?.close();
  client?.close();
  await removeHostContainers(host);
  await removeStackArtifacts(stack);
  await etcd?.stop();
});

test('a deployed job runs with its labels, env and cwd, and is published once healthy', async () => {
  const job = webJob(1);
  await deploy(job);
  const [endpoint] = await waitFor('endpoint published', async () => {
    const e = await endpointsOf(job);
    return e.length === 1 ? e : undefined;
  });
  assert.ok(endpoint);
  assert.equal(endpoint.host, host);
  assert.equal(endpoint.ip, ip);
  assert.equal(endpoint.port, 8080);
  assert.equal(endpoint.primary, true);
  assert.equal(await httpGet(endpoint.hostPort), 'ahoy 1 /tmp\n');

  const info = await docker.getContainer(endpoint.container).inspect();
  assert.deepEqual(
    [info.Config.Labels['viking.stack'], info.Config.Labels['viking.tag'], info.Config.Labels['viking.node'], info.Config.Labels['viking.instance'], info.Config.Labels['viking.host']],
    [stack, 'v1', 'web', '1', host],
  );
  assert.equal(info.HostConfig.PortBindings?.['8080/tcp']?.[0]?.HostIp, ip, 'published on the host address only');
  const state = await waitFor('state running', async () => ((await stateOf(job))?.state === 'running' ? stateOf(job) : undefined));
  assert.equal(state.container, endpoint.container);
});

test('a job removed from /deploy loses its endpoint, then its container', async () => {
  const job = webJob(2);
  await deploy(job);
  const [endpoint] = await waitFor('job 2 published', async () => {
    const e = await endpointsOf(job);
    return e.length === 1 ? e : undefined;
  });
  await client.delete().key(deployKey(host, job));
  await waitFor('container gone', async () => {
    const c = await docker.getContainer(endpoint!.container).inspect().catch(() => undefined);
    return c === undefined;
  });
  assert.deepEqual(await endpointsOf(job), []);
});

test('a changed spec replaces the container (start new, then the old goes)', async () => {
  const job = webJob(1, { env: { GREETING: 'hej' } });
  const before = (await endpointsOf(job))[0];
  assert.ok(before, 'job 1 runs from the first test');
  await client.put(procKey(job)).value(JSON.stringify(job));
  slave.wake();
  const after = await waitFor('new endpoint', async () => {
    const e = await endpointsOf(job);
    return e.length === 1 && e[0]!.container !== before.container ? e[0] : undefined;
  });
  assert.equal(await httpGet(after.hostPort), 'hej 1 /tmp\n');
  await waitFor('the old container to be removed', async () => (await docker.getContainer(before.container).inspect().catch(() => undefined)) === undefined);
});

test('a crashing job backs off with its reason, logs and failure count', async () => {
  const job = webJob(3, { run: 'echo "boom: missing config" >&2; exit 3', expose: [], health: undefined });
  delete job.health;
  await deploy(job);
  const state = await waitFor('backoff state', async () => {
    const s = await stateOf(job);
    return s?.state === 'backoff' ? s : undefined;
  });
  assert.match(state.reason ?? '', /exited with code 3/);
  assert.ok(state.logs?.some((l) => l.includes('boom: missing config')), `logs: ${JSON.stringify(state.logs)}`);
  assert.ok((state.failures ?? 0) >= 1);
  assert.ok(Number(await client.get(counterKey(host, job)).string()) >= 1);
  // It retries after the backoff: the failure count grows.
  await waitFor('second failure', async () => ((await stateOf(job))?.failures ?? 0) >= 2, 15_000);
  await client.delete().key(deployKey(host, job));
});

test('containers without this host\'s and this cluster\'s labels are never touched', async () => {
  const job = { 'viking.stack': stack, 'viking.tag': 'v1', 'viking.node': 'web', 'viking.instance': '9' };
  const labels = [
    { 'viking.host': `${host}-other`, 'viking.stack': stack },
    // Same host name, another cluster (a second cluster on this Docker Engine).
    { ...job, 'viking.host': host, 'viking.cluster': 'ffffffffffffffff' },
    // Same host name, no cluster label (made by an older viking): left alone, not adopted.
    { ...job, 'viking.host': host },
  ];
  const foreign = await Promise.all(labels.map((Labels) => docker.createContainer({ Image: BUSYBOX_IMAGE, Cmd: ['sleep', '60'], Labels, HostConfig: { Init: true } })));
  try {
    for (const f of foreign) await f.start();
    // A full pass with nothing foreign desired must leave them running.
    slave.wake();
    await waitFor('a slave pass', async () => (await stateOf(webJob(1)))?.state === 'running');
    await new Promise((r) => setTimeout(r, 1500)); // at least one periodic resync (1 s) has run
    for (const f of foreign) assert.equal((await f.inspect()).State.Running, true);
    // And what the slave runs carries the cluster's id.
    const mine = await docker.listContainers({ filters: { label: [`viking.host=${host}`, `viking.stack=${stack}`] } });
    const cluster = await client.get('/cluster/id').string();
    assert.ok(cluster && mine.some((c) => c.Labels['viking.cluster'] === cluster));
  } finally {
    for (const f of foreign) await f.remove({ force: true });
  }
});

/**
 * The slave against a real Docker Engine and a real etcd: containers
 * started from /deploy with their labels, env, cwd and published ports,
 * health-checked before /ports is written, removed when unwanted, backed
 * off when they crash (for ever, never given up), brought back when killed
 * from outside, and containers it does not own left alone. A slave that starts
 * again remembers each job's backoff; one whose watch died still follows
 * /deploy through its periodic resync.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Etcd3 } from 'etcd3';
import { docker, removeStackArtifacts } from '../helpers/docker.js';
import { startSlaveHost, type SlaveHost } from '../helpers/slave-host.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { readPrefix } from '../../lib/store/client.js';
import { deployKey, deployPrefix, procKey } from '../../lib/store/keys.js';
import type { PrefixWatch } from '../../lib/store/client.js';
import type { Slave } from '../../lib/slave/slave.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
import type { DeployState, JobSpec, PortEndpoint } from '../../lib/store/records.js';

const host = uniqueName('slave');
const stack = uniqueName('st');
const ip = '127.0.0.1';
let h: SlaveHost;
let client: Etcd3;
let slave: Slave;
/** Short delays so a crash loop goes round many times in a test; crash-loop after 3 in a row. */
const BACKOFF = { baseMs: 200, maxMs: 800, maxFailures: 3 };

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
  h = await startSlaveHost(host, ip, { healthTimeoutMs: 15_000, drainMs: 100, resyncMs: 1000, backoff: BACKOFF });
  ({ client, slave } = h);
});

after(async () => {
  await h?.stop();
  await removeStackArtifacts(stack);
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

test('a job withdrawn while its container is still in its health check is removed at once, not at the health deadline', async () => {
  // httpd serves nothing at /ready: 404, so the check goes on until the 15 s deadline.
  const job = webJob(7, { health: { path: '/ready' } });
  await deploy(job);
  const list = async () => docker.listContainers({ all: true, filters: { label: [`viking.host=${host}`, `viking.stack=${stack}`, 'viking.instance=7'] } });
  const [container] = await waitFor('job 7 started, in its health check', async () => {
    const l = await list();
    return l.length === 1 && (await stateOf(job))?.state === 'starting' ? l : undefined;
  });
  await new Promise((r) => setTimeout(r, 500)); // a few probes answered 404
  const t0 = Date.now();
  await client.delete().key(deployKey(host, job));
  await waitFor('the withdrawn container gone', async () => (await list()).length === 0, 8000, 100);
  const took = Date.now() - t0;
  assert.ok(took < 8000, `gone ${took} ms after it was withdrawn (health deadline 15 s)`);
  assert.equal(await docker.getContainer(container!.Id).inspect().catch(() => undefined), undefined);
  assert.deepEqual(await endpointsOf(job), [], 'never published');
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

test('a crashing job backs off with its reason, logs and failure count, and is never given up', async () => {
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
  assert.ok(state.retryAt && Date.parse(state.retryAt) > Date.parse(state.at) - 1, `next try given: ${state.retryAt}`);
  // Past --max-failures it is in crash-loop and still tried, at the longest backoff, again and again.
  const looping = await waitFor('crash-loop, tried twice past the limit', async () => {
    const s = await stateOf(job);
    return s?.state === 'crash-loop' && (s.failures ?? 0) >= BACKOFF.maxFailures + 2 ? s : undefined;
  }, 20_000);
  assert.equal(looping.restarts, looping.failures);
  const wait = Date.parse(looping.retryAt!) - Date.parse(looping.at);
  assert.ok(wait > BACKOFF.maxMs - 100 && wait <= BACKOFF.maxMs + 100, `waits the longest backoff: ${wait} ms`);
  assert.equal(await client.get(`/counter/${host}/${stack}/v1/web/3`).string(), null, 'no /counter key: the count lives in /deploy');
  await client.delete().key(deployKey(host, job));
});

test('a container killed or removed from outside comes back, every time', async () => {
  const job = webJob(4);
  await deploy(job);
  let previous = '';
  // More kills than --max-failures: an old slave gave the job up after the third.
  for (let round = 1; round <= BACKOFF.maxFailures + 2; round++) {
    const [endpoint] = await waitFor(`job 4 published again (round ${round})`, async () => {
      const e = await endpointsOf(job);
      return e.length === 1 && e[0]!.container !== previous ? e : undefined;
    }, 20_000);
    assert.equal(await httpGet(endpoint!.hostPort), 'ahoy 4 /tmp\n');
    previous = endpoint!.container;
    const c = docker.getContainer(previous);
    if (round % 2 === 1) await c.kill();
    else await c.remove({ force: true });
  }
  const back = await waitFor('job 4 running after the last removal', async () => {
    const s = await stateOf(job);
    return s?.state === 'running' && s.container !== previous ? s : undefined;
  }, 20_000);
  assert.ok((back.restarts ?? 0) >= Math.ceil((BACKOFF.maxFailures + 2) / 2), `kills are counted as restarts: ${JSON.stringify(back)}`);
  await client.delete().key(deployKey(host, job));
});

test('a slave that starts again remembers the backoff from /deploy', async () => {
  const job = webJob(5, { run: 'echo "no luck" >&2; exit 4', expose: [] });
  delete job.health;
  await deploy(job);
  const before = await waitFor('three failures', async () => {
    const s = await stateOf(job);
    return (s?.failures ?? 0) >= 3 ? s : undefined;
  }, 20_000);
  await h.restartSlave();
  slave = h.slave;
  const after = await waitFor('a failure seen by the new slave', async () => {
    const s = await stateOf(job);
    return s && (s.restarts ?? 0) > (before.restarts ?? 0) + 1 ? s : undefined;
  }, 20_000);
  // A fresh memory would have counted 1 failure in a row and 1 restart.
  assert.ok((after.failures ?? 0) > (before.failures ?? 0), `failures in a row go on: ${before.failures} -> ${after.failures}`);
  assert.equal(after.state, 'crash-loop');
  await client.delete().key(deployKey(host, job));
});

test('a slave whose /deploy watch died still follows /deploy by its periodic resync', async () => {
  // A watch stream can die without a word (a member behind a cut cable): cancel this slave's own.
  const watch = (slave as unknown as { watch: PrefixWatch }).watch;
  await watch.cancel();
  const job = webJob(6);
  const t0 = Date.now();
  await deploy(job);
  await waitFor('job 6 published without a watch', async () => (await endpointsOf(job)).length === 1, 10_000);
  const took = Date.now() - t0;
  await client.delete().key(deployKey(host, job));
  await waitFor('job 6 gone without a watch', async () => (await endpointsOf(job)).length === 0 && (await docker.listContainers({ all: true, filters: { label: [`viking.host=${host}`, 'viking.instance=6'] } })).length === 0, 10_000);
  assert.ok(took < 6000, `resync (every 1 s) picked it up in ${took} ms`);
  assert.deepEqual((await client.getAll().prefix(deployPrefix(host)).keys()).filter((k) => k.endsWith('/6')), []);
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
    // Two more passes: at least one whole pass began after the foreign containers ran.
    const seen = slave.passCount;
    await waitFor('two more slave passes (the periodic resync)', () => slave.passCount >= seen + 2, 10_000);
    for (const f of foreign) assert.equal((await f.inspect()).State.Running, true);
    // And what the slave runs carries the cluster's id.
    const mine = await docker.listContainers({ filters: { label: [`viking.host=${host}`, `viking.stack=${stack}`] } });
    const cluster = await client.get('/cluster/id').string();
    assert.ok(cluster && mine.some((c) => c.Labels['viking.cluster'] === cluster));
  } finally {
    for (const f of foreign) await f.remove({ force: true });
  }
});

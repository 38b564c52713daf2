/**
 * The slave against a real Docker Engine and a real etcd: containers
 * started from /deploy with their labels, env, cwd and published ports,
 * health-checked before /ports is written, removed when unwanted, backed
 * off when they crash, and containers it does not own left alone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestEtcd } from '../helpers/etcd.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd, readPrefix } from '../../lib/store/client.js';
import { counterKey, deployKey, procKey } from '../../lib/store/keys.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Slave } from '../../lib/slave/slave.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
const host = uniqueName('slave');
const stack = uniqueName('st');
const ip = '127.0.0.1';
let etcd;
let client;
let lease;
let slave;
const record = {
    name: host, ip, tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
    api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
};
/** A busybox httpd that serves what the job's env and cwd were. */
const webJob = (instance, extra = {}) => ({
    stack, tag: 'v1', node: 'web', instance, image: BUSYBOX_IMAGE, expose: [8080], volumes: [],
    run: 'mkdir -p /www && echo "$GREETING $VIKING_INSTANCE $(pwd)" > /www/index.html && exec httpd -f -p 8080 -h /www',
    cwd: '/tmp', env: { GREETING: 'ahoy' }, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2,
    health: { path: '/' }, ...extra,
});
async function deploy(job) {
    await client.put(procKey(job)).value(JSON.stringify(job));
    await client.put(deployKey(host, job)).value('');
}
async function endpointsOf(job) {
    const { entries } = await readPrefix(client, `/ports/${job.stack}/${job.node}/`);
    return entries.map((e) => e.value).filter((e) => e.tag === job.tag && e.instance === job.instance);
}
function httpGet(port) {
    return new Promise((resolve, reject) => {
        http.get({ host: ip, port, path: '/', agent: false }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d.toString()));
            res.on('end', () => resolve(body));
        }).on('error', reject);
    });
}
const stateOf = async (job) => {
    const text = await client.get(deployKey(host, job)).string();
    return text ? JSON.parse(text) : undefined;
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
    assert.deepEqual([info.Config.Labels['viking.stack'], info.Config.Labels['viking.tag'], info.Config.Labels['viking.node'], info.Config.Labels['viking.instance'], info.Config.Labels['viking.host']], [stack, 'v1', 'web', '1', host]);
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
        const c = await docker.getContainer(endpoint.container).inspect().catch(() => undefined);
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
        return e.length === 1 && e[0].container !== before.container ? e[0] : undefined;
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
test('containers without this host\'s label are never touched', async () => {
    const foreign = await docker.createContainer({
        Image: BUSYBOX_IMAGE, Cmd: ['sleep', '60'], Labels: { 'viking.host': `${host}-other`, 'viking.stack': stack },
        HostConfig: { Init: true },
    });
    try {
        await foreign.start();
        // A full pass with nothing foreign desired must leave it running.
        slave.wake();
        await waitFor('a slave pass', async () => (await stateOf(webJob(1)))?.state === 'running');
        await new Promise((r) => setTimeout(r, 1500)); // at least one periodic resync (1 s) has run
        assert.equal((await foreign.inspect()).State.Running, true);
    }
    finally {
        await foreign.remove({ force: true });
    }
});
//# sourceMappingURL=slave-docker.test.js.map
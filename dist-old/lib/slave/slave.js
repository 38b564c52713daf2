/**
 * The slave: makes the containers of this host match `/deploy/<me>`.
 *
 * It watches only its own deploy keys (never the whole cluster), plus the
 * Docker events of its own containers, and both only wake the loop. Each
 * pass reads the whole desired and actual state, asks planSlave() what to
 * do, and runs those actions on a small queue, one at a time per job. A new
 * container takes traffic only after its health check: then its endpoints go
 * to `/ports` under the host's lease, so they vanish with the host.
 */
import PQueue from 'p-queue';
import { readPrefix, watchPrefix } from '../store/client.js';
import { WakeLoop } from '../store/wake-loop.js';
import { REGISTRY_KEY, counterKey, deployKey, deployPrefix, jobPath, parseDeployKey, portsKey, procKey } from '../store/keys.js';
import { exitInfo, lastLogLines, listOwned, removeContainer, specHash, startJob } from './containers.js';
import { waitHealthy } from './health.js';
import { waitRoutersSeen } from '../router/acks.js';
import { DEFAULT_BACKOFF, afterFailure, planSlave } from './reconcile.js';
export class Slave {
    o;
    queue;
    busy = new Set();
    /** Container id -> the /ports keys published for it. */
    published = new Map();
    memory = new Map();
    lastState = new Map();
    watch;
    events;
    resync;
    retryTimer;
    stopped = true;
    loop = new WakeLoop(() => this.pass(), (err) => this.o.log?.(`slave pass failed: ${err.message}`), 500);
    constructor(o) {
        this.o = o;
        this.queue = new PQueue({ concurrency: o.concurrency ?? 4 });
    }
    start() {
        this.stopped = false;
        this.watch = watchPrefix(this.o.client, deployPrefix(this.o.host), () => this.wake());
        this.resync = setInterval(() => this.wake(), this.o.resyncMs ?? 5000);
        void this.followDockerEvents();
        this.loop.start();
    }
    async stop() {
        this.stopped = true;
        clearInterval(this.resync);
        clearTimeout(this.retryTimer);
        await this.watch?.cancel();
        this.events?.destroy?.();
        await this.loop.stop();
        await this.queue.onIdle();
    }
    /** The host's lease was re-granted: every endpoint must be published again. */
    republishAll() {
        this.published.clear();
        this.wake();
    }
    /** A container of ours died: look now rather than at the next resync. */
    async followDockerEvents() {
        try {
            const stream = await this.o.docker.getEvents({
                filters: { type: ['container'], event: ['die', 'destroy'], label: [`viking.host=${this.o.host}`] },
            });
            this.events = stream;
            stream.on('data', () => this.wake());
            stream.on('error', () => { });
            stream.on('end', () => {
                if (!this.stopped)
                    setTimeout(() => void this.followDockerEvents(), 1000);
            });
        }
        catch {
            if (!this.stopped)
                setTimeout(() => void this.followDockerEvents(), 1000);
        }
    }
    wake() {
        this.loop.wake();
    }
    async readDesired() {
        const deploys = await readPrefix(this.o.client, deployPrefix(this.o.host));
        const jobs = deploys.entries.map((e) => parseDeployKey(e.key)?.job).filter((j) => j !== undefined);
        const specs = await Promise.all(jobs.map(async (job) => {
            const text = await this.o.client.get(procKey(job)).string();
            return text ? { ...JSON.parse(text), ...job } : undefined;
        }));
        return jobs.map((job, i) => {
            const spec = specs[i];
            return { job, spec, hash: spec ? specHash(spec) : '' };
        });
    }
    async pass() {
        const [desired, actual] = await Promise.all([this.readDesired(), listOwned(this.o.docker, this.o.host)]);
        // Withdraw endpoints of containers that are gone (removed by hand, or died).
        const running = new Set(actual.filter((c) => c.running).map((c) => c.id));
        for (const id of [...this.published.keys()])
            if (!running.has(id))
                await this.unpublish(id);
        const actions = planSlave({
            desired,
            actual,
            published: new Set(this.published.keys()),
            busy: this.busy,
            memory: this.memory,
            now: Date.now(),
        });
        for (const action of actions)
            this.enqueue(action);
        this.scheduleRetry();
    }
    /** Wakes the loop when the earliest backoff ends. */
    scheduleRetry() {
        clearTimeout(this.retryTimer);
        const now = Date.now();
        const next = Math.min(...[...this.memory.values()].filter((m) => !m.failed && m.retryAt > now).map((m) => m.retryAt));
        if (Number.isFinite(next))
            this.retryTimer = setTimeout(() => this.wake(), next - now + 10);
    }
    enqueue(action) {
        const job = action.type === 'remove' ? action.container.job : action.spec;
        const path = jobPath(job);
        this.busy.add(path);
        void this.queue
            .add(() => this.run(action))
            .catch((err) => this.o.log?.(`${path}: ${action.type} failed: ${err.message}`))
            .finally(() => {
            this.busy.delete(path);
            this.wake();
        });
    }
    async run(action) {
        switch (action.type) {
            case 'start':
                return this.startAndCheck(action.spec);
            case 'publish':
                return this.checkAndPublish(action.spec, action.container.id, action.container.ports);
            case 'crashed':
                return this.handleCrash(action.spec, action.container);
            case 'remove':
                return this.remove(action.container, action.why);
        }
    }
    async startAndCheck(spec) {
        const path = jobPath(spec);
        await this.writeState(spec, { state: 'starting', at: new Date().toISOString() });
        let started;
        try {
            const registry = (await this.o.client.get(REGISTRY_KEY).string()) ?? undefined;
            started = await startJob(this.o.docker, spec, this.o.host, this.o.ip, registry);
        }
        catch (err) {
            await this.fail(spec, undefined, `could not start: ${err.message}`);
            return;
        }
        this.o.log?.(`${path}: started ${started.id.slice(0, 12)}`);
        await this.checkAndPublish(spec, started.id, started.ports);
    }
    async checkAndPublish(spec, id, ports) {
        const first = spec.expose[0];
        const hostPort = first !== undefined ? ports.get(first) : undefined;
        if (first !== undefined) {
            if (hostPort === undefined)
                return this.fail(spec, id, `port ${first} was not published`);
            const target = { ip: this.o.ip, port: hostPort, ...(spec.health?.path ? { path: spec.health.path } : {}) };
            const alive = async () => (await this.o.docker.getContainer(id).inspect().then((i) => i.State.Running, () => false));
            const health = await waitHealthy(target, this.o.healthTimeoutMs ?? 60_000, alive);
            if (!health.healthy) {
                // A container that died while being checked says how it died, not just that the check failed.
                const died = !(await alive()) ? ` (container ${await exitInfo(this.o.docker, id)})` : '';
                return this.fail(spec, id, `health check failed: ${health.detail}${died}`);
            }
        }
        const keys = [];
        for (const port of spec.expose) {
            const hp = ports.get(port);
            if (hp === undefined)
                continue;
            const endpoint = {
                stack: spec.stack, tag: spec.tag, node: spec.node, instance: spec.instance,
                host: this.o.host, ip: this.o.ip, port, hostPort: hp, proto: 'tcp', container: id, primary: port === first,
            };
            const key = portsKey(endpoint);
            await this.o.lease.put(key, JSON.stringify(endpoint));
            keys.push(key);
        }
        this.published.set(id, keys);
        await this.writeState(spec, { state: 'running', container: id, at: new Date().toISOString() });
    }
    async handleCrash(spec, container) {
        const why = await exitInfo(this.o.docker, container.id);
        await this.fail(spec, container.id, why);
    }
    /** Records a failed start or a crash, keeps the logs, removes the container, backs off. */
    async fail(spec, id, reason) {
        const path = jobPath(spec);
        const logs = id ? await lastLogLines(this.o.docker, id) : [];
        if (id) {
            await this.unpublish(id);
            await removeContainer(this.o.docker, id, 2);
        }
        const policy = { ...DEFAULT_BACKOFF, ...this.o.backoff };
        const mem = afterFailure(this.memory.get(path), Date.now(), policy.maxFailures, policy);
        this.memory.set(path, mem);
        await this.o.client.put(counterKey(this.o.host, spec)).value(String(mem.failures)).catch(() => { });
        this.o.log?.(`${path}: ${reason} (failure ${mem.failures}${mem.failed ? ', giving up' : `, retry in ${mem.retryAt - Date.now()} ms`})`);
        await this.writeState(spec, {
            state: mem.failed ? 'failed' : 'backoff',
            reason,
            logs,
            failures: mem.failures,
            at: new Date().toISOString(),
        });
    }
    /** Withdraws a container's endpoints; returns the etcd revision that removed them, if any. */
    async unpublish(containerId) {
        const keys = this.published.get(containerId);
        this.published.delete(containerId);
        if (!keys?.length)
            return undefined;
        const results = await Promise.all(keys.map((k) => this.o.client.delete().key(k).exec()));
        return results.map((r) => BigInt(r.header.revision)).reduce((a, b) => (a > b ? a : b)).toString();
    }
    async remove(container, why) {
        const path = jobPath(container.job);
        // Routers drop the endpoint first: once all of them acknowledged, no new request
        // can reach the container, and the ones in flight get drainMs to finish.
        const withdrawn = await this.unpublish(container.id);
        if (withdrawn !== undefined) {
            const seen = await waitRoutersSeen(this.o.client, withdrawn, this.o.routerAckTimeoutMs ?? 5000);
            if (!seen.ok)
                this.o.log?.(`${path}: routers ${seen.lagging.join(', ')} did not confirm in ${seen.waitedMs} ms; stopping anyway`);
            await new Promise((r) => setTimeout(r, this.o.drainMs ?? 1000));
        }
        await removeContainer(this.o.docker, container.id);
        if (why === 'unwanted') {
            this.memory.delete(path);
            this.lastState.delete(path);
            await this.o.client.delete().key(counterKey(this.o.host, container.job)).catch(() => { });
        }
        this.o.log?.(`${path}: removed ${why} ${container.id.slice(0, 12)} (${container.name})`);
    }
    /** Reports the job's state in its /deploy key, only if dispatch has not deleted it meanwhile. */
    async writeState(job, state) {
        const key = deployKey(this.o.host, job);
        const { at: _at, ...comparable } = state;
        const fingerprint = JSON.stringify(comparable);
        if (this.lastState.get(jobPath(job)) === fingerprint)
            return;
        const res = await this.o.client.if(key, 'Version', '>', 0).then(this.o.client.put(key).value(JSON.stringify(state))).commit();
        if (res.succeeded)
            this.lastState.set(jobPath(job), fingerprint);
    }
}
//# sourceMappingURL=slave.js.map
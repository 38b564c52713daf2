/**
 * `viking host`: the process every server runs. It registers the host under
 * a lease, runs the slave for its own /deploy keys, serves the front router
 * and the /v1 API, and, on masters, campaigns for leadership. Stopping it
 * undoes all of that in reverse: resign, stop serving, revoke the lease.
 */
import os from 'node:os';
import { mkdir } from 'node:fs/promises';
import { VikingError } from '../errors.js';
import { connectEtcd, watchedPrefixes } from '../store/client.js';
import { connectDocker, assertDockerReachable } from '../docker/client.js';
import { validateName } from '../vikingfile/index.js';
import { HostLease } from './host-lease.js';
import { startRegistry } from '../registry/registry-process.js';
import { REGISTRY_KEY } from '../store/keys.js';
import { Slave } from '../slave/slave.js';
import { Router } from '../router/router.js';
import { createApi } from '../api/server.js';
import { LeaderRole } from '../leader/leader.js';
export const VERSION = '0.1.0';
export async function assertEtcdReachable(client, urls) {
    try {
        await Promise.race([
            client.get('/viking-ping').string(),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5s')), 5000)),
        ]);
    }
    catch (err) {
        throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `cannot reach etcd at ${urls.join(', ')} (${err.message})`);
    }
}
export class VikingHost {
    config;
    client;
    docker;
    lease;
    slave;
    router;
    api;
    leader;
    registry;
    routerPort = 0;
    apiPort = 0;
    constructor(config) {
        this.config = config;
        validateName(config.name, 'host name');
        this.client = connectEtcd(config.etcd);
        this.docker = connectDocker(config.dockerSocket);
    }
    async start() {
        const c = this.config;
        const log = c.log ?? (() => { });
        await assertEtcdReachable(this.client, c.etcd);
        await assertDockerReachable(this.docker);
        await mkdir(c.dataDir, { recursive: true });
        if (c.registry?.run) {
            this.registry = await startRegistry({ address: c.registry.address, dataDir: c.dataDir });
            log(`cluster registry serving on ${c.registry.address} (storage ${c.dataDir}/registry)`);
        }
        if (c.registry)
            await this.client.put(REGISTRY_KEY).value(c.registry.address);
        this.router = new Router({
            client: this.client,
            hostName: c.name,
            dataDir: c.dataDir,
            port: c.routerPort,
            host: c.routerListen ?? '0.0.0.0',
            ...(c.routerWorkers !== undefined ? { workers: c.routerWorkers } : {}),
            ...(c.routerBalance ? { balance: c.routerBalance } : {}),
            log,
        });
        this.routerPort = await this.router.start();
        this.api = createApi({
            client: this.client,
            docker: this.docker,
            dataDir: c.dataDir,
            hostName: c.name,
            maxUploadBytes: c.maxUploadBytes ?? 512 * 1024 * 1024,
            routerPort: this.routerPort,
            log,
        });
        await this.api.listen({ port: c.apiPort, host: c.apiListen ?? c.ip });
        this.apiPort = this.api.server.address().port;
        const record = {
            name: c.name,
            ip: c.ip,
            tags: c.tags ?? [],
            capacity: {
                memory: c.capacity?.memory ?? os.totalmem(),
                cpu: c.capacity?.cpu ?? os.cpus().length,
                containers: c.capacity?.containers ?? 0,
            },
            master: c.master,
            api: `http://${c.apiListen && c.apiListen !== '0.0.0.0' ? c.apiListen : c.ip}:${this.apiPort}`,
            routerPort: this.routerPort,
            draining: false,
            startedAt: new Date().toISOString(),
            version: VERSION,
        };
        this.lease = new HostLease(this.client, record, c.leaseTtlSeconds ?? 3);
        await this.lease.start();
        this.slave = new Slave({
            host: c.name,
            ip: c.ip,
            client: this.client,
            docker: this.docker,
            lease: this.lease,
            log,
            ...(c.healthTimeoutMs !== undefined ? { healthTimeoutMs: c.healthTimeoutMs } : {}),
            ...(c.drainMs !== undefined ? { drainMs: c.drainMs } : {}),
            ...(c.backoff !== undefined ? { backoff: c.backoff } : {}),
        });
        this.lease.onRenewed = () => {
            this.slave?.republishAll();
            this.router?.reack();
        };
        this.router.attachAcks(this.lease);
        this.slave.start();
        if (c.master) {
            this.leader = new LeaderRole(this.client, c.name, { ttlSeconds: c.leaderTtlSeconds ?? 3, log });
            this.leader.start();
        }
        log(`host ${c.name} up: ip ${c.ip}, router :${this.routerPort}, api :${this.apiPort}${c.master ? ', master' : ''}`);
    }
    /** The etcd prefixes this host watches: its own /deploy, the routes, and the leader's keys if it leads. */
    watches() {
        return watchedPrefixes(this.client);
    }
    /** Clean shutdown: leadership and lease are given back now, not after their TTL. */
    async stop() {
        await this.leader?.stop().catch(() => { });
        await this.api?.close().catch(() => { });
        await this.router?.stop().catch(() => { });
        await this.slave?.stop().catch(() => { });
        await this.lease?.close().catch(() => { });
        await this.registry?.stop().catch(() => { });
        this.client.close();
    }
}
//# sourceMappingURL=host.js.map
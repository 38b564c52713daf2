/**
 * Leader election on one etcd key, `/leader`, held under a short lease.
 *
 * Written here rather than with etcd3's Election so the fencing token is
 * ours: the create revision of `/leader` when we won. Every leader write
 * compares it in its transaction, so a leader whose lease expired (paused,
 * partitioned) can never write again, even before it notices.
 */
import { EventEmitter } from 'node:events';
import { LEADER_KEY } from '../store/keys.js';
export class LeaderElection extends EventEmitter {
    client;
    candidate;
    ttlSeconds;
    lease;
    leadership;
    stopped = false;
    waiter;
    retryTimer;
    constructor(client, candidate, ttlSeconds = 3) {
        super();
        this.client = client;
        this.candidate = candidate;
        this.ttlSeconds = ttlSeconds;
    }
    get current() {
        return this.leadership;
    }
    /** Starts campaigning; emits `elected` when won, `lost` when the lease goes. */
    start() {
        this.stopped = false;
        void this.campaign();
    }
    newLease() {
        const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
        lease.on('lost', (err) => {
            if (this.lease !== lease)
                return;
            this.lease = undefined;
            if (this.leadership) {
                this.leadership = undefined;
                this.emit('lost', err);
            }
            this.retryLater(200);
        });
        return lease;
    }
    retryLater(ms) {
        if (this.stopped)
            return;
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.campaign(), ms);
    }
    async campaign() {
        if (this.stopped || this.leadership)
            return;
        try {
            this.lease ??= this.newLease();
            const leaseId = await this.lease.grant();
            const res = await this.client
                .if(LEADER_KEY, 'Create', '==', 0)
                .then(this.client.put(LEADER_KEY).value(this.candidate).lease(leaseId))
                .else(this.client.get(LEADER_KEY))
                .commit();
            if (this.stopped)
                return;
            if (res.succeeded) {
                this.leadership = { createRevision: res.header.revision };
                this.emit('elected', this.leadership);
                return;
            }
            const kv = res.responses[0]?.response_range?.kvs[0];
            if (kv && kv.value.toString() === this.candidate && kv.lease === leaseId) {
                // We already hold it (a retried commit that had applied).
                this.leadership = { createRevision: kv.create_revision };
                this.emit('elected', this.leadership);
                return;
            }
            await this.waitForVacancy();
        }
        catch {
            this.retryLater(500);
        }
    }
    /** Waits for `/leader` to be deleted (its owner's lease expired or it resigned), then campaigns. */
    async waitForVacancy() {
        const watcher = await this.client.watch().key(LEADER_KEY).create();
        this.waiter = watcher;
        let done = false;
        const again = () => {
            if (done)
                return;
            done = true;
            this.waiter = undefined;
            void watcher.cancel().catch(() => { });
            void this.campaign();
        };
        watcher.on('delete', again);
        watcher.on('error', again);
        // The holder may have gone between our txn and the watch.
        const still = await this.client.get(LEADER_KEY).exists();
        if (!still)
            again();
    }
    /** Gives up leadership now (deletes our key) and stops campaigning. */
    async resign() {
        this.stopped = true;
        clearTimeout(this.retryTimer);
        await this.waiter?.cancel().catch(() => { });
        const held = this.leadership;
        this.leadership = undefined;
        if (held) {
            await this.client
                .if(LEADER_KEY, 'Create', '==', held.createRevision)
                .then(this.client.delete().key(LEADER_KEY))
                .commit()
                .catch(() => { });
        }
        const lease = this.lease;
        this.lease = undefined;
        // close() does not stop keepalives: revoke explicitly.
        await lease?.revoke().catch(() => { });
    }
}
/** Who leads now, for `viking hosts` and the API. */
export async function currentLeader(client) {
    return (await client.get(LEADER_KEY).string()) ?? undefined;
}
//# sourceMappingURL=election.js.map
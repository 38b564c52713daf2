import { hostKey } from '../store/keys.js';
export class HostLease {
    client;
    record;
    ttlSeconds;
    lease;
    closed = false;
    renewTimer;
    /** Called after a lost lease was replaced, so leased keys are put again. */
    onRenewed = () => { };
    constructor(client, record, ttlSeconds = 3) {
        this.client = client;
        this.record = record;
        this.ttlSeconds = ttlSeconds;
    }
    get name() {
        return this.record.name;
    }
    async start() {
        this.lease = this.newLease();
        await this.lease.put(hostKey(this.record.name)).value(JSON.stringify(this.record));
    }
    newLease() {
        const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
        lease.on('lost', () => {
            if (this.closed || this.lease !== lease)
                return;
            this.lease = undefined;
            this.renewSoon(100);
        });
        return lease;
    }
    renewSoon(ms) {
        clearTimeout(this.renewTimer);
        this.renewTimer = setTimeout(() => {
            if (this.closed)
                return;
            const lease = this.newLease();
            lease
                .put(hostKey(this.record.name))
                .value(JSON.stringify(this.record))
                .then(() => {
                this.lease = lease;
                this.onRenewed();
            })
                .catch(() => {
                void lease.revoke().catch(() => { });
                this.renewSoon(500);
            });
        }, ms);
    }
    /** Updates the host record (drain flag, tags) under the same lease. */
    async update(patch) {
        this.record = { ...this.record, ...patch };
        await this.put(hostKey(this.record.name), JSON.stringify(this.record));
    }
    async put(key, value) {
        const lease = this.lease;
        if (!lease)
            throw new Error('host lease is being renewed');
        await lease.put(key).value(value);
    }
    /** Revokes the lease: the host key and its endpoints disappear now, not after the TTL. */
    async close() {
        this.closed = true;
        clearTimeout(this.renewTimer);
        const lease = this.lease;
        this.lease = undefined;
        await lease?.revoke().catch(() => { });
    }
}
//# sourceMappingURL=host-lease.js.map
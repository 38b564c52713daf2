/**
 * A host's liveness: `/host/<name>` under a short etcd lease, kept alive by
 * heartbeats. When the process or machine dies the heartbeats stop, the
 * lease expires and the key (with every /ports entry put under the same
 * lease) vanishes: that is how the cluster learns a host is gone.
 *
 * If the lease is lost while we live (etcd unreachable for longer than the
 * TTL), a new one is granted and everything is put again.
 */
import type { Etcd3, Lease } from 'etcd3';
import { hostKey } from '../store/keys.js';
import type { HostRecord } from '../store/records.js';
import type { LeasedWriter } from '../slave/slave.js';

export class HostLease implements LeasedWriter {
  private lease: Lease | undefined;
  private closed = false;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Called after a lost lease was replaced, so leased keys are put again. */
  onRenewed: () => void = () => {};

  constructor(
    private readonly client: Etcd3,
    private record: HostRecord,
    private readonly ttlSeconds = 3,
  ) {}

  get name(): string {
    return this.record.name;
  }

  async start(): Promise<void> {
    this.lease = this.newLease();
    await this.lease.put(hostKey(this.record.name)).value(JSON.stringify(this.record));
  }

  private newLease(): Lease {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', () => {
      if (this.closed || this.lease !== lease) return;
      this.lease = undefined;
      this.renewSoon(100);
    });
    return lease;
  }

  private renewSoon(ms: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      if (this.closed) return;
      const lease = this.newLease();
      lease
        .put(hostKey(this.record.name))
        .value(JSON.stringify(this.record))
        .then(() => {
          this.lease = lease;
          this.onRenewed();
        })
        .catch(() => {
          void lease.revoke().catch(() => {});
          this.renewSoon(500);
        });
    }, ms);
  }

  /** Updates the host record (drain flag, tags) under the same lease. */
  async update(patch: Partial<HostRecord>): Promise<void> {
    this.record = { ...this.record, ...patch };
    await this.put(hostKey(this.record.name), JSON.stringify(this.record));
  }

  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease) throw new Error('host lease is being renewed');
    await lease.put(key).value(value);
  }

  /** Revokes the lease: the host key and its endpoints disappear now, not after the TTL. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.renewTimer);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => {});
  }
}

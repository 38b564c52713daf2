/**
 * Who orders certificates: one host at a time, holder of ACME_ISSUER_KEY
 * under a lease of its own.
 *
 * Why its own lease and not the viking leader's: the leader runs only on
 * `--master` hosts and its term is about placing jobs; ordering a
 * certificate takes seconds to minutes of network calls to the ACME
 * directory that must never delay dispatch, and any host (master or not)
 * can do it. Every host campaigns; the first create-only put wins; the key
 * and the HTTP-01 answers written under the same lease vanish when the
 * issuer dies, and another host takes over within the TTL plus one poll.
 * Writes of the issuer are fenced on the exact value it put (`holds()`), so
 * an issuer whose lease lapsed mid-order cannot overwrite its successor.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import { ACME_ISSUER_KEY } from '../store/keys.js';

export interface IssuerLeaseOptions {
  client: Etcd3;
  hostName: string;
  /** Seconds the key outlives a dead issuer (default 10). */
  ttlSeconds?: number;
  /** How often a host that does not issue looks whether the key is free (default 1000 ms). */
  pollMs?: number;
  onElected: () => void;
  onLost: () => void;
  log?: (msg: string) => void;
}

export class IssuerLease {
  private lease: Lease | undefined;
  private leaseId = '';
  /** The exact value this host put; writes are fenced on it. */
  value = '';
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private trying = false;

  constructor(private readonly o: IssuerLeaseOptions) {}

  get held(): boolean {
    return this.lease !== undefined;
  }

  /** The lease id to put keys under (challenges), while held. */
  get id(): string {
    return this.leaseId;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Gives the role back: the key and every key under its lease go at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const lease = this.lease;
    this.drop();
    await lease?.revoke().catch(() => {});
  }

  /** A compare for a transaction: true while this host still holds the key it put. */
  fence(): [string, 'Value', '==', string] {
    return [ACME_ISSUER_KEY, 'Value', '==', this.value];
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tryOnce(), ms);
  }

  private async tryOnce(): Promise<void> {
    if (this.stopped || this.trying || this.lease) return;
    this.trying = true;
    try {
      // Cheap read first: most hosts, most of the time, see a live issuer and stop here.
      if ((await this.o.client.get(ACME_ISSUER_KEY).string()) !== null) return;
      const lease = this.o.client.lease(this.o.ttlSeconds ?? 10, { autoKeepAlive: true });
      lease.on('lost', () => {
        if (this.lease !== lease) return;
        this.o.log?.('acme: issuer lease lost; this host stops ordering certificates');
        this.drop();
        this.schedule(this.o.pollMs ?? 1000);
      });
      const id = await lease.grant();
      const value = JSON.stringify({ host: this.o.hostName, since: new Date().toISOString(), id: randomBytes(6).toString('hex') });
      const won = await this.o.client
        .if(ACME_ISSUER_KEY, 'Create', '==', 0)
        .then(this.o.client.put(ACME_ISSUER_KEY).value(value).lease(id))
        .commit();
      if (!won.succeeded || this.stopped) {
        await lease.revoke().catch(() => {});
        return;
      }
      this.lease = lease;
      this.leaseId = id;
      this.value = value;
      this.o.log?.(`acme: ${this.o.hostName} is the certificate issuer`);
      this.o.onElected();
    } catch (err) {
      this.o.log?.(`acme: issuer campaign: ${(err as Error).message}`);
    } finally {
      this.trying = false;
      if (!this.lease) this.schedule(this.o.pollMs ?? 1000);
    }
  }

  private drop(): void {
    const had = this.lease !== undefined;
    this.lease = undefined;
    this.leaseId = '';
    this.value = '';
    if (had) this.o.onLost();
  }
}

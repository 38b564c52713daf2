/**
 * A simulated host for the control-plane benchmarks (bench/schedule,
 * bench/scale): viking's own etcd code without Docker. It holds the real
 * HostLease (keepalives every third of the TTL), watches only its own
 * /deploy prefix the way the slave does and acks every new job with the
 * slave's fenced write, and (optionally) runs the router's real RouteFeed,
 * which watches /domains, /stack and /ports and re-reads all three on every
 * change and every 5 s.
 */
import type { Etcd3 } from 'etcd3';
import { readPrefix, watchPrefix, type PrefixWatch } from '../lib/store/client.js';
import { deployKey, deployPrefix, parseDeployKey } from '../lib/store/keys.js';
import { HostLease } from '../lib/host/host-lease.js';
import { RouteFeed } from '../lib/router/feed.js';
import type { RouteSnapshot } from '../lib/router/snapshot.js';
import type { HostRecord } from '../lib/store/records.js';

/** Slaves ack up to this many jobs in one fenced transaction (etcd allows 128 operations). */
const ACK_BATCH = 64;

export const simHostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 64 * 1024 ** 3, cpu: 32, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'bench',
});

/** A slave without Docker: acks every job deployed to it, in batched fenced writes. */
export class SimulatedSlave {
  private watch: PrefixWatch | undefined;
  private busy = false;
  private again = false;
  acked = 0;
  constructor(private readonly client: Etcd3, readonly name: string, private readonly onAck: (n: number) => void) {}
  start(): void {
    this.watch = watchPrefix(this.client, deployPrefix(this.name), () => void this.pass().catch(() => (this.busy = false)));
  }
  async stop(): Promise<void> {
    await this.watch?.cancel();
  }
  private async pass(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    do {
      this.again = false;
      const deploys = await readPrefix<unknown>(this.client, deployPrefix(this.name));
      const fresh = deploys.entries.filter((e) => e.value === undefined).map((e) => parseDeployKey(e.key)!.job);
      for (let i = 0; i < fresh.length; i += ACK_BATCH) {
        const batch = fresh.slice(i, i + ACK_BATCH);
        let txn = this.client.if(deployKey(this.name, batch[0]!), 'Version', '>', 0);
        for (const job of batch.slice(1)) txn = txn.and(deployKey(this.name, job), 'Version', '>', 0);
        const state = JSON.stringify({ state: 'running', container: 'simulated', at: new Date().toISOString() });
        const res = await txn.then(...batch.map((job) => this.client.put(deployKey(this.name, job)).value(state))).commit();
        if (res.succeeded) {
          this.acked += batch.length;
          this.onAck(batch.length);
        }
      }
    } while (this.again);
    this.busy = false;
  }
}

export interface SimHostOptions {
  client: Etcd3;
  name: string;
  ttlSeconds: number;
  memberUrls: string[];
  /** Run the router's route feed too (every real host does). */
  feed: boolean;
  dataDir: string;
  onAck: (n: number) => void;
  onSnapshot: (snap: RouteSnapshot) => void;
}

export class SimulatedHost {
  readonly lease: HostLease;
  readonly slave: SimulatedSlave;
  readonly feed: RouteFeed | undefined;
  constructor(readonly o: SimHostOptions) {
    this.lease = new HostLease(o.client, simHostRecord(o.name), o.ttlSeconds, o.memberUrls);
    this.slave = new SimulatedSlave(o.client, o.name, o.onAck);
    this.feed = o.feed ? new RouteFeed({ client: o.client, hostName: o.name, dataDir: o.dataDir, onSnapshot: o.onSnapshot }) : undefined;
  }
  async start(): Promise<void> {
    await this.lease.start();
    this.slave.start();
    this.feed?.start();
  }
  async stop(): Promise<void> {
    await this.feed?.stop();
    await this.slave.stop();
    await this.lease.close();
  }
}

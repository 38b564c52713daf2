/**
 * A simulated host for the control-plane benchmarks (bench/schedule,
 * bench/scale): viking's own etcd code without Docker. It holds the real
 * HostLease (keepalives every third of the TTL), watches only its own
 * /deploy prefix the way the slave does and acks every new job with the
 * slave's fenced write, and (optionally) runs the router's real RouteFeed,
 * which watches /domains, /stack and /ports and re-reads all three on every
 * change and every 5 s.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { readPrefix } from '../lib/store/client.js';
import { deployPrefix } from '../lib/store/keys.js';
import { HostLease } from '../lib/host/host-lease.js';
import { PLACEMENT_LAYOUT } from '../lib/store/placements.js';
import { RouteFeed } from '../lib/router/feed.js';
import type { RouteSnapshot } from '../lib/router/snapshot.js';
import type { HostRecord } from '../lib/store/records.js';

/** Slaves ack up to this many jobs in one fenced transaction (etcd allows 128 operations). */
const ACK_BATCH = 64;

export const simHostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 64 * 1024 ** 3, cpu: 32, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'bench', layout: PLACEMENT_LAYOUT,
});

/**
 * A slave without Docker: acks every job deployed to it, in batched fenced
 * writes. Like the slave it watches only its own /deploy prefix; unlike the
 * slave, it takes the new jobs from the watch events themselves and reads
 * the prefix whole only when its watch (re)connects. On real servers each
 * slave re-reads its prefix with its own CPU; here a hundred slaves share
 * the leader's process, and their range reads would bill the leader for
 * what real slaves pay themselves (measured: the reads made the bench's
 * process, not etcd, the limit).
 */
export class SimulatedSlave {
  private watcher: Watcher | undefined;
  private busy = false;
  private readAll = true;
  private readonly fresh = new Set<string>();
  acked = 0;
  /** Ack writes etcd refused with an error (the bench prints them). */
  static readonly errors: string[] = [];
  constructor(private readonly client: Etcd3, readonly name: string, private readonly onAck: (n: number) => void) {}
  async start(): Promise<void> {
    const w = await this.client.watch().prefix(deployPrefix(this.name)).create();
    this.watcher = w;
    w.on('put', (kv) => {
      // A job placed here: the key is created empty. Acks (our own writes) and rewrites are not news.
      if (kv.version !== '1' || kv.value.length > 0) return;
      this.fresh.add(kv.key.toString());
      this.kick();
    });
    w.on('connected', () => {
      this.readAll = true;
      this.kick();
    });
    w.on('error', () => {});
    this.kick();
  }
  async stop(): Promise<void> {
    await this.watcher?.cancel();
  }
  private kick(): void {
    if (this.busy) return;
    this.busy = true;
    void this.pass().finally(() => {
      this.busy = false;
      if (this.fresh.size > 0 || this.readAll) this.kick();
    });
  }
  private async pass(): Promise<void> {
    if (this.readAll) {
      this.readAll = false;
      const deploys = await readPrefix<unknown>(this.client, deployPrefix(this.name));
      for (const e of deploys.entries) if (e.value === undefined) this.fresh.add(e.key);
    }
    const keys = [...this.fresh];
    this.fresh.clear();
    for (let i = 0; i < keys.length; i += ACK_BATCH) {
      const batch = keys.slice(i, i + ACK_BATCH);
      let txn = this.client.if(batch[0]!, 'Version', '>', 0);
      for (const key of batch.slice(1)) txn = txn.and(key, 'Version', '>', 0);
      const state = JSON.stringify({ state: 'running', container: 'simulated', at: new Date().toISOString() });
      const res = await txn.then(...batch.map((key) => this.client.put(key).value(state))).commit().catch((err: Error) => {
        // Not acked: tried again in the next pass, as a slave's level-triggered loop would.
        for (const key of batch) this.fresh.add(key);
        SimulatedSlave.errors.push(`${this.name}: ${err.message}`);
        if (process.env.VIKING_BENCH_TRACE === "1") process.stderr.write(`ack error ${this.name}: ${err.name} ${err.message}\n`);
        return undefined;
      });
      if (res?.succeeded) {
        this.acked += batch.length;
        this.onAck(batch.length);
      } else if (res) {
        // One of them was withdrawn meanwhile: ack the others one by one.
        for (const key of batch) {
          const one = await this.client.if(key, 'Version', '>', 0).then(this.client.put(key).value(state)).commit();
          if (one.succeeded) {
            this.acked++;
            this.onAck(1);
          }
        }
      }
    }
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
    await this.slave.start();
    this.feed?.start();
  }
  async stop(): Promise<void> {
    await this.feed?.stop();
    await this.slave.stop();
    await this.lease.close();
  }
}

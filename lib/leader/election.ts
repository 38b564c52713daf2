/**
 * Leader election on one etcd key, `/leader`, held under a short lease.
 *
 * Written here rather than with etcd3's Election so the fencing token is
 * ours: the create revision of `/leader` when we won. Every leader write
 * compares it in its transaction, so a leader whose lease expired (paused,
 * partitioned) can never write again, even before it notices.
 *
 * Campaigning is single-flight: a retry timer, a lost lease and a vacancy
 * watcher can all ask for a campaign, and before this was so, two of them
 * could run at once (a stale vacancy watcher from an earlier round firing
 * next to a new one), both "win" with the same lease and emit `elected`
 * twice, which started a second Dispatcher. Now a request while one runs
 * only asks for one more round; there is at most one vacancy watcher, and a
 * stale one's events are ignored; `elected` is emitted only on the change
 * from not leading to leading.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { LEADER_KEY } from '../store/keys.js';

/**
 * The default TTL of the leader's lease. A frozen or cut-off leader blocks
 * the next one for up to this long (plus etcd's lease check, ≤ 0.5 s), and
 * the promise is a new leader dispatching within 3 s: measured with real
 * host processes (test/e2e/leader-freeze), TTL 3 gave the next dispatch
 * 2.8 s after a SIGSTOP (too close to 3 s), TTL 2 gives 1.9-2.2 s. Keepalives go
 * every TTL/3 (0.67 s), so a leader survives an etcd leader change (~1.5 s).
 */
export const DEFAULT_LEADER_TTL_SECONDS = 2;

export interface Leadership {
  /** Create revision of our `/leader` key: the fencing token. */
  createRevision: string;
}

export interface ElectionEvents {
  elected: [Leadership];
  lost: [Error];
}

export class LeaderElection extends EventEmitter<ElectionEvents> {
  private lease: Lease | undefined;
  private leadership: Leadership | undefined;
  private stopped = false;
  private waiter: Watcher | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The campaign round in progress, if any; at most one at a time. */
  private running: Promise<void> | undefined;
  /** Asked for a campaign while one ran: run one more round after it. */
  private again = false;
  /** Rounds of campaigning begun; tests read it to see that rounds never overlap. */
  rounds = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly candidate: string,
    private readonly ttlSeconds = DEFAULT_LEADER_TTL_SECONDS,
  ) {
    super();
  }

  get current(): Leadership | undefined {
    return this.leadership;
  }

  /** Starts campaigning; emits `elected` when won, `lost` when the lease goes. */
  start(): void {
    this.stopped = false;
    this.campaign();
  }

  private newLease(): Lease {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.stepDown(err);
      this.retryLater(200);
    });
    return lease;
  }

  private stepDown(err: Error): void {
    if (!this.leadership) return;
    this.leadership = undefined;
    this.emit('lost', err);
  }

  /**
   * Called when a fenced write was refused: `/leader` is not ours any more,
   * whatever our lease keepalive says yet. Steps down now (once per
   * leadership), drops the lease, and campaigns again.
   */
  relinquish(held: Leadership, err: Error): void {
    if (this.leadership?.createRevision !== held.createRevision) return;
    const lease = this.lease;
    this.lease = undefined;
    void lease?.revoke().catch(() => {});
    this.stepDown(err);
    this.retryLater(200);
  }

  private retryLater(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.campaign(), ms);
  }

  /** Single-flight: starts a round, or asks the running one for one more. */
  private campaign(): void {
    if (this.stopped || this.leadership) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again && !this.stopped && !this.leadership);
      } finally {
        this.running = undefined;
      }
    })();
  }

  private won(createRevision: string): void {
    if (this.leadership?.createRevision === createRevision) return;
    this.leadership = { createRevision };
    this.emit('elected', this.leadership);
  }

  private async round(): Promise<void> {
    if (this.stopped || this.leadership) return;
    this.rounds++;
    this.dropWaiter();
    try {
      this.lease ??= this.newLease();
      const leaseId = await this.lease.grant();
      const res = await this.client
        .if(LEADER_KEY, 'Create', '==', 0)
        .then(this.client.put(LEADER_KEY).value(this.candidate).lease(leaseId))
        .else(this.client.get(LEADER_KEY))
        .commit();
      if (this.stopped) return;
      if (res.succeeded) return this.won(res.header.revision);
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (kv && kv.value.toString() === this.candidate && kv.lease === leaseId) {
        // We already hold it (a retried commit that had applied).
        return this.won(kv.create_revision);
      }
      await this.waitForVacancy();
    } catch {
      this.retryLater(500);
    }
  }

  private dropWaiter(): void {
    const w = this.waiter;
    this.waiter = undefined;
    void w?.cancel().catch(() => {});
  }

  /** Waits for `/leader` to be deleted (its owner's lease expired or it resigned), then campaigns. */
  private async waitForVacancy(): Promise<void> {
    const watcher = await this.client.watch().key(LEADER_KEY).create();
    if (this.stopped || this.leadership) {
      void watcher.cancel().catch(() => {});
      return;
    }
    this.dropWaiter();
    this.waiter = watcher;
    const again = (): void => {
      // A watcher replaced by a later round is stale: its events mean nothing now.
      if (this.waiter !== watcher) return;
      this.dropWaiter();
      this.campaign();
    };
    watcher.on('delete', again);
    watcher.on('error', again);
    // The holder may have gone between our txn and the watch.
    const still = await this.client.get(LEADER_KEY).exists();
    if (!still) again();
  }

  /** Gives up leadership now (deletes our key) and stops campaigning. */
  async resign(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const w = this.waiter;
    this.waiter = undefined;
    await w?.cancel().catch(() => {});
    const held = this.leadership;
    this.leadership = undefined;
    if (held) {
      await this.client
        .if(LEADER_KEY, 'Create', '==', held.createRevision)
        .then(this.client.delete().key(LEADER_KEY))
        .commit()
        .catch(() => {});
    }
    const lease = this.lease;
    this.lease = undefined;
    // close() does not stop keepalives: revoke explicitly.
    await lease?.revoke().catch(() => {});
  }
}

/** Who leads now, for `viking hosts` and the API. */
export async function currentLeader(client: Etcd3): Promise<string | undefined> {
  return (await client.get(LEADER_KEY).string()) ?? undefined;
}

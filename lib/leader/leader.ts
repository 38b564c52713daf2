/**
 * The leader role: campaign, and while elected run dispatch (which also
 * re-queues the stateless jobs of hosts whose lease ended). The work stops
 * the moment leadership is lost; its writes are fenced anyway.
 *
 * Starting and stopping the work are serialised and idempotent: one
 * Dispatcher per leadership, however many times `elected` or `lost` arrive
 * and in whatever order their handlers finish. A write the fence refused
 * is counted (`fencedWrites`, exported as viking_leader_fenced_writes_total)
 * and logged, and makes this host step down at once.
 */
import type { Etcd3 } from 'etcd3';
import { Dispatcher } from '../dispatch/dispatch.js';
import { CronScheduler } from '../cron/scheduler.js';
import { DEFAULT_LEADER_TTL_SECONDS, LeaderElection, type Leadership } from './election.js';

export interface LeaderOptions {
  ttlSeconds?: number;
  /** Dispatch's resync period (default DISPATCH_RESYNC_MS). */
  resyncMs?: number;
  /**
   * Whether etcd was away from this host lately. Only then does a new
   * dispatcher give hosts it never saw alive time to put their keys back
   * (their absence says nothing about them); a leader that takes over from
   * a dead one with etcd healthy moves the dead host's jobs at once.
   */
  etcdWasAway?: () => boolean;
  /** When this host last got etcd back after an outage longer than a lease TTL (epoch ms; see OUTAGE_GRACE_MS). */
  etcdBackAt?: () => number;
  log?: (msg: string) => void;
}

/** What the leader role counts, for /metrics. */
export interface LeaderStats {
  isLeader: boolean;
  /** Leader writes the fence refused since this process started. */
  fencedWrites: number;
  /** Dispatchers started since this process started (one per leadership won). */
  dispatchersStarted: number;
}

export class LeaderRole {
  readonly election: LeaderElection;
  private dispatcher: Dispatcher | undefined;
  /** Cron ticks are claimed by the leader too, on the same fence (lib/cron/scheduler.ts). */
  private cron: CronScheduler | undefined;
  /** The leadership the running Dispatcher works for. */
  private workingFor: string | undefined;
  /** Start and stop run one after another, never interleaved. */
  private work: Promise<void> = Promise.resolve();
  private fenced = 0;
  private started = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly hostName: string,
    private readonly options: LeaderOptions = {},
  ) {
    this.election = new LeaderElection(client, hostName, options.ttlSeconds ?? DEFAULT_LEADER_TTL_SECONDS);
    this.election.on('elected', (held) => {
      this.options.log?.(`${hostName} is now the leader (fence revision ${held.createRevision})`);
      void this.startWork(held);
    });
    this.election.on('lost', (err) => {
      this.options.log?.(`${hostName} lost leadership: ${err.message}`);
      void this.stopWork();
    });
  }

  get isLeader(): boolean {
    return this.election.current !== undefined;
  }

  get lastUnplaced() {
    return this.dispatcher?.lastUnplaced ?? [];
  }

  get stats(): LeaderStats {
    return {
      isLeader: this.isLeader,
      fencedWrites: this.fenced,
      dispatchersStarted: this.started,
    };
  }

  start(): void {
    this.election.start();
  }

  private serial(step: () => Promise<void>): Promise<void> {
    this.work = this.work.then(step, step);
    return this.work;
  }

  /** Runs dispatch for this leadership, unless it already runs for it or the leadership is already over. */
  private startWork(held: Leadership): Promise<void> {
    return this.serial(async () => {
      if (this.dispatcher && this.workingFor === held.createRevision) return;
      await this.stopDispatcher();
      if (this.election.current?.createRevision !== held.createRevision) return;
      const log = this.options.log;
      this.dispatcher = new Dispatcher(this.client, () => this.election.current, {
        ...(log ? { log } : {}),
        ...(this.options.resyncMs !== undefined ? { resyncMs: this.options.resyncMs } : {}),
        ...(this.options.etcdWasAway ? { holdUnseenHosts: this.options.etcdWasAway } : {}),
        ...(this.options.etcdBackAt ? { etcdBackAt: this.options.etcdBackAt } : {}),
        onFenced: (fenced) => {
          this.fenced++;
          this.election.relinquish(fenced, new Error('a leader write was refused by the fence: another host leads'));
        },
      });
      this.workingFor = held.createRevision;
      this.started++;
      this.dispatcher.start();
      this.cron = new CronScheduler({
        client: this.client,
        hostName: this.hostName,
        fence: () => this.election.current,
        ...(log ? { log } : {}),
        onFenced: (fenced) => {
          this.fenced++;
          this.election.relinquish(fenced, new Error('a cron claim was refused by the fence: another host leads'));
        },
      });
      this.cron.start();
    });
  }

  private stopWork(): Promise<void> {
    return this.serial(() => this.stopDispatcher());
  }

  private async stopDispatcher(): Promise<void> {
    const d = this.dispatcher;
    const cron = this.cron;
    this.dispatcher = undefined;
    this.cron = undefined;
    this.workingFor = undefined;
    await cron?.stop();
    if (!d) return;
    // Waits for its pass in flight: a refusal of that pass is still counted.
    await d.stop();
  }

  async stop(): Promise<void> {
    await this.stopWork();
    await this.election.resign();
  }
}

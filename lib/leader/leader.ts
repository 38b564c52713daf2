/**
 * The leader role: campaign, and while elected run dispatch (which also
 * re-queues the stateless jobs of hosts whose lease ended). The work stops
 * the moment leadership is lost; its writes are fenced anyway.
 */
import type { Etcd3 } from 'etcd3';
import { Dispatcher } from '../dispatch/dispatch.js';
import { LeaderElection } from './election.js';

export interface LeaderOptions {
  ttlSeconds?: number;
  log?: (msg: string) => void;
}

export class LeaderRole {
  readonly election: LeaderElection;
  private dispatcher: Dispatcher | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly hostName: string,
    private readonly options: LeaderOptions = {},
  ) {
    this.election = new LeaderElection(client, hostName, options.ttlSeconds ?? 3);
    this.election.on('elected', () => {
      this.options.log?.(`${hostName} is now the leader`);
      void this.startWork();
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

  start(): void {
    this.election.start();
  }

  private async startWork(): Promise<void> {
    await this.stopWork();
    const log = this.options.log;
    this.dispatcher = new Dispatcher(this.client, () => this.election.current, log ? { log } : {});
    this.dispatcher.start();
  }

  private async stopWork(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    await d?.stop();
  }

  async stop(): Promise<void> {
    await this.stopWork();
    await this.election.resign();
  }
}

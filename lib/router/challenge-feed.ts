/**
 * The host process' side of the ACME HTTP-01 answers (acme-challenges.ts):
 * it watches `/acme-challenge/` and hands the whole set to the router's
 * HTTP servers on every change. Kept apart from the answers themselves so
 * the router workers, which only look tokens up, never load etcd3.
 */
import type { Etcd3 } from 'etcd3';
import { WakeLoop } from '../control/wake-loop.js';
import { watchPrefix, type PrefixWatch } from '../store/client.js';
import { PREFIX } from '../store/keys.js';

export interface ChallengeFeedOptions {
  client: Etcd3;
  /** Every change (and every resync) hands the whole current set. */
  onChange: (entries: Array<[string, string]>) => void;
  resyncMs?: number;
  log?: (msg: string) => void;
}

/** The host process' side: watches `/acme-challenge/` and re-reads it whole on each event and every resync. */
export class ChallengeFeed {
  private watch: PrefixWatch | undefined;
  private resync: NodeJS.Timeout | undefined;
  private last = '';
  latest: Array<[string, string]> = [];
  private readonly loop = new WakeLoop(
    async () => {
      const res = await this.o.client.getAll().prefix(PREFIX.acmeChallenge).strings();
      const entries = Object.entries(res)
        .map(([key, value]): [string, string] => [key.slice(PREFIX.acmeChallenge.length), value])
        .sort(([a], [b]) => (a < b ? -1 : 1));
      const text = JSON.stringify(entries);
      if (text === this.last) return;
      this.last = text;
      this.latest = entries;
      this.o.onChange(entries);
    },
    (err) => this.o.log?.(`router: reading ACME challenges failed: ${err.message}`),
  );

  constructor(private readonly o: ChallengeFeedOptions) {}

  start(): void {
    this.watch = watchPrefix(this.o.client, PREFIX.acmeChallenge, () => this.loop.wake());
    this.resync = setInterval(() => this.loop.wake(), this.o.resyncMs ?? 5000);
    this.loop.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    await this.watch?.cancel();
    await this.loop.stop();
  }
}

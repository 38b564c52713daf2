/**
 * Where the route table comes from: the host process watches /domains,
 * /stack and /ports, and on any change reads all three at one etcd revision
 * and builds a RouteSnapshot (with this host's website directories) for the
 * HTTP servers. A watch event only wakes the loop; the loop always reads the
 * whole state, so a missed or coalesced event cannot leave a stale route.
 */
import type { Etcd3 } from 'etcd3';
import { WakeLoop } from '../store/wake-loop.js';
import { readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import type { DomainRecord, PortEndpoint, StackRecord } from '../store/records.js';
import { SiteCache } from './site-cache.js';
import { wantedSites, type RouteSnapshot } from './snapshot.js';

export interface RouteFeedOptions {
  client: Etcd3;
  hostName: string;
  dataDir: string;
  /** Resync even without events, in case a watch silently stalled. */
  resyncMs?: number;
  log?: (msg: string) => void;
  onSnapshot: (snap: RouteSnapshot) => void;
}

export class RouteFeed {
  private watches: PrefixWatch[] = [];
  private readonly sites: SiteCache;
  private resync: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly loop = new WakeLoop(
    async () => {
      const snap = await this.read();
      if (this.stopped) return;
      this.latest = snap;
      this.o.onSnapshot(snap);
    },
    (err) => this.o.log?.(`router: reading routes failed: ${err.message}`),
  );
  latest: RouteSnapshot | undefined;

  constructor(private readonly o: RouteFeedOptions) {
    this.sites = new SiteCache({
      client: o.client,
      hostName: o.hostName,
      dataDir: o.dataDir,
      ...(o.log ? { log: o.log } : {}),
      onChange: () => this.wake(),
    });
  }

  start(): void {
    this.stopped = false;
    for (const prefix of [PREFIX.domains, PREFIX.stack, PREFIX.ports]) {
      this.watches.push(watchPrefix(this.o.client, prefix, () => this.wake()));
    }
    this.resync = setInterval(() => this.wake(), this.o.resyncMs ?? 10_000);
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    this.sites.stop();
    await Promise.all(this.watches.map((w) => w.cancel()));
    this.watches = [];
    await this.loop.stop();
  }

  /** Coalesces wake-ups: one rebuild at a time, and one more if woken meanwhile. */
  wake(): void {
    this.loop.wake();
  }

  /** Reads the three prefixes at one revision. */
  private async read(): Promise<RouteSnapshot> {
    const domains = await readPrefix<DomainRecord>(this.o.client, PREFIX.domains);
    const [stacks, ports] = await Promise.all([
      readPrefix<StackRecord>(this.o.client, PREFIX.stack, domains.revision),
      readPrefix<PortEndpoint>(this.o.client, PREFIX.ports, domains.revision),
    ]);
    const domainMap = new Map<string, DomainRecord>();
    for (const e of domains.entries) if (e.value) domainMap.set(e.key.slice(PREFIX.domains.length), e.value);
    const stackMap = new Map<string, StackRecord>();
    for (const e of stacks.entries) if (e.value) stackMap.set(e.value.name, e.value);
    return {
      revision: domains.revision,
      domains: [...domainMap],
      stacks: [...stackMap.values()].map((s) => ({ name: s.name, current: s.current })),
      endpoints: ports.entries.map((e) => e.value).filter((v): v is PortEndpoint => v !== undefined),
      sites: wantedSites(domainMap, stackMap).map((w) => this.sites.resolve(w)),
    };
  }
}

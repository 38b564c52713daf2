/**
 * Where the route table comes from: the host process watches /domains,
 * /stack and /ports, and on any change reads all three at one etcd revision
 * and builds a RouteSnapshot (with this host's website directories) for the
 * HTTP servers. A watch event only wakes the loop; the loop always reads the
 * whole state, so a missed or coalesced event cannot leave a stale route.
 *
 * The watches can also go quiet without failing: a stream on a member cut
 * off from the others (alive to pings, no new events), or an event lost.
 * So the feed re-reads all three prefixes at one revision every
 * ROUTE_RESYNC_MS whatever the watches say. Each read is bounded (every
 * etcd call has a 5 s deadline, lib/store/client.ts), so a read stuck on a
 * dead member fails and the next pass runs on another one. Each resync
 * hands the snapshot on even when its routes did not change, because its
 * revision is what the router acknowledges (lib/router/acks.ts).
 */
import type { Etcd3 } from 'etcd3';
import { WakeLoop } from '../control/wake-loop.js';
import { readRecords, watchPrefix, type PrefixWatch } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { SiteCache } from './site-cache.js';
import { wantedSites, type RouteSnapshot, type SiteRoot } from './snapshot.js';
import { checkRouteRecords, describeProblem, type RouteProblem } from './route-records.js';
import { ENDPOINT_HOLD_MS, holdVanishedEndpoints, type HeldEndpoints } from './endpoint-hold.js';
import { isValidName } from '../vikingfile/names.js';

/**
 * 5 s: a route lost with its watch event is right again within 5 s, the
 * time the cluster promises for a dead server's work to serve elsewhere,
 * while routers on every host (three range reads each) stay cheap for etcd.
 * Meanwhile the router's retries cover an endpoint that went away.
 */
export const ROUTE_RESYNC_MS = 5000;

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
      const snap = holdVanishedEndpoints(this.latest, await this.read(), this.held, Date.now());
      if (this.stopped) return;
      // Drop what is held once its time is up, even if nothing else changes.
      if (this.held.held.size > 0) this.holdTimer ??= setTimeout(() => ((this.holdTimer = undefined), this.wake()), ENDPOINT_HOLD_MS);
      this.latest = snap;
      this.o.onSnapshot(snap);
    },
    (err) => this.o.log?.(`router: reading routes failed: ${err.message}`),
  );
  latest: RouteSnapshot | undefined;
  /** Endpoints kept after they vanished (endpoint-hold.ts). */
  private readonly held: HeldEndpoints = { held: new Map() };
  private holdTimer: NodeJS.Timeout | undefined;

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
    this.resync = setInterval(() => this.wake(), this.o.resyncMs ?? ROUTE_RESYNC_MS);
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    clearTimeout(this.holdTimer);
    this.sites.stop();
    await Promise.all(this.watches.map((w) => w.cancel()));
    this.watches = [];
    await this.loop.stop();
  }

  /** Coalesces wake-ups: one rebuild at a time, and one more if woken meanwhile. */
  wake(): void {
    this.loop.wake();
  }

  /** Records the last rebuild left out, and why (see route-records.ts). */
  problems: RouteProblem[] = [];
  private lastProblems = '';

  /**
   * Reads the three prefixes at one revision. Each record is checked on its
   * own: a bad one is left out and logged, and never stops the others.
   */
  private async read(): Promise<RouteSnapshot> {
    const domains = await readRecords(this.o.client, PREFIX.domains);
    const [stacks, ports] = await Promise.all([
      readRecords(this.o.client, PREFIX.stack, domains.revision),
      readRecords(this.o.client, PREFIX.ports, domains.revision),
    ]);
    const checked = checkRouteRecords(domains.entries, stacks.entries, ports.entries, { domains: PREFIX.domains });
    const sites: SiteRoot[] = [];
    for (const want of wantedSites(checked.domains, checked.stacks)) {
      try {
        sites.push(this.sites.resolve(want));
      } catch (err) {
        checked.problems.push({ key: `${PREFIX.stack}${want.stack}`, stack: want.stack, node: want.node, reason: `website ${want.stack}/${want.node}: ${(err as Error).message}` });
      }
    }
    this.report(checked.problems);
    return {
      revision: domains.revision,
      domains: [...checked.domains],
      stacks: [...checked.stacks.values()].map((s) => ({ name: s.name, current: s.current, ...(s.hsts ? { hsts: s.hsts } : {}), ...accessLogOf(s) })),
      endpoints: checked.endpoints,
      sites,
    };
  }

  /** Logs the records left out when that list changes (not at every resync). */
  private report(problems: RouteProblem[]): void {
    this.problems = problems;
    const text = problems.map(describeProblem).join('\n');
    if (text === this.lastProblems) return;
    this.lastProblems = text;
    if (problems.length === 0) this.o.log?.('router: every route record is usable again');
    for (const p of problems) this.o.log?.(`router: ${p.stack ?? '?'}/${p.node ?? '-'}: ${describeProblem(p)}`);
  }
}

/** The nodes a stack record logs requests of: valid names only (a bad entry is ignored, never routed on). */
function accessLogOf(s: { accessLog?: unknown }): { accessLog?: string[] } {
  if (!Array.isArray(s.accessLog)) return {};
  const nodes = s.accessLog.filter((n): n is string => isValidName(n));
  return nodes.length > 0 ? { accessLog: nodes } : {};
}

/**
 * The router's in-memory view: domain -> what serves it.
 *
 * Built as a whole from one RouteSnapshot (etcd read at one revision) and
 * swapped in one assignment, so a request always sees a consistent table and
 * a route change never restarts anything. Container routes carry the healthy
 * endpoints of the release taking traffic; website routes carry the
 * directory this host serves the files from.
 */
import type { PortEndpoint } from '../store/records.js';
import type { RouteSnapshot, SiteRoot } from './snapshot.js';
import { own } from '../store/dict.js';
import type { TrafficCounters } from './traffic-counters.js';
import type { AccessLogWriter } from './access-log.js';

/** An endpoint as a route holds it: with the counter slot of its (stack, node, domain, replica); -1 when nothing counts. */
export interface RoutedEndpoint extends PortEndpoint {
  slot: number;
}

export interface ContainerRoute {
  kind: 'container';
  stack: string;
  node: string;
  /** The configured domain this route serves (`*.x` for a wildcard): a label of the counters. */
  domain: string;
  /** Healthy endpoints of the release taking traffic (first exposed port). */
  endpoints: RoutedEndpoint[];
  /** Counter slot of answers that no replica gave (no healthy instance); -1 when nothing counts. */
  slot: number;
  /** Balancer cursor (round-robin position, least-conn tie-break), one per node whatever domain a request names. */
  balancer: { cursor: number };
  /** The Strict-Transport-Security header line for HTTPS answers (`hsts:` of the node), or ''. */
  hsts: string;
  /** Where this route's requests are logged (`access_log: true` on the node); null: not logged, nothing to do. */
  access: AccessLogWriter | null;
}

export interface WebsiteRoute {
  kind: 'website';
  stack: string;
  node: string;
  /** Where this host has the files; undefined before the first release. */
  site: SiteRoot | undefined;
  /** The Strict-Transport-Security header line for HTTPS answers, or ''. */
  hsts: string;
}

export type Route = ContainerRoute | WebsiteRoute;

export class RouteTable {
  private readonly exact = new Map<string, Route>();
  /** `*.help.example.com` stored as `help.example.com`. */
  private readonly wildcard = new Map<string, Route>();
  /** Every endpoint a route may send to, so unused pools can be closed. */
  readonly endpoints: PortEndpoint[] = [];
  revision = '0';

  /**
   * Builds the table of a snapshot. Each domain gets its own route object, so
   * the counters (when given) can tell domains apart without any lookup per
   * request; the slots are resolved here, once per table, and so is whether
   * the route's requests go to `access` (the node has access_log: true).
   */
  static build(snap: RouteSnapshot, counters: TrafficCounters | null = null, access: AccessLogWriter | null = null): RouteTable {
    const table = new RouteTable();
    table.revision = snap.revision;
    const byNode = new Map<string, PortEndpoint[]>();
    for (const e of snap.endpoints) {
      const key = `${e.stack}/${e.node}`;
      const list = byNode.get(key);
      if (list) list.push(e);
      else byNode.set(key, [e]);
    }
    const current = new Map(snap.stacks.map((s) => [s.name, s.current]));
    // A random start spreads the first requests after a swap over all endpoints.
    const balancers = new Map<string, { cursor: number }>();
    const balancerOf = (key: string): { cursor: number } => {
      let b = balancers.get(key);
      if (!b) balancers.set(key, (b = { cursor: Math.floor(Math.random() * 1024) }));
      return b;
    };
    const hsts = new Map(snap.stacks.map((s) => [s.name, s.hsts]));
    const sites = new Map(snap.sites.map((s) => [`${s.stack}/${s.node}`, s]));
    const logged = new Set(access ? snap.stacks.flatMap((s) => (s.accessLog ?? []).map((node) => `${s.name}/${node}`)) : []);
    for (const [domain, rec] of snap.domains) {
      const key = `${rec.stack}/${rec.node}`;
      // The feed checked every record (route-records.ts); should one still be odd, it loses its own route only.
      const route = buildRoute(rec, domain, key, byNode, current, sites, hstsLine(own(hsts.get(rec.stack), rec.node)), counters, balancerOf);
      if (route?.kind === 'container' && logged.has(key)) route.access = access;
      if (!route) continue;
      if (route.kind === 'container') table.endpoints.push(...route.endpoints);
      if (domain.startsWith('*.')) table.wildcard.set(domain.slice(2), route);
      else table.exact.set(domain, route);
    }
    return table;
  }

  /**
   * Finds the route of a Host header: case-insensitive, port stripped. A
   * wildcard `*.rt.test` covers exactly one label (`x.rt.test`, never
   * `x.a.rt.test`), as in TLS certificates and as the README promises.
   */
  lookup(hostHeader: string | undefined): Route | undefined {
    if (!hostHeader) return undefined;
    const host = normaliseHost(hostHeader);
    const exact = this.exact.get(host);
    if (exact) return exact;
    const dot = host.indexOf('.');
    // An empty first label (`.rt.test`) is no name a wildcard stands for.
    return dot > 0 ? this.wildcard.get(host.slice(dot + 1)) : undefined;
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }

  /** Every domain with its route: `example.com`, or `*.example.com` for a wildcard (the nginx data plane renders these). */
  *entries(): IterableIterator<[string, Route]> {
    for (const [d, r] of this.exact) yield [d, r];
    for (const [d, r] of this.wildcard) yield [`*.${d}`, r];
  }

  /** The route of a wildcard domain `*.parent` itself, given `parent`. */
  wildcardRoute(parent: string): Route | undefined {
    return this.wildcard.get(parent);
  }

  /** Domains and where they go, for logs and tests. */
  describe(): Array<{ domain: string; target: string; kind: Route['kind']; endpoints: number }> {
    const out = [];
    for (const [map, prefix] of [[this.exact, ''], [this.wildcard, '*.']] as const) {
      for (const [d, r] of map) {
        out.push({ domain: `${prefix}${d}`, target: `${r.stack}/${r.node}`, kind: r.kind, endpoints: r.kind === 'container' ? r.endpoints.length : r.site?.root ? 1 : 0 });
      }
    }
    return out.sort((a, b) => a.domain.localeCompare(b.domain));
  }
}

function buildRoute(
  rec: RouteSnapshot['domains'][number][1],
  domain: string,
  key: string,
  byNode: Map<string, PortEndpoint[]>,
  current: Map<string, string | null>,
  sites: Map<string, SiteRoot>,
  hsts: string,
  counters: TrafficCounters | null,
  balancerOf: (key: string) => { cursor: number },
): Route | undefined {
  try {
    if (rec.kind === 'website') return { kind: 'website', stack: rec.stack, node: rec.node, site: sites.get(key), hsts };
    const slotOf = (replica: number): number => (counters ? counters.slot({ stack: rec.stack, node: rec.node, domain, replica }) : -1);
    const endpoints = pickEndpoints(byNode.get(key) ?? [], current.get(rec.stack) ?? null).map((e): RoutedEndpoint => ({ ...e, slot: slotOf(e.instance) }));
    return { kind: 'container', stack: rec.stack, node: rec.node, domain, endpoints, slot: slotOf(0), balancer: balancerOf(key), hsts, access: null };
  } catch {
    return undefined;
  }
}

/** `strict-transport-security: max-age=N\r\n` for a sane max-age, else '' (a bad record never reaches a header). */
export function hstsLine(maxAge: unknown): string {
  return typeof maxAge === 'number' && Number.isInteger(maxAge) && maxAge >= 0 && maxAge <= 63_072_000 ? `strict-transport-security: max-age=${maxAge}\r\n` : '';
}

/** The header's value (`max-age=N`) of an hstsLine, for node:http answers. */
export const hstsValue = (line: string): string => line.slice('strict-transport-security: '.length, -2);

export function normaliseHost(header: string): string {
  let host = header.trim().toLowerCase();
  if (host.startsWith('[')) return host; // IPv6 literal: no routing by name
  const colon = host.indexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Only the release taking traffic serves, so a new release warming up beside
 * the old one gets nothing until the stack switches to it. Before the first
 * switch (or if the current tag has no endpoint left, as for a `service`
 * node started by an older release) every endpoint serves.
 */
export function pickEndpoints(all: PortEndpoint[], current: string | null): PortEndpoint[] {
  // One endpoint per container: the node's first exposed port is the HTTP one.
  const unique = all.filter((e) => e.primary).sort((a, b) => a.ip.localeCompare(b.ip) || a.hostPort - b.hostPort);
  const live = current ? unique.filter((e) => e.tag === current) : [];
  return live.length > 0 ? live : unique;
}

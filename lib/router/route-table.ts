/**
 * The router's in-memory view: domain -> the endpoints that serve it.
 *
 * Rebuilt as a whole from one etcd read of /domains, /stack and /ports and
 * swapped in one assignment, so a request always sees a consistent table and
 * a route change never restarts anything.
 */
import type { DomainRecord, PortEndpoint, StackRecord } from '../store/records.js';

export interface Route {
  stack: string;
  node: string;
  kind: DomainRecord['kind'];
  /** Healthy endpoints of the release taking traffic (first exposed port). */
  endpoints: PortEndpoint[];
  /** Round-robin cursor. */
  next: number;
}

export interface RouteSources {
  domains: Map<string, DomainRecord>;
  stacks: Map<string, StackRecord>;
  endpoints: PortEndpoint[];
}

export class RouteTable {
  private readonly exact = new Map<string, Route>();
  /** `*.help.example.com` stored as `help.example.com`. */
  private readonly wildcard = new Map<string, Route>();

  static build(src: RouteSources): RouteTable {
    const table = new RouteTable();
    const byNode = new Map<string, PortEndpoint[]>();
    for (const e of src.endpoints) {
      const key = `${e.stack}/${e.node}`;
      const list = byNode.get(key) ?? [];
      list.push(e);
      byNode.set(key, list);
    }
    const routes = new Map<string, Route>();
    for (const [domain, rec] of src.domains) {
      const key = `${rec.stack}/${rec.node}`;
      let route = routes.get(key);
      if (!route) {
        route = { stack: rec.stack, node: rec.node, kind: rec.kind, endpoints: pickEndpoints(byNode.get(key) ?? [], src.stacks.get(rec.stack)), next: 0 };
        routes.set(key, route);
      }
      if (domain.startsWith('*.')) table.wildcard.set(domain.slice(2), route);
      else table.exact.set(domain, route);
    }
    return table;
  }

  /** Finds the route of a Host header: case-insensitive, port stripped, nearest wildcard. */
  lookup(hostHeader: string | undefined): Route | undefined {
    if (!hostHeader) return undefined;
    const host = normaliseHost(hostHeader);
    const exact = this.exact.get(host);
    if (exact) return exact;
    let dot = host.indexOf('.');
    while (dot !== -1) {
      const hit = this.wildcard.get(host.slice(dot + 1));
      if (hit) return hit;
      dot = host.indexOf('.', dot + 1);
    }
    return undefined;
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }
}

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
 * switch (or if the current tag has no endpoint left) every endpoint serves.
 */
export function pickEndpoints(all: PortEndpoint[], stack: StackRecord | undefined): PortEndpoint[] {
  // One endpoint per container: the node's first exposed port is the HTTP one.
  const unique = all.filter((e) => e.primary).sort((a, b) => a.ip.localeCompare(b.ip) || a.hostPort - b.hostPort);
  const current = stack?.current ? unique.filter((e) => e.tag === stack.current) : [];
  return current.length > 0 ? current : unique;
}

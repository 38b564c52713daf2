/**
 * The router's input as one plain, serialisable value: what etcd said at one
 * revision (domains, the release each stack serves, healthy endpoints), plus
 * where this host keeps each website's files.
 *
 * The host process builds it (lib/router/feed.ts) and hands it to whatever
 * serves HTTP: the in-process server or every worker process, over IPC. That
 * is why it holds only the few fields routing needs, never whole records.
 */
import type { DomainRecord, PortEndpoint, StackRecord } from '../store/records.js';
import { own } from '../store/dict.js';

/** Where a website node's files are on this host, or why they are not (yet). */
export interface SiteRoot {
  stack: string;
  node: string;
  /** Release whose files `root` holds (may lag behind `current` while fetching). */
  tag: string | null;
  /** Absolute directory to serve, or null when there is nothing to serve yet. */
  root: string | null;
  /** Set when the current release's files are not served: what is going on. */
  problem?: string;
}

export interface RouteSnapshot {
  /** etcd revision the three prefixes were read at. */
  revision: string;
  domains: Array<[string, DomainRecord]>;
  /** `hsts`: max-age by node, for the nodes that set hsts: (HTTPS answers only). */
  /** `accessLog`: the nodes whose requests are logged (access_log: true). */
  stacks: Array<{ name: string; current: string | null; hsts?: Record<string, number>; accessLog?: string[] }>;
  endpoints: PortEndpoint[];
  sites: SiteRoot[];
}

export const emptySnapshot = (): RouteSnapshot => ({ revision: '0', domains: [], stacks: [], endpoints: [], sites: [] });

/** A website node whose files a router must have: its release and document root. */
export interface WantedSite {
  stack: string;
  node: string;
  tag: string;
  /** Document root inside the release's source, relative. */
  documentRoot: string;
  /** Where the release's source lives: directory on the host that built it. */
  source: string;
  builtOn: string;
}

/** The websites the domains point at, each at its stack's current release. */
export function wantedSites(domains: Map<string, DomainRecord>, stacks: Map<string, StackRecord>): WantedSite[] {
  const out = new Map<string, WantedSite>();
  for (const rec of domains.values()) {
    if (rec.kind !== 'website') continue;
    const key = `${rec.stack}/${rec.node}`;
    if (out.has(key)) continue;
    const stack = stacks.get(rec.stack);
    const documentRoot = own(stack?.websites, rec.node);
    const release = stack?.current ? stack.releases.find((r) => r.tag === stack.current) : undefined;
    if (!stack || typeof documentRoot !== 'string' || !release) continue;
    out.set(key, { stack: rec.stack, node: rec.node, tag: release.tag, documentRoot, source: release.source, builtOn: release.builtOn });
  }
  return [...out.values()];
}

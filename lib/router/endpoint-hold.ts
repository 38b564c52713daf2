/**
 * A router keeps a node's last endpoints for a short while when all of them
 * vanish at once while its release stays current.
 *
 * /ports entries live under their host's lease. When etcd loses its quorum
 * and gets it back, it may revoke every host's lease at once (a leader's
 * revokes proposed while the hosts' keep-alives hung on lost members are
 * committed when quorum returns), a moment before the hosts put their
 * endpoints again under new leases. The containers never stopped. Without
 * this hold every router answered "503 no healthy instance" for that moment
 * (test/e2e/etcd-quorum.test.ts). A node whose last endpoint vanishes for a
 * real reason (its containers died) costs at most the hold in 502s instead
 * of 503s; a release switch, a scale-down that leaves any endpoint, a
 * removed stack or a withdrawn route are never held.
 */
import type { PortEndpoint } from '../store/records.js';
import type { RouteSnapshot } from './snapshot.js';

/** How long vanished endpoints are kept (default 5 s). */
export const ENDPOINT_HOLD_MS = 5000;

export interface HeldEndpoints {
  /** `stack/tag/node` -> endpoints kept, and since when. */
  held: Map<string, { since: number; endpoints: PortEndpoint[] }>;
}

const nodeKey = (e: Pick<PortEndpoint, 'stack' | 'tag' | 'node'>): string => `${e.stack}/${e.tag}/${e.node}`;

/**
 * The snapshot to serve: `next`, plus the endpoints of `prev` for every
 * node of a current release that had endpoints in `prev`, has none in
 * `next`, and has been without them for less than `holdMs`. Pure.
 */
export function holdVanishedEndpoints(prev: RouteSnapshot | undefined, next: RouteSnapshot, state: HeldEndpoints, now: number, holdMs = ENDPOINT_HOLD_MS): RouteSnapshot {
  const current = new Map(next.stacks.map((s) => [s.name, s.current]));
  const present = new Set(next.endpoints.map(nodeKey));
  const keep: PortEndpoint[] = [];
  const stillHeld = new Map<string, { since: number; endpoints: PortEndpoint[] }>();
  const byNode = new Map<string, PortEndpoint[]>();
  for (const e of prev?.endpoints ?? []) byNode.set(nodeKey(e), [...(byNode.get(nodeKey(e)) ?? []), e]);
  for (const [key, endpoints] of byNode) {
    const first = endpoints[0]!;
    if (present.has(key) || current.get(first.stack) !== first.tag) continue;
    const since = state.held.get(key)?.since ?? now;
    if (now - since >= holdMs) continue;
    stillHeld.set(key, { since, endpoints });
    keep.push(...endpoints);
  }
  state.held = stillHeld;
  return keep.length === 0 ? next : { ...next, endpoints: [...next.endpoints, ...keep] };
}

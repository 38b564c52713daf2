/**
 * The router's side of its backends: one keep-alive connection pool per
 * endpoint, how busy each endpoint is, and which one the next request goes
 * to (round-robin, or least-connections with a rotating tie-break).
 *
 * State is kept per endpoint address, not per route table, so a table swap
 * keeps the pools warm and the in-flight counts true. An endpoint that just
 * refused a connection is skipped for a short while (passive health), the
 * way nginx's max_fails/fail_timeout does, unless every endpoint is down.
 */
import { Pool } from 'undici';
import type { PortEndpoint } from '../store/records.js';

export type BalanceMode = 'round-robin' | 'least-conn';

export const BALANCE_MODES: readonly BalanceMode[] = ['round-robin', 'least-conn'];

/** How long an endpoint that refused a connection is skipped. */
export const DOWN_MS = 2000;

export interface Upstream {
  origin: string;
  pool: Pool;
  /** Requests and websockets in flight to it from this process. */
  inflight: number;
  /** Epoch ms before which it is skipped after a failed connect. */
  downUntil: number;
}

/** What the balancer needs of a route: its endpoints and a cursor it may move. */
export interface Balanced {
  endpoints: PortEndpoint[];
  cursor: number;
}

export const originOf = (e: PortEndpoint): string => `http://${e.ip}:${e.hostPort}`;

export interface UpstreamOptions {
  /** Connections per endpoint and process. */
  connections?: number;
  /** Time to wait for an app's response headers before answering 504. */
  headersTimeoutMs?: number;
  /** Longest silence inside a response body before it is cut. */
  bodyTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class Upstreams {
  private readonly byOrigin = new Map<string, Upstream>();

  constructor(
    readonly mode: BalanceMode = 'least-conn',
    private readonly o: UpstreamOptions = {},
  ) {}

  get(e: PortEndpoint): Upstream {
    const origin = originOf(e);
    let up = this.byOrigin.get(origin);
    if (!up) {
      up = {
        origin,
        pool: new Pool(origin, {
          connections: this.o.connections ?? 256,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: this.o.headersTimeoutMs ?? 60_000,
          bodyTimeout: this.o.bodyTimeoutMs ?? 300_000,
          connect: { timeout: this.o.connectTimeoutMs ?? 2000 },
        }),
        inflight: 0,
        downUntil: 0,
      };
      this.byOrigin.set(origin, up);
    }
    return up;
  }

  /**
   * The endpoint for the next request of a route, skipping those already
   * tried for it and, while others are up, those recently refusing.
   */
  pick(route: Balanced, tried: readonly PortEndpoint[] | null, now: number): PortEndpoint | undefined {
    const list = route.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    if (n === 1 && !tried) return list[0];
    const start = route.cursor++ % n;
    let best: PortEndpoint | undefined;
    let bestLoad = Infinity;
    let fallback: PortEndpoint | undefined;
    for (let i = 0; i < n; i++) {
      const e = list[(start + i) % n]!;
      if (tried && tried.includes(e)) continue;
      const up = this.byOrigin.get(originOf(e));
      if (up && up.downUntil > now) {
        fallback ??= e;
        continue;
      }
      if (this.mode === 'round-robin') return e;
      const load = up ? up.inflight : 0;
      if (load < bestLoad) {
        best = e;
        bestLoad = load;
        if (load === 0) break;
      }
    }
    return best ?? fallback;
  }

  /** A connect failed: skip the endpoint for a while. */
  markDown(e: PortEndpoint, now: number): void {
    this.get(e).downUntil = now + DOWN_MS;
  }

  /** Closes the pools of endpoints no longer routed to; their in-flight requests finish first. */
  retain(live: Iterable<PortEndpoint>): void {
    const keep = new Set<string>();
    for (const e of live) keep.add(originOf(e));
    for (const [origin, up] of this.byOrigin) {
      if (keep.has(origin)) continue;
      this.byOrigin.delete(origin);
      void up.pool.close().catch(() => {});
    }
  }

  /** Endpoint address -> requests in flight, for status and tests. */
  load(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [origin, up] of this.byOrigin) out[origin] = up.inflight;
    return out;
  }

  async closeAll(): Promise<void> {
    const all = [...this.byOrigin.values()];
    this.byOrigin.clear();
    await Promise.all(all.map((u) => u.pool.destroy().catch(() => {})));
  }
}

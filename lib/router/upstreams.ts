/**
 * The router's side of its backends: keep-alive connections per endpoint
 * (idle raw sockets for the fast path and for the node:http
 * path), how busy each endpoint is, and which one the next request goes to
 * (round-robin, or least-connections with a rotating tie-break).
 *
 * State is kept per endpoint address, not per route table, so a table swap
 * keeps the pools warm and the in-flight counts true. An endpoint that just
 * refused a connection is skipped for a short while (passive health), the
 * way nginx's max_fails/fail_timeout does, unless every endpoint is down.
 */
import type net from 'node:net';
import type { PortEndpoint } from '../store/records.js';

export type BalanceMode = 'round-robin' | 'least-conn';

export const BALANCE_MODES: readonly BalanceMode[] = ['round-robin', 'least-conn'];

/** How long an endpoint that refused a connection is skipped. */
export const DOWN_MS = 2000;

/** An idle keep-alive connection to an app, and when to stop trusting it. */
export interface IdleSocket {
  socket: net.Socket;
  /** Epoch ms after which the app may have closed it: not reused. */
  expires: number;
}

/** Idle connections kept per endpoint and process. */
const MAX_IDLE = 256;

export class Upstream {
  /** Requests and websockets in flight to it from this process. */
  inflight = 0;
  /** Epoch ms before which it is skipped after a failed connect. */
  downUntil = 0;
  /** Idle raw connections of the fast path, most recently used last. */
  readonly idle: IdleSocket[] = [];
  /** Idle raw connections of the node:http path (they carry other listeners), most recently used last. */
  readonly idleGeneral: IdleSocket[] = [];
  closed = false;

  constructor(
    readonly origin: string,
    readonly ip: string,
    readonly port: number,
    private readonly o: UpstreamOptions,
  ) {}

  /** A reusable idle connection, or undefined. */
  takeIdle(now: number, list: IdleSocket[] = this.idle): net.Socket | undefined {
    for (;;) {
      const entry = list.pop();
      if (!entry) return undefined;
      if (entry.expires > now && !entry.socket.destroyed) return entry.socket;
      entry.socket.destroy();
    }
  }

  /** Keeps a connection for the next request, until `expires`. */
  putIdle(socket: net.Socket, expires: number, list: IdleSocket[] = this.idle): void {
    if (this.closed || list.length >= MAX_IDLE) {
      socket.destroy();
      return;
    }
    list.push({ socket, expires });
  }

  /** An idle connection was closed by the app. */
  dropIdle(socket: net.Socket, list: IdleSocket[] = this.idle): void {
    const i = list.findIndex((e) => e.socket === socket);
    if (i !== -1) list.splice(i, 1);
  }

  /** No new requests; idle connections go now, busy ones when their request is done. */
  close(): Promise<void> {
    this.closed = true;
    for (const e of this.idle.splice(0)) e.socket.destroy();
    for (const e of this.idleGeneral.splice(0)) e.socket.destroy();
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.closed = true;
    for (const e of this.idle.splice(0)) e.socket.destroy();
    for (const e of this.idleGeneral.splice(0)) e.socket.destroy();
    return Promise.resolve();
  }
}

/** What the balancer needs of a route: its endpoints and a cursor it may move. */
export interface Balanced<E extends PortEndpoint = PortEndpoint> {
  endpoints: E[];
  /** Shared by every domain of a node, so they take turns over its replicas together. */
  balancer: { cursor: number };
}

export const originOf = (e: PortEndpoint): string => `http://${e.ip}:${e.hostPort}`;

export interface UpstreamOptions {
  /** Time to wait for an app's response headers before answering 504. */
  headersTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class Upstreams {
  private readonly byOrigin = new Map<string, Upstream>();
  /** Same, by endpoint object: a route's endpoints are looked up on every request without building strings. */
  private readonly byEndpoint = new WeakMap<PortEndpoint, Upstream>();

  constructor(
    readonly mode: BalanceMode = 'least-conn',
    private readonly o: UpstreamOptions = {},
  ) {}

  /** Connect timeout for new connections, in ms. */
  get connectTimeoutMs(): number {
    return this.o.connectTimeoutMs ?? 2000;
  }

  get headersTimeoutMs(): number {
    return this.o.headersTimeoutMs ?? 60_000;
  }

  get(e: PortEndpoint): Upstream {
    const known = this.byEndpoint.get(e);
    if (known && !known.closed) return known;
    const origin = originOf(e);
    let up = this.byOrigin.get(origin);
    if (!up) {
      up = new Upstream(origin, e.ip, e.hostPort, this.o);
      this.byOrigin.set(origin, up);
    }
    this.byEndpoint.set(e, up);
    return up;
  }

  /** The state of an endpoint if it has been used, without creating it. */
  private peek(e: PortEndpoint): Upstream | undefined {
    const known = this.byEndpoint.get(e);
    return known && !known.closed ? known : this.byOrigin.get(originOf(e));
  }

  /**
   * The endpoint for the next request of a route, skipping those already
   * tried for it and, while others are up, those recently refusing.
   */
  pick<E extends PortEndpoint>(route: Balanced<E>, tried: readonly PortEndpoint[] | null, now: number): E | undefined {
    const list = route.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    if (n === 1 && !tried) return list[0];
    const start = route.balancer.cursor++ % n;
    let best: E | undefined;
    let bestLoad = Infinity;
    let fallback: E | undefined;
    for (let i = 0; i < n; i++) {
      const e = list[(start + i) % n]!;
      if (tried && tried.includes(e)) continue;
      const up = this.peek(e);
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
      void up.close();
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
    await Promise.all(all.map((u) => u.destroy()));
  }
}

/**
 * The router's fast path: plain HTTP/1.1 proxying on raw sockets.
 *
 * node:http plus an HTTP client cost ~45 µs of CPU per proxied request here,
 * nginx ~18 µs (bench/RESULTS.md); most of the difference is objects,
 * streams and timers per request. This path reads the request head straight
 * from the client socket, rewrites it in one pass (http1.ts), writes it to a
 * kept-alive raw connection to the app, and copies the answer back with the
 * app's own framing (Content-Length, chunked, or until close), so a request
 * costs two reads, two writes and a little string work.
 *
 * It only takes what is unambiguous and common: HTTP/1.1 requests without
 * Transfer-Encoding, Upgrade or Expect, to a container route that has
 * endpoints. Any other request (websockets, chunked uploads, HTTP/1.0,
 * websites, unknown domains, anything odd) hands the connection, with the
 * bytes not yet used, to the node:http server, which does everything else.
 * The exchange itself is in fast-exchange.ts. Timeouts are checked by one
 * sweep a second instead of a timer per request.
 */
import type net from 'node:net';
import { frameRequest } from './http1.js';
import type { RouteTable } from './route-table.js';
import type { Upstreams } from './upstreams.js';
import { FastExchange, type ExchangeClient } from './fast-exchange.js';
import { NO_TRUSTED_PROXIES, type TrustedProxies } from './forwarding.js';
import { rawErrorPage } from './pages.js';
import { CHALLENGE_PATH } from './acme-challenges.js';
import type { TrafficCounters } from './traffic-counters.js';

export interface FastPathOptions {
  upstreams: Upstreams;
  routes: () => RouteTable;
  /** Takes over a connection the fast path does not serve (node:http). */
  handoff: (socket: net.Socket) => void;
  /** A request for this host goes to node:http too (true), e.g. to be redirected to HTTPS. */
  divert?: (host: string, encrypted: boolean) => boolean;
  proto?: string;
  /** Whose X-Forwarded-For is believed (default: nobody). */
  trust?: TrustedProxies;
  /** Client timeouts; see ClientTimeouts. */
  timeouts?: Partial<ClientTimeouts>;
  /** Traffic counters (traffic-counters.ts); null or absent: nothing is counted or timed. */
  counters?: TrafficCounters | null;
  log?: (msg: string) => void;
}

/**
 * How long a client may take, checked by one sweep a second. The head
 * deadline runs from the first byte of a request head, however the bytes
 * trickle in (nginx's client_header_timeout), so a client sending one byte a
 * second cannot hold a connection; the idle timeout is how long a kept-alive
 * connection may wait for its next request.
 */
export interface ClientTimeouts {
  /** Whole request head, from its first byte (default 15 s). */
  headMs: number;
  /** Idle kept-alive connection between requests (default 65 s). */
  idleMs: number;
}

export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = { headMs: 15_000, idleMs: 65_000 };

const HTTPS_XFP = 'x-forwarded-proto: https\r\n';

/** Client bytes buffered before reading pauses (pipelined requests, bodies waiting for a connection). */
const MAX_PENDING = 256 * 1024;

export class FastPath {
  readonly connections = new Set<ClientConnection>();
  /** A clock that costs nothing to read: updated by the sweep. */
  now = Date.now();
  closing = false;
  /** A stop is coming (RouterServer.close): every answer says `Connection: close`, new connections are still served. */
  draining = false;
  private readonly timer: NodeJS.Timeout;
  readonly xfp: string;
  readonly trust: TrustedProxies;
  readonly timeouts: ClientTimeouts;
  readonly counters: TrafficCounters | null;

  constructor(readonly o: FastPathOptions) {
    this.counters = o.counters ?? null;
    this.xfp = `x-forwarded-proto: ${o.proto ?? 'http'}\r\n`;
    this.trust = o.trust ?? NO_TRUSTED_PROXIES;
    this.timeouts = { ...DEFAULT_CLIENT_TIMEOUTS, ...o.timeouts };
    // The sweep is the clock of every timeout: a tick well inside the shortest one.
    const tick = Math.max(50, Math.min(1000, Math.floor(this.timeouts.headMs / 4)));
    this.timer = setInterval(() => this.sweep(), tick);
    this.timer.unref();
  }

  accept = (socket: net.Socket): void => {
    if (this.closing) return void socket.destroy();
    this.connections.add(new ClientConnection(this, socket));
  };

  private sweep(): void {
    this.now = Date.now();
    for (const c of this.connections) c.checkTimeouts(this.now);
  }

  /** Stops taking requests: idle connections close now, busy ones after their answer. */
  shutdown(): void {
    this.closing = true;
    clearInterval(this.timer);
    for (const c of this.connections) c.shutdown();
  }

  /** Closes every connection at once. */
  destroyAll(): void {
    for (const c of this.connections) c.socket.destroy();
  }
}

class ClientConnection implements ExchangeClient {
  buf: Buffer | null = null;
  exchange: FastExchange | null = null;
  lastActive: number;
  /** When the first byte of the request head being read arrived (0: none is being read). */
  headSince = 0;
  /** performance.now() at the first byte of the request being read or served (only while counting). */
  t0 = 0;
  private closing = false;
  private gone = false;
  private paused = false;
  readonly remote: string;
  /** The X-Forwarded-Proto line: https when the client came over TLS. */
  readonly xfp: string;
  readonly encrypted: boolean;

  constructor(
    readonly fp: FastPath,
    readonly socket: net.Socket,
  ) {
    this.lastActive = fp.now;
    // The first head's deadline runs from the accept, as nginx's client_header_timeout does.
    this.headSince = fp.now;
    this.remote = socket.remoteAddress ?? '';
    this.encrypted = (socket as { encrypted?: boolean }).encrypted === true;
    this.xfp = this.encrypted ? HTTPS_XFP : fp.xfp;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** The client will send nothing more (half-close): answer what is in flight, then close. */
  private readonly onEnd = (): void => {
    this.closing = true;
    if (!this.exchange) this.socket.end();
  };

  private readonly onData = (d: Buffer): void => {
    this.lastActive = this.fp.now;
    if (this.exchange === null && this.headSince === 0) this.headSince = this.fp.now;
    if (this.buf === null && this.exchange === null && this.fp.counters !== null) this.t0 = performance.now();
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    if (this.exchange) {
      this.exchange.pumpBody();
      if (this.buf !== null && this.buf.length > MAX_PENDING) this.pause();
    } else this.next();
  };

  private readonly onDrain = (): void => this.exchange?.clientDrained();
  private readonly onError = (): void => {
    this.socket.destroy();
  };
  private readonly onClose = (): void => {
    this.gone = true;
    this.fp.connections.delete(this);
    this.exchange?.clientGone();
  };

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Starts the next buffered request, or hands the connection over. */
  private next(): void {
    const buf = this.buf;
    if (buf === null || this.exchange || this.closing || this.gone) return;
    const head = frameRequest(buf);
    if (head === undefined) return;
    if (head === null) return this.handoff();
    // ACME HTTP-01 validations are the router's own to answer (node:http side), never an app's.
    if (head.target.startsWith(CHALLENGE_PATH)) return this.handoff();
    const divert = this.fp.o.divert;
    if (divert !== undefined && divert(head.host, this.encrypted)) return this.handoff();
    const route = this.fp.o.routes().lookup(head.host);
    if (!route || route.kind !== 'container' || route.endpoints.length === 0) return this.handoff();
    this.buf = head.bodyStart < buf.length ? buf.subarray(head.bodyStart) : null;
    this.headSince = 0;
    this.exchange = new FastExchange(this, head, route);
    this.exchange.start();
  }

  /** node:http serves this connection from here on, starting with the bytes not used yet. */
  private handoff(): void {
    this.fp.connections.delete(this);
    const s = this.socket;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('drain', this.onDrain);
    s.off('error', this.onError);
    s.off('close', this.onClose);
    s.pause();
    if (this.buf) s.unshift(this.buf);
    this.buf = null;
    this.fp.o.handoff(s);
    s.resume();
  }

  /** The exchange is over: close if asked, else go on with what the client sent meanwhile. */
  exchangeDone(close: boolean): void {
    this.exchange = null;
    this.lastActive = this.fp.now;
    // A pipelined request's head started arriving while this one was served.
    this.headSince = this.buf === null ? 0 : this.fp.now;
    if (this.buf !== null && this.fp.counters !== null) this.t0 = performance.now();
    if (this.gone) return;
    if (close || this.closing) {
      this.closing = true;
      this.socket.end();
      return;
    }
    this.resume();
    this.next();
  }

  checkTimeouts(now: number): void {
    if (this.exchange) return this.exchange.checkTimeouts(now);
    const t = this.fp.timeouts;
    if (this.headSince !== 0) {
      if (now - this.headSince <= t.headMs) return;
      // As nginx does: 408, then close. The client may not read it; nothing waits for that.
      this.closing = true;
      this.socket.end(rawErrorPage(408, 'Request timeout', `the request head did not arrive within ${t.headMs / 1000} s`, false, true), 'latin1');
      this.socket.destroySoon();
      setTimeout(() => this.socket.destroy(), 1000).unref();
      this.headSince = 0;
      this.buf = null;
      return;
    }
    if (now - this.lastActive > t.idleMs) this.socket.destroy();
  }

  shutdown(): void {
    this.closing = true;
    if (!this.exchange) this.socket.end();
  }
}

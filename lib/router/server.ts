/**
 * The HTTP side of the router: looks up each request's Host in the current
 * route table and proxies it to a container, serves a website's files, or
 * answers 404/502/503 with a page that says what is wrong.
 *
 * Connections arrive on the raw fast path (fast-path.ts), which proxies
 * plain HTTP/1.1 requests itself and hands every other connection to a
 * node:http server that never listens on its own: websockets, websites,
 * chunked uploads, HTTP/1.0 and error pages are served there. It knows
 * nothing about etcd: it is handed RouteSnapshots and swaps its table in one
 * assignment, so it runs the same in the host process and in every router
 * worker process.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { RouteTable, hstsValue, normaliseHost } from './route-table.js';
import type { RouteSnapshot } from './snapshot.js';
import { Upstreams, type BalanceMode, type UpstreamOptions } from './upstreams.js';
import type { ForwardContext } from './proxy.js';
import { GeneralExchange } from './general-exchange.js';
import { proxyUpgrade, rawErrorResponse } from './upgrade.js';
import { StaticFiles } from './static-site.js';
import { DEFAULT_CLIENT_TIMEOUTS, FastPath, type ClientTimeouts } from './fast-path.js';
import { errorPage, rawErrorPage } from './pages.js';
import { FrontProxyTrust, TrustedProxies } from './forwarding.js';
import { MAX_HEADERS } from './http1.js';
import { CHALLENGE_PATH, ChallengeAnswers } from './acme-challenges.js';
import { TlsCertificates, type CertBundle } from './tls-certs.js';
import { TlsListener } from './tls-listener.js';
import { answerRedirect, wantsRedirect } from './tls-redirect.js';
import { TrafficCounters } from './traffic-counters.js';
import { AccessLogWriter, type AccessBatch } from './access-log.js';

/** The client-facing limits an operator sets (flags of `viking host` / `viking up`). */
export interface RouterTuning {
  /** Addresses or CIDR ranges whose X-Forwarded-For is extended; from anyone else it is replaced. Default none. */
  trustedProxies?: readonly string[];
  /** Client head deadline and idle keep-alive timeout, on both request paths. */
  clientTimeouts?: Partial<ClientTimeouts>;
  /** Open client connections this server (one worker) keeps; more are answered 503 and closed. */
  maxConnections?: number;
}

export interface RouterServerOptions extends RouterTuning {
  balance?: BalanceMode;
  upstream?: UpstreamOptions;
  /** Scheme the clients used, for X-Forwarded-Proto. */
  proto?: string;
  /** 48 bytes of TLS session ticket keys shared by every worker of the router. */
  ticketKeys?: Buffer;
  /** false: TLS sessions are never resumed (the bench's full-handshake rows); default true. */
  tlsResumption?: boolean;
  /**
   * node:http refuses an HTTP/1.1 request without Host with a bare 400 (default true). The nginx engine's
   * fallback sets false: nginx sends it every request over HTTP/1.1, also an HTTP/1.0 one without Host,
   * which gets the same 404 page as on the Node engine.
   */
  requireHost?: boolean;
  /** Behind the nginx engine's nginx: its X-Forwarded-For is kept as it is (FrontProxyTrust); trustedProxies is ignored. */
  behindNginx?: boolean;
  /** Serve plain requests on the raw fast path (default true); false: node:http for all. */
  fastPath?: boolean;
  /** Count traffic per stack, node, domain and replica (default true); false: the bench's baseline. */
  metrics?: boolean;
  /**
   * Where access log batches go (access-log.ts); absent: no route is logged.
   * The receiver calls `accessLog.taken()` of this server once it has one.
   */
  accessLog?: (batch: AccessBatch) => void;
  log?: (msg: string) => void;
}

/** Client connections per router worker (each is a file descriptor; nginx's worker_connections is 512 by default). */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/** The longest a whole request may take on the node:http path (uploads included). */
const REQUEST_TIMEOUT_MS = 300_000;
/** A refused connection gets this long to read its 503. */
const REFUSAL_LINGER_MS = 2000;

const unknownDomain = (host: string | undefined): [number, string, string] => [
  404,
  'No app here',
  `viking has no app for the domain ${host ? normaliseHost(host) : '(none: the request has no Host header)'}. Add it to the domains: of a node in your Vikingfile and push.`,
];

export class RouterServer {
  private table = new RouteTable();
  readonly upstreams: Upstreams;
  private readonly files = new StaticFiles();
  private readonly ctx: ForwardContext;
  readonly http: http.Server;
  private readonly fast: FastPath | undefined;
  /** Upgraded connections (websockets), which node:http no longer tracks. */
  private readonly tunnels = new Set<Duplex>();
  /** The listening socket; it hands connections to the fast path or to node:http. */
  private readonly listener: net.Server;
  /** Client connections open now (both paths). */
  private open = 0;
  private readonly maxConnections: number;
  /** ACME HTTP-01 answers (acme-challenges.ts), fed by the host process. */
  readonly challenges = new ChallengeAnswers();
  private readonly timeouts: ClientTimeouts;
  /** Certificates by SNI (tls-certs.ts); empty until the host process sends some. */
  readonly certs: TlsCertificates;
  /** The HTTPS listener, once listenTls ran. */
  private secure: TlsListener | undefined;
  /** The port HTTPS is served on (for redirects); 0: no HTTPS, no redirects. */
  private httpsPort = 0;
  /** Traffic counters of this server (one worker); null when counting is off. */
  readonly counters: TrafficCounters | null;
  /** This server's access log writer; null when nothing takes the lines. */
  readonly accessLog: AccessLogWriter | null;

  constructor(private readonly o: RouterServerOptions = {}) {
    this.accessLog = o.accessLog ? new AccessLogWriter(o.accessLog) : null;
    this.upstreams = new Upstreams(o.balance ?? 'least-conn', o.upstream ?? {});
    const trust = o.behindNginx ? new FrontProxyTrust() : new TrustedProxies(o.trustedProxies ?? []);
    this.counters = o.metrics === false ? null : new TrafficCounters();
    this.ctx = { upstreams: this.upstreams, proto: o.proto ?? 'http', trust, counters: this.counters, ...(o.log ? { log: o.log } : {}) };
    const timeouts = { ...DEFAULT_CLIENT_TIMEOUTS, ...o.clientTimeouts };
    this.timeouts = timeouts;
    this.certs = new TlsCertificates(o.log);
    this.maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.http = http.createServer(
      {
        noDelay: true,
        requireHostHeader: o.requireHost !== false,
        keepAliveTimeout: timeouts.idleMs,
        // The same head deadline as the fast path, from the head's first byte.
        headersTimeout: timeouts.headMs,
        requestTimeout: Math.max(REQUEST_TIMEOUT_MS, timeouts.headMs + 1),
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.headMs / 4))),
      },
      this.onRequest,
    );
    // One more than the limit, so a head over it is seen (and refused with 431) instead of silently cut.
    this.http.maxHeadersCount = MAX_HEADERS + 1;
    this.http.on('upgrade', this.onUpgrade);
    // node:http checks headersTimeout/requestTimeout only once it has been 'listening'; it never
    // listens itself (connections are handed to it), so start that check now.
    this.http.emit('listening');
    if (o.fastPath !== false) {
      this.fast = new FastPath({
        upstreams: this.upstreams,
        routes: () => this.table,
        handoff: (socket) => this.http.emit('connection', socket),
        // Plain requests for a domain with a certificate go to node:http, which redirects them.
        divert: (host, encrypted) => !encrypted && this.httpsPort !== 0 && this.certs.covers(host),
        proto: o.proto ?? 'http',
        trust,
        timeouts,
        counters: this.counters,
        ...(o.log ? { log: o.log } : {}),
      });
    }
    // Half-open like node:http's own sockets, so handed-over connections behave the same.
    this.listener = net.createServer({ noDelay: true, allowHalfOpen: true }, this.accept);
  }

  /** Every client connection starts here: counted, refused over the cap, else served. */
  private readonly accept = (socket: net.Socket): void => {
    if (this.open >= this.maxConnections) return this.refuse(socket);
    this.open++;
    socket.once('close', () => this.open--);
    if (this.fast) this.fast.accept(socket);
    else this.http.emit('connection', socket);
  };

  /**
   * Over the connection cap: a 503 with `connection: close` straight away,
   * then the client's bytes are read and dropped until it closes (closing
   * on unread bytes would reset the connection and lose the 503), for at
   * most REFUSAL_LINGER_MS.
   */
  private refuse(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    socket.end(rawErrorPage(503, 'Too many connections', 'this router is at its connection limit; try again shortly', false, true), 'latin1');
    socket.on('end', () => socket.destroy());
    socket.resume();
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.open;
  }

  /** Swaps in the table of a new snapshot; pools of endpoints that left are closed gracefully. */
  apply(snap: RouteSnapshot): void {
    const table = RouteTable.build(snap, this.counters, this.accessLog);
    this.table = table;
    this.upstreams.retain(table.endpoints);
  }

  /** Serves exactly these certificates from now on (no restart, handshakes in flight unaffected). */
  applyCertificates(bundles: readonly CertBundle[]): void {
    this.certs.apply(bundles);
  }

  /** Starts the HTTPS listener; resolves with its port. */
  async listenTls(port: number, host = '0.0.0.0'): Promise<number> {
    this.secure = new TlsListener({
      certs: this.certs,
      accept: (socket) => this.accept(socket),
      onRequest: (req, res) => this.onRequest(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse),
      handshakeTimeoutMs: this.timeouts.headMs,
      idleMs: this.timeouts.idleMs,
      maxConnections: this.maxConnections,
      ...(this.o.ticketKeys ? { ticketKeys: this.o.ticketKeys } : {}),
      ...(this.o.tlsResumption === false ? { resumption: false } : {}),
      ...(this.o.log ? { log: this.o.log } : {}),
    });
    this.httpsPort = await this.secure.listen(port, host);
    return this.httpsPort;
  }

  get routes(): RouteTable {
    return this.table;
  }

  get revision(): string {
    return this.table.revision;
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    const l = this.listener;
    await new Promise<void>((resolve, reject) => {
      l.once('error', reject);
      l.listen(port, host, () => {
        l.off('error', reject);
        resolve();
      });
    });
    return (l.address() as AddressInfo).port;
  }

  /** Every answer from now on says `Connection: close` (the first step of a stop: see STOP_DRAIN_MS). */
  private draining = false;

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs`, then closes the rest. With `drainMs`
   * and clients connected, the connections already open are kept that long first, every answer saying
   * `Connection: close` (STOP_DRAIN_MS, engine.ts): new connections are refused from the start, so a client's
   * next request goes elsewhere, and no kept-alive connection is closed under a request being sent.
   */
  async close(graceMs = 2000, drainMs = 0): Promise<void> {
    const stopped = new Promise<void>((r) => this.listener.close(() => r()));
    const secureStopped = this.secure?.close(graceMs);
    if (drainMs > 0 && this.open > 0) {
      this.draining = true;
      if (this.fast) this.fast.draining = true;
      await new Promise((r) => setTimeout(r, drainMs));
    }
    this.fast?.shutdown();
    // Stops node:http's timeout checks (it never listened itself) and closes its idle connections.
    this.http.close();
    this.http.closeIdleConnections();
    const timer = setTimeout(() => {
      this.fast?.destroyAll();
      this.http.closeAllConnections();
      for (const t of this.tunnels) t.destroy();
    }, graceMs);
    await stopped;
    await secureStopped;
    clearTimeout(timer);
    await this.upstreams.closeAll();
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.rawHeaders.length > MAX_HEADERS * 2) {
      // node:http kept only the first headers: never forward a cut head. Its body is framed by llhttp, but close anyway.
      res.shouldKeepAlive = false;
      return errorPage(res, 431, 'Request header fields too large', `a request may carry at most ${MAX_HEADERS} header fields`);
    }
    if (this.draining) res.shouldKeepAlive = false;
    if (req.url?.startsWith(CHALLENGE_PATH)) return this.challenges.serve(req, res);
    // HTTP/2 names the domain in :authority; node:http's compatibility API leaves Host unset then.
    const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
    if (this.httpsPort !== 0 && !(req.socket as { encrypted?: boolean }).encrypted && wantsRedirect(req.url, this.certs.covers(host ?? ''))) {
      return answerRedirect(req, res, this.httpsPort);
    }
    const route = this.table.lookup(host);
    if (!route) {
      if (this.counters) this.counters.unrouted++;
      const [status, title, detail] = unknownDomain(host);
      return errorPage(res, status, title, detail);
    }
    if (route.kind === 'container') {
      if (route.endpoints.length === 0) {
        this.counters?.answered(route.slot, 503, true, 0, 0, 0);
        route.access?.record(route, undefined, req.method ?? 'GET', req.url ?? '/', host ?? '', 503, 0, 0, 0, true);
        return errorPage(res, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now. Check it with: viking ps ${route.stack}`);
      }
      return new GeneralExchange(this.ctx, route, req, res).start();
    }
    if (route.hsts !== '' && (req.socket as { encrypted?: boolean }).encrypted) res.setHeader('strict-transport-security', hstsValue(route.hsts));
    const root = route.site?.root;
    if (!root) {
      const why = route.site?.problem ?? `${route.stack} has no release of ${route.node} yet`;
      return errorPage(res, 503, 'Website not ready', `${route.stack}/${route.node}: ${why}.`);
    }
    this.files.serve(root, req, res).catch((err: Error) => {
      this.o.log?.(`router: ${route.stack}/${route.node} ${req.url}: ${err.message}`);
      errorPage(res, 500, 'Internal error', `the file could not be read: ${err.message}`);
    });
  };

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (req.rawHeaders.length > MAX_HEADERS * 2) return rawErrorResponse(socket, 431, 'Request header fields too large', `a request may carry at most ${MAX_HEADERS} header fields`);
    const route = this.table.lookup(req.headers.host);
    if (!route) {
      if (this.counters) this.counters.unrouted++;
      const [status, title, detail] = unknownDomain(req.headers.host);
      return rawErrorResponse(socket, status, title, detail);
    }
    if (route.kind === 'website') return rawErrorResponse(socket, 400, 'Bad request', `${route.stack}/${route.node} is a static website; it does not accept upgrades`);
    if (route.endpoints.length === 0) {
      this.counters?.answered(route.slot, 503, true, 0, 0, 0);
      return rawErrorResponse(socket, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now`);
    }
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
    proxyUpgrade(this.ctx, route, req, socket, head);
  };
}

/**
 * The HTTP side of the router: one node:http server that looks up each
 * request's Host in the current route table and proxies it to a container,
 * serves a website's files, or answers 404/502/503 with a page that says what
 * is wrong. It knows nothing about etcd: it is handed RouteSnapshots and
 * swaps its table in one assignment, so it runs the same in the host process
 * and in every router worker process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { RouteTable, normaliseHost } from './route-table.js';
import type { RouteSnapshot } from './snapshot.js';
import { Upstreams, type BalanceMode, type UpstreamOptions } from './upstreams.js';
import { Exchange, type ForwardContext } from './proxy.js';
import { proxyUpgrade, rawErrorResponse } from './upgrade.js';
import { StaticFiles } from './static-site.js';
import { errorPage } from './pages.js';

export interface RouterServerOptions {
  balance?: BalanceMode;
  upstream?: UpstreamOptions;
  /** Scheme the clients used, for X-Forwarded-Proto. */
  proto?: string;
  log?: (msg: string) => void;
}

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

  constructor(private readonly o: RouterServerOptions = {}) {
    this.upstreams = new Upstreams(o.balance ?? 'least-conn', o.upstream ?? {});
    this.ctx = { upstreams: this.upstreams, proto: o.proto ?? 'http', ...(o.log ? { log: o.log } : {}) };
    this.http = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, this.onRequest);
    this.http.on('upgrade', this.onUpgrade);
  }

  /** Swaps in the table of a new snapshot; pools of endpoints that left are closed gracefully. */
  apply(snap: RouteSnapshot): void {
    const table = RouteTable.build(snap);
    this.table = table;
    this.upstreams.retain(table.endpoints);
  }

  get routes(): RouteTable {
    return this.table;
  }

  get revision(): string {
    return this.table.revision;
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    return (this.http.address() as AddressInfo).port;
  }

  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then closes the rest. */
  async close(graceMs = 2000): Promise<void> {
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await this.upstreams.closeAll();
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const route = this.table.lookup(req.headers.host);
    if (!route) {
      const [status, title, detail] = unknownDomain(req.headers.host);
      return errorPage(res, status, title, detail);
    }
    if (route.kind === 'container') {
      if (route.endpoints.length === 0) {
        return errorPage(res, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now. Check it with: viking ps ${route.stack}`);
      }
      return new Exchange(this.ctx, route, req, res).start();
    }
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
    const route = this.table.lookup(req.headers.host);
    if (!route) {
      const [status, title, detail] = unknownDomain(req.headers.host);
      return rawErrorResponse(socket, status, title, detail);
    }
    if (route.kind === 'website') return rawErrorResponse(socket, 400, 'Bad request', `${route.stack}/${route.node} is a static website; it does not accept upgrades`);
    if (route.endpoints.length === 0) {
      return rawErrorResponse(socket, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now`);
    }
    proxyUpgrade(this.ctx, route, req, socket, head);
  };
}

/**
 * The front HTTP router that runs on every host: Host header -> node ->
 * healthy endpoints, from a table rebuilt on every change under /domains,
 * /stack and /ports and swapped in memory. Any host's router serves every
 * domain, so DNS or a load balancer can point at all of them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import type { DomainRecord, PortEndpoint, StackRecord } from '../store/records.js';
import { RouteTable, normaliseHost, type Route } from './route-table.js';
import { IDEMPOTENT, PoolSet, forwardHeaders, proxyTo } from './proxy.js';
import { errorPage } from './pages.js';

export interface RouterOptions {
  client: Etcd3;
  port: number;
  host?: string;
  log?: (msg: string) => void;
}

export class Router {
  private table = new RouteTable();
  private readonly pools = new PoolSet();
  private readonly server: http.Server;
  private watches: PrefixWatch[] = [];
  private rebuilding = false;
  private dirty = false;
  private readyResolve: (() => void) | undefined;
  /** Resolves after the first table was built. */
  readonly ready: Promise<void>;

  constructor(private readonly o: RouterOptions) {
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => void this.handle(req, res));
  }

  async start(): Promise<number> {
    for (const prefix of [PREFIX.domains, PREFIX.stack, PREFIX.ports]) {
      this.watches.push(watchPrefix(this.o.client, prefix, () => this.scheduleRebuild()));
    }
    this.scheduleRebuild();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host ?? '0.0.0.0', () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.cancel()));
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    await this.pools.closeAll();
  }

  /** Current routes, for the API and tests. */
  get routes(): RouteTable {
    return this.table;
  }

  private scheduleRebuild(): void {
    this.dirty = true;
    if (this.rebuilding) return;
    this.rebuilding = true;
    void (async () => {
      while (this.dirty) {
        this.dirty = false;
        try {
          await this.rebuild();
        } catch (err) {
          this.o.log?.(`router: rebuild failed: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 250));
          this.dirty = true;
        }
      }
      this.rebuilding = false;
    })();
  }

  /** Reads the three prefixes at one revision and swaps the table in. */
  private async rebuild(): Promise<void> {
    const domains = await readPrefix<DomainRecord>(this.o.client, PREFIX.domains);
    const [stacks, ports] = await Promise.all([
      readPrefix<StackRecord>(this.o.client, PREFIX.stack, domains.revision),
      readPrefix<PortEndpoint>(this.o.client, PREFIX.ports, domains.revision),
    ]);
    const domainMap = new Map<string, DomainRecord>();
    for (const e of domains.entries) if (e.value) domainMap.set(e.key.slice(PREFIX.domains.length), e.value);
    const stackMap = new Map<string, StackRecord>();
    for (const e of stacks.entries) if (e.value) stackMap.set(e.value.name, e.value);
    const endpoints = ports.entries.map((e) => e.value).filter((v): v is PortEndpoint => v !== undefined);
    this.table = RouteTable.build({ domains: domainMap, stacks: stackMap, endpoints });
    this.pools.retain(endpoints);
    this.readyResolve?.();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = this.table.lookup(req.headers.host);
    if (!route) {
      const host = req.headers.host ? normaliseHost(req.headers.host) : '(none)';
      return errorPage(res, 404, 'No app here', `viking has no app for the domain ${host}. Add it to the domains: of a node in your Vikingfile and push.`);
    }
    if (route.endpoints.length === 0) {
      return errorPage(res, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now. Check it with: viking ps ${route.stack}`);
    }
    await this.forward(route, req, res);
  }

  /** Round-robin; a failed connect on an idempotent bodiless request tries the next endpoint. */
  private async forward(route: Route, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const headers = forwardHeaders(req, 'http');
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    const retryable = bodyless && IDEMPOTENT.has(req.method ?? 'GET');
    const attempts = retryable ? Math.min(route.endpoints.length, 3) : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const endpoint = route.endpoints[route.next++ % route.endpoints.length]!;
      try {
        await proxyTo(this.pools.get(endpoint), req, res, headers, bodyless);
        return;
      } catch (err) {
        lastError = err;
        if (res.headersSent) {
          res.destroy();
          return;
        }
      }
    }
    this.o.log?.(`router: ${route.stack}/${route.node}: ${(lastError as Error).message}`);
    errorPage(res, 502, 'Bad gateway', `${route.stack}/${route.node} did not answer: ${(lastError as Error).message}`);
  }
}

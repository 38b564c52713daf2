/**
 * Forwarding one HTTP request to one endpoint through a keep-alive pool.
 * Hop-by-hop headers are dropped both ways (RFC 9110 §7.6.1) and the
 * X-Forwarded-* headers are set, so apps see who really called.
 */
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { PortEndpoint } from '../store/records.js';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization',
]);

function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : value ? [value] : []) for (const t of v.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

export function forwardHeaders(req: IncomingMessage, proto: string): Record<string, string | string[]> {
  const listed = connectionTokens(req.headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name) || name === 'host') continue;
    out[name] = value;
  }
  const remote = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remote}` : remote;
  out['x-forwarded-proto'] = proto;
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['host'] = req.headers.host ?? '';
  return out;
}

export function responseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Keep-alive pools, one per endpoint address, closed when the endpoint leaves the table. */
export class PoolSet {
  private readonly pools = new Map<string, Pool>();

  get(e: PortEndpoint): Pool {
    const origin = `http://${e.ip}:${e.hostPort}`;
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 2000 } });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes pools of endpoints no longer routed to; in-flight requests finish first. */
  retain(live: Iterable<PortEndpoint>): void {
    const keep = new Set([...live].map((e) => `http://${e.ip}:${e.hostPort}`));
    for (const [origin, pool] of this.pools) {
      if (!keep.has(origin)) {
        this.pools.delete(origin);
        void pool.close().catch(() => {});
      }
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => {})));
  }
}

export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Sends the request to one endpoint; resolves when the response is fully piped. */
export async function proxyTo(pool: Pool, req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[]>, bodyless: boolean): Promise<void> {
  const upstream = await pool.request({
    path: req.url ?? '/',
    method: req.method as 'GET',
    headers,
    body: bodyless ? null : req,
  });
  res.writeHead(upstream.statusCode, responseHeaders(upstream.headers));
  for await (const chunk of upstream.body) res.write(chunk);
  res.end();
}

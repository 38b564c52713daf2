/**
 * Forwarding one HTTP request to a container endpoint (the node:http path;
 * the forwarding rules themselves are in forwarding.ts, shared with the fast path).
 *
 * The upstream side is undici's `Pool.dispatch()` with a raw handler: the
 * response head arrives as raw header buffers and body chunks are written
 * straight to the client, with no stream objects in between (the fastest
 * Node design measured, see shared/PITFALLS.md). Hop-by-hop headers are
 * dropped both ways (RFC 9110 §7.6.1), X-Forwarded-* are set, and a request
 * that failed before any response byte is retried on another endpoint when
 * that is safe: any bodiless request whose connection could not be made, and
 * idempotent bodiless ones whose connection broke before the answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { PortEndpoint } from '../store/records.js';
import type { ContainerRoute } from './route-table.js';
import type { Upstream, Upstreams } from './upstreams.js';
import { errorPage } from './pages.js';
import { BROKE_EARLY, CONNECT_FAILED, connectionListed, HOP_BY_HOP, MAX_ATTEMPTS, mayRetry, NO_TRUSTED_PROXIES, ROUTER_SET, type TrustedProxies } from './forwarding.js';

/** Values of a Connection header (one or repeated) as the header names they list, framing headers excepted. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (!value) return null;
  let out: Set<string> | null = null;
  for (const v of Array.isArray(value) ? value : [value]) out = connectionListed(v, out);
  return out;
}

/**
 * The request headers to send upstream, as a flat [name, value, ...] list:
 * the client's minus hop-by-hop ones and those its Connection header names
 * (never Content-Length or Host: see forwarding.ts), plus X-Forwarded-For
 * (extended only for a trusted proxy, else replaced), -Proto and -Host (replaced).
 */
export function forwardHeaders(req: IncomingMessage, proto: string, keepUpgrade = false, trust: TrustedProxies = NO_TRUSTED_PROXIES): string[] {
  const listed = connectionTokens(req.headers.connection);
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (ROUTER_SET.has(lower) || lower === 'expect') continue; // node:http answered Expect itself
    if (HOP_BY_HOP.has(lower) || (listed !== null && listed.has(lower))) {
      if (!(keepUpgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
      if (lower === 'connection') continue; // re-added below as exactly `upgrade`
    }
    out.push(name, raw[i + 1]!);
  }
  const host = req.headers.host ?? '';
  const remote = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out.push('host', host, 'x-forwarded-for', trust.forwardedFor(Array.isArray(prior) ? prior.join(', ') : prior, remote), 'x-forwarded-proto', proto, 'x-forwarded-host', host);
  if (keepUpgrade) out.push('connection', 'upgrade');
  return out;
}

/** The response headers to send to the client, flat, without hop-by-hop ones. */
export function responseHeaders(raw: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = [];
  let listed: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') listed = connectionListed(value, listed);
      continue;
    }
    out.push(name, value);
  }
  if (listed === null) return out;
  const filtered: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) filtered.push(out[i]!, out[i + 1]!);
  return filtered;
}

export interface ForwardContext {
  upstreams: Upstreams;
  proto: string;
  /** Whose X-Forwarded-For is believed. */
  trust: TrustedProxies;
  log?: (msg: string) => void;
}


function errorCode(err: Error): string {
  return (err as { code?: string }).code ?? err.name;
}

/**
 * One client request on its way to a container: tries endpoints in the
 * balancer's order and streams the first answer back. It is the undici
 * dispatch handler itself, so no closure is made per request.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private endpoint: PortEndpoint | undefined;
  private upstream: Upstream | undefined;
  private tried: PortEndpoint[] | null = null;
  private attempts = 0;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private answered = false;
  private finished = false;
  private readonly headers: string[];
  private readonly bodyless: boolean;

  constructor(
    private readonly ctx: ForwardContext,
    private readonly route: ContainerRoute,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.headers = forwardHeaders(req, ctx.proto, false, ctx.trust);
    const cl = req.headers['content-length'];
    this.bodyless = (cl === undefined || cl === '0') && req.headers['transfer-encoding'] === undefined;
    res.once('close', this.onClientClose);
  }

  start(): void {
    const now = Date.now();
    const e = this.ctx.upstreams.pick(this.route, this.tried, now);
    if (!e) return this.fail(503, 'App not running', `${this.route.stack}/${this.route.node} has no healthy instance right now. Check it with: viking ps ${this.route.stack}`);
    this.endpoint = e;
    const up = this.ctx.upstreams.get(e);
    this.upstream = up;
    up.inflight++;
    this.attempts++;
    up.pool.dispatch(
      {
        path: this.req.url ?? '/',
        method: this.req.method ?? 'GET',
        headers: this.headers,
        body: this.bodyless ? null : this.req,
      },
      this,
    );
  }

  private readonly onClientClose = (): void => {
    // The client went away before the answer was complete: stop the upstream side too.
    if (!this.finished) this.abortUpstream?.(new Error('client closed the connection'));
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.res.destroyed) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx informational: the final answer follows
    this.answered = true;
    this.resumeUpstream = resume;
    const res = this.res;
    if (res.destroyed) return true;
    res.writeHead(statusCode, statusText, responseHeaders(rawHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // The client reads slower than the app writes: pause the upstream until it drains.
    this.res.once('drain', this.onDrain);
    return false;
  }

  private readonly onDrain = (): void => this.resumeUpstream?.();

  onComplete(): void {
    this.release();
    this.finished = true;
    this.res.end();
  }

  onError(err: Error): void {
    this.release();
    if (this.finished) return;
    const code = errorCode(err);
    if (this.res.destroyed) {
      this.finished = true;
      return;
    }
    if (!this.answered && this.mayRetry(code)) {
      if (CONNECT_FAILED.has(code) && this.endpoint) this.ctx.upstreams.markDown(this.endpoint, Date.now());
      (this.tried ??= []).push(this.endpoint!);
      // Every endpoint tried: only a broken keep-alive connection is worth a fresh one.
      if (this.tried.length >= this.route.endpoints.length && BROKE_EARLY.has(code)) this.tried = [];
      if (this.attempts < MAX_ATTEMPTS && this.tried.length < this.route.endpoints.length) {
        this.abortUpstream = null;
        return this.start();
      }
    }
    this.finished = true;
    if (this.answered || this.res.headersSent) {
      this.res.destroy();
      return;
    }
    const where = this.endpoint ? `${this.endpoint.ip}:${this.endpoint.hostPort} (${this.endpoint.tag}/${this.endpoint.instance})` : 'no endpoint';
    this.ctx.log?.(`router: ${this.route.stack}/${this.route.node} ${this.req.method} ${this.req.url}: ${code} from ${where}`);
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      return errorPage(this.res, 504, 'Gateway timeout', `${this.route.stack}/${this.route.node} did not answer in time (${where}).`);
    }
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      return errorPage(this.res, 400, 'Bad request', `the request could not be forwarded: ${err.message}`);
    }
    const tries = this.attempts > 1 ? ` after ${this.attempts} attempts` : '';
    errorPage(this.res, 502, 'Bad gateway', `${this.route.stack}/${this.route.node} did not answer${tries}: ${describeError(code, err)} (${where}). Check it with: viking ps ${this.route.stack}`);
  }

  private mayRetry(code: string): boolean {
    // undici streams the body as it comes: only a bodiless request is sure not to have sent any of it.
    return this.bodyless && mayRetry(code, this.req.method ?? 'GET', true, 0);
  }

  private release(): void {
    if (this.upstream) {
      this.upstream.inflight--;
      this.upstream = undefined;
    }
  }

  private fail(status: number, title: string, detail: string): void {
    this.finished = true;
    errorPage(this.res, status, title, detail);
  }
}

function describeError(code: string, err: Error): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timed out';
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
      return 'the app closed the connection without answering';
    default:
      return err.message || code;
  }
}

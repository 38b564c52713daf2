/**
 * One request of the fast path on its way to an app and back (see
 * fast-path.ts): picks an endpoint, takes a kept-alive raw connection or
 * opens one, writes the rewritten head and the body, and copies the answer
 * to the client with the app's own framing; a body that ends at close is
 * re-chunked so the client connection stays open. Failures before any answer
 * byte are retried when that is safe (the rules of forwarding.ts); the
 * connection goes back to the endpoint's idle list only when it is surely in
 * step.
 */
import net from 'node:net';
import type { PortEndpoint } from '../store/records.js';
import type { RequestHead } from './http1.js';
import { AnswerReader, LAST_CHUNK, rechunkedLine, writeChunk } from './answer-reader.js';
import type { ContainerRoute, RoutedEndpoint } from './route-table.js';
import { Field, type TrafficCounters } from './traffic-counters.js';
import type { AccessLogWriter } from './access-log.js';
import type { Upstream, Upstreams } from './upstreams.js';
import { rawErrorPage } from './pages.js';
import { BROKE_EARLY, CONNECT_FAILED, endpointLabel, failureAnswer, mayRetry, nextTry, type TrustedProxies } from './forwarding.js';

/** What an exchange needs of the client connection it serves. */
export interface ExchangeClient {
  readonly socket: net.Socket;
  /** Bytes the client sent that are not used yet (request body, pipelined requests). */
  buf: Buffer | null;
  readonly remote: string;
  /** The X-Forwarded-Proto line of this connection. */
  readonly xfp: string;
  /** The client came over TLS (HSTS is sent only then). */
  readonly encrypted: boolean;
  /** performance.now() at the request's first byte (set while counting). */
  readonly t0: number;
  readonly fp: {
    /** Traffic counters; null: counting is off. */
    readonly counters: TrafficCounters | null;
    readonly now: number;
    readonly closing: boolean;
    /** A stop is coming: answer with `Connection: close`. */
    readonly draining: boolean;
    /** The X-Forwarded-Proto line. */
    readonly xfp: string;
    /** Whose X-Forwarded-For is believed. */
    readonly trust: TrustedProxies;
    readonly o: { readonly upstreams: Upstreams; readonly log?: (msg: string) => void };
  };
  pause(): void;
  resume(): void;
  /** The exchange is over; `close`: end the client connection. */
  exchangeDone(close: boolean): void;
}

const kOwner = Symbol('viking.exchange');
const kUpstream = Symbol('viking.upstream');
interface AppSocket extends net.Socket {
  [kOwner]: FastExchange | null;
  [kUpstream]: Upstream;
}

const enum Phase {
  Connecting,
  Waiting,
  Body,
  Done,
}

/** The request head as the app receives it (`xfp`: the X-Forwarded-Proto line). */
export function requestWire(req: RequestHead, remote: string, xfp: string, trust: TrustedProxies): string {
  const xff = req.forwardedFor === null ? remote : trust.forwardedFor(req.forwardedFor, remote);
  return `${req.head}host: ${req.host}\r\nx-forwarded-for: ${xff}\r\n${xfp}x-forwarded-host: ${req.host}\r\n\r\n`;
}

/** One request on its way to an app and back. */
export class FastExchange {
  private phase = Phase.Connecting;
  private attempts = 0;
  private tried: PortEndpoint[] | null = null;
  private endpoint: RoutedEndpoint | undefined;
  private up: Upstream | undefined;
  private sock: AppSocket | null = null;
  /** The app's status, once its head arrived; answer bytes sent to the client (both counted only while counting). */
  private status = 0;
  private bytesOut = 0;
  private reused = false;
  private since: number;
  /** Request body bytes still to forward, and how many were sent. */
  private bodyLeft: number;
  private bodySent = 0;
  private responseStarted = false;
  /** Reads the app's answer (answer-reader.ts: the rules both engines share). */
  private readonly answer: AnswerReader;
  private closeClient = false;
  private upstreamPaused = false;
  /** The app's body ends at close: the router chunks it, so the client connection can stay open. */
  private rechunk = false;
  private readonly wire: string;

  constructor(
    private readonly conn: ExchangeClient,
    private readonly req: RequestHead,
    private readonly route: ContainerRoute,
  ) {
    this.since = conn.fp.now;
    this.bodyLeft = req.contentLength;
    this.answer = new AnswerReader(req.method);
    this.wire = requestWire(req, conn.remote, conn.xfp, conn.fp.trust);
  }

  start(): void {
    const fp = this.conn.fp;
    const e = fp.o.upstreams.pick(this.route, this.tried, fp.now);
    if (!e) return this.answerError(503, 'App not running', `${this.route.stack}/${this.route.node} has no healthy instance right now. Check it with: viking ps ${this.route.stack}`);
    this.endpoint = e;
    const up = fp.o.upstreams.get(e);
    this.up = up;
    up.inflight++;
    const counters = fp.counters;
    if (counters !== null) {
      counters.add(e.slot, Field.Active, 1);
      if (this.attempts > 0) counters.add(e.slot, Field.Retries, 1);
    }
    this.attempts++;
    this.since = fp.now;
    const idle = up.takeIdle(fp.now) as AppSocket | undefined;
    if (idle) {
      this.reused = true;
      this.sock = idle;
      idle[kOwner] = this;
      return this.send();
    }
    this.reused = false;
    this.phase = Phase.Connecting;
    const s = net.connect({ host: up.ip, port: up.port, noDelay: true }) as AppSocket;
    s[kOwner] = this;
    s[kUpstream] = up;
    s.on('connect', onAppConnect);
    s.on('data', onAppData);
    s.on('drain', onAppDrain);
    s.on('end', onAppEnd);
    s.on('error', onAppError);
    s.on('close', onAppClose);
    this.sock = s;
  }

  connected(): void {
    if (this.phase === Phase.Connecting) this.send();
  }

  private send(): void {
    this.phase = Phase.Waiting;
    this.since = this.conn.fp.now;
    this.sock!.write(this.wire, 'latin1');
    this.pumpBody();
  }

  /** Forwards request body bytes the client sent, once the app connection is there. */
  pumpBody(): void {
    if (this.bodyLeft === 0 || this.phase === Phase.Connecting || this.phase === Phase.Done) return;
    const buf = this.conn.buf;
    if (buf === null) return;
    const take = Math.min(this.bodyLeft, buf.length);
    const chunk = take === buf.length ? buf : buf.subarray(0, take);
    this.conn.buf = take === buf.length ? null : buf.subarray(take);
    this.bodyLeft -= take;
    this.bodySent += take;
    if (!this.sock!.write(chunk)) this.conn.pause();
  }

  appDrained(): void {
    if (this.phase !== Phase.Done) this.conn.resume();
  }

  clientDrained(): void {
    if (this.upstreamPaused && this.sock) {
      this.upstreamPaused = false;
      this.sock.resume();
    }
  }

  appData(d: Buffer): void {
    if (this.phase === Phase.Body) return this.body(d);
    if (this.phase !== Phase.Waiting) return;
    this.since = this.conn.fp.now;
    const answer = this.answer;
    const head = answer.head(d);
    if (head === null) return;
    if (head === false) return this.appFailed(answer.failCode, answer.failMessage);
    this.closeClient = this.req.close || this.bodyLeft > 0 || this.conn.fp.closing || this.conn.fp.draining;
    // The client speaks HTTP/1.1 (the fast path takes nothing else): a body that ends at close is re-chunked, as nginx does.
    this.rechunk = answer.endsAtClose;
    const te = this.rechunk ? rechunkedLine(head) : '';
    const hsts = this.conn.encrypted ? this.route.hsts : '';
    const wireHead = `${head.head}${te}${hsts}${this.closeClient ? 'connection: close\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=65\r\n'}\r\n`;
    this.responseStarted = true;
    this.phase = Phase.Body;
    this.status = head.status;
    this.bytesOut += wireHead.length;
    const rest = answer.rest;
    if (answer.done || rest === null) {
      this.conn.socket.write(wireHead, 'latin1');
      if (answer.done) this.finish();
      return;
    }
    // Head and the first body bytes in one write (writev).
    const part = answer.body(rest);
    if (part === null) return this.appFailed(answer.failCode, answer.failMessage);
    const client = this.conn.socket;
    client.cork();
    client.write(wireHead, 'latin1');
    this.write(part);
    client.uncork();
    if (answer.done) this.finish();
  }

  private body(d: Buffer): void {
    this.since = this.conn.fp.now;
    const answer = this.answer;
    const part = answer.body(d);
    if (part === null) return this.appFailed(answer.failCode, answer.failMessage);
    this.write(part);
    if (answer.done) this.finish();
  }

  private write(chunk: Buffer): void {
    const client = this.conn.socket;
    this.bytesOut += chunk.length;
    const flowing = this.rechunk ? writeChunk(client, chunk) : client.write(chunk);
    if (!flowing && this.sock && !this.upstreamPaused) {
      // The client reads slower than the app writes: hold the app until it drained.
      this.upstreamPaused = true;
      this.sock.pause();
    }
  }

  /** The answer is complete. */
  private finish(): void {
    this.phase = Phase.Done;
    const sock = this.sock;
    const up = this.up;
    this.sock = null;
    this.release();
    const counters = this.conn.fp.counters;
    if (counters !== null) counters.answered(this.endpoint!.slot, this.status, false, performance.now() - this.conn.t0, this.req.bodyStart + this.bodySent, this.bytesOut);
    const access = this.route.access;
    if (access !== null) this.log(access, this.status, this.bytesOut, false);
    if (sock) {
      sock[kOwner] = null;
      if (this.upstreamPaused) sock.resume();
      if (!this.answer.appWillClose && this.bodyLeft === 0 && up && !sock.destroyed) up.putIdle(sock, this.conn.fp.now + this.answer.keepAliveMs);
      else sock.destroy();
    }
    this.conn.exchangeDone(this.closeClient || this.bodyLeft > 0);
  }

  appEnded(): void {
    // An answer delimited by the close of the connection is complete now.
    if (this.phase === Phase.Body && this.answer.endsAtClose) {
      if (this.rechunk) this.conn.socket.write(LAST_CHUNK);
      return this.finish();
    }
    this.appFailed(this.reused && this.phase === Phase.Waiting && this.answer.partial === null ? 'ECLOSED_REUSED' : 'ECLOSED', 'the app closed the connection without answering');
  }

  appError(err: NodeJS.ErrnoException): void {
    const code = this.phase === Phase.Connecting ? (err.code ?? 'ECONNREFUSED') : (err.code ?? 'EIO');
    this.appFailed(code, describe(code, err.message));
  }

  appClosed(): void {
    if (this.phase !== Phase.Done) this.appEnded();
  }

  /** The app side failed: retry if nothing reached the client and that is safe, else answer 502. */
  appFailed(code: string, message: string): void {
    if (this.phase === Phase.Done) return;
    const sock = this.sock;
    this.sock = null;
    if (sock) {
      sock[kOwner] = null;
      sock.destroy();
    }
    this.release();
    if (this.responseStarted) {
      this.phase = Phase.Done;
      this.conn.socket.destroy();
      return;
    }
    const connectFailed = CONNECT_FAILED.has(code);
    if (connectFailed && this.endpoint) {
      this.conn.fp.o.upstreams.markDown(this.endpoint, Date.now());
      this.conn.fp.counters?.add(this.endpoint.slot, Field.ConnectErrors, 1);
    }
    // Some answer bytes arrived: the request reached the app, whatever the code says.
    const brokeEarly = BROKE_EARLY.has(code) && this.answer.partial === null;
    const safe = (connectFailed || brokeEarly) && mayRetry(code, this.req.method, this.req.contentLength === 0, this.bodySent);
    if (safe && this.endpoint) {
      const next = nextTry(this.tried, this.endpoint, this.route.endpoints.length, brokeEarly, this.attempts);
      if (next !== null) {
        this.tried = next;
        this.answer.reset();
        return this.start();
      }
    }
    const where = endpointLabel(this.endpoint);
    this.conn.fp.o.log?.(`router: ${this.route.stack}/${this.route.node} ${this.req.method} ${this.req.target}: ${code} from ${where}`);
    this.answerError(...failureAnswer(this.route, code, message, where, this.attempts));
  }

  private answerError(status: number, title: string, detail: string): void {
    this.phase = Phase.Done;
    // Unread body bytes would be taken for the next request: close after a refused body.
    const close = this.req.close || this.bodyLeft > 0 || this.bodySent > 0 || this.conn.fp.closing || this.conn.fp.draining;
    const page = rawErrorPage(status, title, detail, this.req.wantsHtml, close);
    const counters = this.conn.fp.counters;
    if (counters !== null) counters.answered(this.endpoint ? this.endpoint.slot : this.route.slot, status, true, performance.now() - this.conn.t0, this.req.bodyStart + this.bodySent, page.length);
    const access = this.route.access;
    if (access !== null) this.log(access, status, page.length, true);
    this.conn.socket.write(page, 'latin1');
    this.conn.exchangeDone(close);
  }

  /** Writes the access log line of this request (only for routes whose node has access_log: true). */
  private log(access: AccessLogWriter, status: number, bytesOut: number, own: boolean): void {
    const t0 = this.conn.t0;
    const req = this.req;
    access.record(this.route, this.endpoint, req.method, req.target, req.host, status, t0 > 0 ? performance.now() - t0 : 0, req.bodyStart + this.bodySent, bytesOut, own);
  }

  private release(): void {
    if (this.up) {
      this.up.inflight--;
      this.up = undefined;
      this.conn.fp.counters?.add(this.endpoint!.slot, Field.Active, -1);
    }
  }

  clientGone(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    const sock = this.sock;
    this.sock = null;
    if (sock) {
      sock[kOwner] = null;
      sock.destroy();
    }
    this.release();
  }

  checkTimeouts(now: number): void {
    const waited = now - this.since;
    const ups = this.conn.fp.o.upstreams;
    if (this.phase === Phase.Connecting && waited > ups.connectTimeoutMs) this.appFailed('ETIMEDOUT_CONNECT', 'connect timed out');
    else if (this.phase === Phase.Waiting && waited > ups.headersTimeoutMs) this.appFailed('ETIMEDOUT_HEAD', 'no answer in time');
  }
}

function describe(code: string, message: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'the app closed the connection without answering';
    default:
      return message || code;
  }
}

// Listeners shared by every app connection: they find their exchange through the socket.
function onAppConnect(this: AppSocket): void {
  this[kOwner]?.connected();
}
function onAppData(this: AppSocket, d: Buffer): void {
  const owner = this[kOwner];
  if (owner) owner.appData(d);
  else this.destroy(); // an idle connection must stay silent
}
function onAppDrain(this: AppSocket): void {
  this[kOwner]?.appDrained();
}
function onAppEnd(this: AppSocket): void {
  this[kOwner]?.appEnded();
}
function onAppError(this: AppSocket, err: NodeJS.ErrnoException): void {
  this[kOwner]?.appError(err);
}
function onAppClose(this: AppSocket): void {
  const owner = this[kOwner];
  if (owner) owner.appClosed();
  else this[kUpstream].dropIdle(this);
}

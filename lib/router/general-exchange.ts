/**
 * One request of the node:http path on its way to an app and back, over a
 * raw kept-alive connection read with the fast path's own answer reader
 * (answer-reader.ts). So both paths read app answers alike and as liberally as
 * nginx: bare-LF header lines, HTTP/1.0, bodies that end at close. node:http
 * then frames the answer for its client (chunked for HTTP/1.1, close for
 * HTTP/1.0).
 *
 * This path serves what the fast path leaves: chunked uploads (sent on
 * chunked), Expect, HTTP/1.0 clients, unusual methods. Headers go through
 * forwardHeaders (the rules of forwarding.ts); failures before any answer
 * byte are retried by the same rules as the fast path. It has a timer per
 * request, unlike the fast path: it is not the hot path.
 */
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PortEndpoint } from '../store/records.js';
import { hstsValue, type ContainerRoute, type RoutedEndpoint } from './route-table.js';
import { Field } from './traffic-counters.js';
import type { Upstream } from './upstreams.js';
import { AnswerReader, LAST_CHUNK, writeChunk } from './answer-reader.js';
import { BROKE_EARLY, CONNECT_FAILED, HOP_BY_HOP, endpointLabel, failureAnswer, mayRetry, nextTry } from './forwarding.js';
import { forwardHeaders, type ForwardContext } from './proxy.js';
import { errorPage } from './pages.js';

const enum Phase {
  Connecting,
  Waiting,
  Body,
  Done,
}

export class GeneralExchange {
  private phase = Phase.Connecting;
  private attempts = 0;
  private tried: PortEndpoint[] | null = null;
  private endpoint: RoutedEndpoint | undefined;
  /** When the request arrived (performance.now(), only while counting), the app's status and the bytes passed on. */
  private readonly t0: number;
  private status = 0;
  private bytesOut = 0;
  private up: Upstream | undefined;
  private sock: net.Socket | null = null;
  private reused = false;
  private timer: NodeJS.Timeout | undefined;
  /** Reads the app's answer (answer-reader.ts: the rules both engines share). */
  private readonly answer: AnswerReader;
  private bodySent = 0;
  private bodyDone: boolean;
  private readonly head: string;
  private readonly bodyless: boolean;
  private readonly chunkedBody: boolean;
  /** The client speaks HTTP/2: connection-specific answer headers are not allowed there. */
  private readonly h2: boolean;

  constructor(
    private readonly ctx: ForwardContext,
    private readonly route: ContainerRoute,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.t0 = ctx.counters !== null || route.access !== null ? performance.now() : 0;
    const cl = req.headers['content-length'];
    // HTTP/2 has no Transfer-Encoding: a body without Content-Length is one whose stream did not end with the headers.
    this.h2 = req.httpVersionMajor === 2;
    const h2Stream = this.h2 ? (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream : undefined;
    this.chunkedBody = req.headers['transfer-encoding'] !== undefined || (h2Stream !== undefined && cl === undefined && h2Stream.endAfterHeaders === false);
    this.bodyless = !this.chunkedBody && (cl === undefined || cl === '0');
    this.bodyDone = this.bodyless;
    this.answer = new AnswerReader(req.method ?? 'GET');
    const headers = forwardHeaders(req, ctx.proto, false, ctx.trust);
    let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    // node:http decoded a chunked upload; it goes on chunked (Content-Length cannot be beside it: llhttp refused that).
    if (this.chunkedBody) head += 'transfer-encoding: chunked\r\n';
    this.head = `${head}\r\n`;
    res.once('close', this.onClientClose);
  }

  start(): void {
    const ups = this.ctx.upstreams;
    const now = Date.now();
    const e = ups.pick(this.route, this.tried, now);
    if (!e) return this.answerError(503, 'App not running', `${this.route.stack}/${this.route.node} has no healthy instance right now. Check it with: viking ps ${this.route.stack}`);
    this.endpoint = e;
    const up = ups.get(e);
    this.up = up;
    up.inflight++;
    const counters = this.ctx.counters;
    if (counters !== null) {
      counters.add(e.slot, Field.Active, 1);
      if (this.attempts > 0) counters.add(e.slot, Field.Retries, 1);
    }
    this.attempts++;
    const idle = up.takeIdle(now, up.idleGeneral);
    if (idle) {
      // Drop the listeners it had while idle.
      idle.removeAllListeners('close');
      idle.removeAllListeners('data');
      idle.removeAllListeners('error');
      this.reused = true;
      this.attach(idle);
      return this.send();
    }
    this.reused = false;
    this.phase = Phase.Connecting;
    const s = net.connect({ host: up.ip, port: up.port, noDelay: true });
    this.attach(s);
    s.once('connect', this.onConnect);
    this.arm(ups.connectTimeoutMs, 'ETIMEDOUT_CONNECT', 'connect timed out');
  }

  private attach(s: net.Socket): void {
    this.sock = s;
    s.on('data', this.onData);
    s.on('drain', this.onAppDrain);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onEnd);
  }

  private detach(s: net.Socket): void {
    s.off('connect', this.onConnect);
    s.off('data', this.onData);
    s.off('drain', this.onAppDrain);
    s.off('end', this.onEnd);
    s.off('error', this.onError);
    s.off('close', this.onEnd);
  }

  private arm(ms: number, code: string, message: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.failed(code, message), ms);
  }

  private readonly onConnect = (): void => this.send();

  private send(): void {
    this.phase = Phase.Waiting;
    // The answer timeout runs once the whole request is sent (an upload may take its time; node:http's requestTimeout bounds it).
    if (this.bodyDone) this.arm(this.ctx.upstreams.headersTimeoutMs, 'ETIMEDOUT_HEAD', 'no answer in time');
    else clearTimeout(this.timer);
    this.sock!.write(this.head, 'latin1');
    if (this.bodyless || this.attempts > 1) return;
    const req = this.req;
    req.on('data', this.onBody);
    req.once('end', this.onBodyEnd);
    req.resume();
  }

  private readonly onBody = (d: Buffer): void => {
    const s = this.sock;
    if (!s || this.phase === Phase.Done) return;
    this.bodySent += d.length;
    if (!(this.chunkedBody ? writeChunk(s, d) : s.write(d))) this.req.pause();
  };

  private readonly onBodyEnd = (): void => {
    this.bodyDone = true;
    if (this.phase === Phase.Done || this.phase === Phase.Connecting) return;
    // The app needs the last chunk even if it answered already, or its connection is out of step.
    if (this.chunkedBody && this.sock) this.sock.write(LAST_CHUNK);
    if (this.phase === Phase.Waiting) this.arm(this.ctx.upstreams.headersTimeoutMs, 'ETIMEDOUT_HEAD', 'no answer in time');
  };

  private readonly onAppDrain = (): void => {
    if (!this.bodyDone) this.req.resume();
  };

  private readonly onData = (d: Buffer): void => {
    if (this.phase === Phase.Body) return this.body(d);
    if (this.phase !== Phase.Waiting) return;
    const answer = this.answer;
    const head = answer.head(d);
    if (head === null) return;
    if (head === false) return this.failed(answer.failCode, answer.failMessage);
    clearTimeout(this.timer);
    this.phase = Phase.Body;
    this.status = head.status;
    this.bytesOut += head.head.length;
    const lines = head.head.split('\r\n');
    const reason = / \d{3} (.*)$/.exec(lines[0]!)?.[1] ?? '';
    const headers: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '') continue;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      const lower = name.toLowerCase();
      // node:http frames the answer for its client itself.
      if (lower === 'transfer-encoding') continue;
      if (this.h2 && HOP_BY_HOP.has(lower)) continue;
      headers.push(name, line.slice(colon + 1).trim());
    }
    // HSTS of the node (`hsts:`), over TLS only: a browser ignores it on plain HTTP anyway.
    if (this.route.hsts !== '' && (this.req.socket as { encrypted?: boolean } | undefined)?.encrypted) headers.push('strict-transport-security', hstsValue(this.route.hsts));
    if (!this.res.destroyed) {
      if (this.h2) this.res.writeHead(head.status, headers);
      else this.res.writeHead(head.status, reason, headers);
    }
    if (answer.done) return this.finish();
    if (answer.rest !== null) this.body(answer.rest);
  };

  private body(d: Buffer): void {
    const answer = this.answer;
    // A chunked body is decoded: node:http chunks it again for its client.
    const chunked = answer.framing.kind === 'chunked';
    const part = answer.body(d, chunked ? this.write : undefined);
    if (part === null) return this.failed(answer.failCode, answer.failMessage);
    if (!chunked) this.write(part);
    if (answer.done) this.finish();
  }

  private readonly write = (piece: Buffer): void => {
    this.bytesOut += piece.length;
    if (this.res.write(piece) || !this.sock) return;
    // The client reads slower than the app writes: hold the app until it drained.
    const s = this.sock;
    s.pause();
    this.res.once('drain', () => s.resume());
  };

  private readonly onEnd = (): void => {
    if (this.phase === Phase.Body && this.answer.endsAtClose) return this.finish();
    if (this.phase === Phase.Done) return;
    this.failed(this.answer.partial === null ? (this.reused && this.phase === Phase.Waiting ? 'ECLOSED_REUSED' : 'ECLOSED') : 'EPROTO', 'the app closed the connection without answering');
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    const code = err.code ?? (this.phase === Phase.Connecting ? 'ECONNREFUSED' : 'EIO');
    this.failed(code, code === 'ECONNREFUSED' ? 'connection refused' : code === 'ECONNRESET' || code === 'EPIPE' ? 'the app closed the connection without answering' : err.message || code);
  };

  private readonly onClientClose = (): void => {
    if (this.phase === Phase.Done) return;
    // The client went away before the answer was complete: drop the app connection too.
    this.phase = Phase.Done;
    this.dropSocket();
    this.release();
  };

  /** The answer is complete. */
  private finish(): void {
    this.phase = Phase.Done;
    clearTimeout(this.timer);
    const s = this.sock;
    const up = this.up;
    this.sock = null;
    this.release();
    this.req.off('data', this.onBody);
    const counters = this.ctx.counters;
    if (counters !== null) counters.answered(this.endpoint!.slot, this.status, false, performance.now() - this.t0, this.head.length + this.bodySent, this.bytesOut);
    this.route.access?.record(this.route, this.endpoint, this.req.method ?? 'GET', this.req.url ?? '/', this.hostOf(), this.status, this.elapsed(), this.head.length + this.bodySent, this.bytesOut, false);
    if (s) {
      this.detach(s);
      s.resume();
      if (!this.answer.appWillClose && this.bodyDone && up && !s.destroyed) {
        const list = up.idleGeneral;
        // An idle connection must stay silent; if the app closes it, forget it.
        s.once('close', () => up.dropIdle(s, list));
        s.on('data', () => s.destroy());
        s.on('error', () => s.destroy());
        up.putIdle(s, Date.now() + this.answer.keepAliveMs, list);
      } else s.destroy();
    }
    this.res.end();
  }

  private dropSocket(): void {
    clearTimeout(this.timer);
    const s = this.sock;
    this.sock = null;
    if (s) {
      this.detach(s);
      s.on('error', () => {});
      s.destroy();
    }
  }

  /** The app side failed: retry if nothing reached the client and that is safe, else answer 502/504. */
  private failed(code: string, message: string): void {
    if (this.phase === Phase.Done) return;
    const answered = this.phase === Phase.Body;
    this.dropSocket();
    this.release();
    if (answered || this.res.headersSent) {
      this.phase = Phase.Done;
      this.res.destroy();
      return;
    }
    const connectFailed = CONNECT_FAILED.has(code);
    if (connectFailed && this.endpoint) {
      this.ctx.upstreams.markDown(this.endpoint, Date.now());
      this.ctx.counters?.add(this.endpoint.slot, Field.ConnectErrors, 1);
    }
    const brokeEarly = BROKE_EARLY.has(code) && this.answer.partial === null;
    if ((connectFailed || brokeEarly) && mayRetry(code, this.req.method ?? 'GET', this.bodyless, this.bodySent) && this.endpoint) {
      const next = nextTry(this.tried, this.endpoint, this.route.endpoints.length, brokeEarly, this.attempts);
      if (next !== null) {
        this.tried = next;
        this.answer.reset();
        return this.start();
      }
    }
    const where = endpointLabel(this.endpoint);
    this.ctx.log?.(`router: ${this.route.stack}/${this.route.node} ${this.req.method} ${this.req.url}: ${code} from ${where}`);
    this.answerError(...failureAnswer(this.route, code, message, where, this.attempts));
  }

  private answerError(status: number, title: string, detail: string): void {
    this.phase = Phase.Done;
    clearTimeout(this.timer);
    this.req.off('data', this.onBody);
    // Unread body bytes: node:http reads and drops them after the answer, or closes.
    if (!this.bodyDone) this.res.shouldKeepAlive = false;
    this.ctx.counters?.answered(this.endpoint ? this.endpoint.slot : this.route.slot, status, true, performance.now() - this.t0, this.head.length + this.bodySent, 0);
    this.route.access?.record(this.route, this.endpoint, this.req.method ?? 'GET', this.req.url ?? '/', this.hostOf(), status, this.elapsed(), this.head.length + this.bodySent, 0, true);
    errorPage(this.res, status, title, detail);
  }

  /** The domain the client named (HTTP/2: :authority), for the access log. */
  private hostOf(): string {
    return this.req.headers.host ?? (this.req.headers[':authority'] as string | undefined) ?? '';
  }

  private elapsed(): number {
    return this.t0 > 0 ? performance.now() - this.t0 : 0;
  }

  private release(): void {
    if (this.up) {
      this.up.inflight--;
      this.up = undefined;
      this.ctx.counters?.add(this.endpoint!.slot, Field.Active, -1);
    }
  }
}

/**
 * One request of the fast path on its way to an app and back (see
 * fast-path.ts): picks an endpoint, takes a kept-alive raw connection or
 * opens one, writes the rewritten head and the body, and copies the answer
 * to the client with the app's own framing. Failures before any answer byte
 * are retried when that is safe (the rules of proxy.ts); the connection goes
 * back to the endpoint's idle list only when it is surely in step.
 */
import net from 'node:net';
import { ChunkedScanner, parseResponseHead } from './http1.js';
import { rawErrorPage } from './pages.js';
import { IDEMPOTENT } from './proxy.js';
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_RESPONSE_HEAD = 64 * 1024;
const MAX_ATTEMPTS = 3;
/** Idle app connections are trusted this long when the app does not say (Node apps close after 5 s; the clock is coarse, 1 s). */
const DEFAULT_UPSTREAM_IDLE_MS = 3000;
const CONNECT_FAILED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT_CONNECT']);
const kOwner = Symbol('viking.exchange');
const kUpstream = Symbol('viking.upstream');
var Phase;
(function (Phase) {
    Phase[Phase["Connecting"] = 0] = "Connecting";
    Phase[Phase["Waiting"] = 1] = "Waiting";
    Phase[Phase["Body"] = 2] = "Body";
    Phase[Phase["Done"] = 3] = "Done";
})(Phase || (Phase = {}));
/** One request on its way to an app and back. */
export class FastExchange {
    conn;
    req;
    route;
    phase = Phase.Connecting;
    attempts = 0;
    tried = null;
    endpoint;
    up;
    sock = null;
    reused = false;
    since;
    /** Request body bytes still to forward, and how many were sent. */
    bodyLeft;
    bodySent = 0;
    responseStarted = false;
    respBuf = null;
    framing = { kind: 'none' };
    respLeft = 0;
    scanner = null;
    appWillClose = false;
    closeClient = false;
    keepAliveMs = DEFAULT_UPSTREAM_IDLE_MS;
    upstreamPaused = false;
    wire;
    constructor(conn, req, route) {
        this.conn = conn;
        this.req = req;
        this.route = route;
        this.since = conn.fp.now;
        this.bodyLeft = req.contentLength;
        const xff = req.forwardedFor === null ? conn.remote : `${req.forwardedFor}, ${conn.remote}`;
        this.wire = `${req.head}host: ${req.host}\r\nx-forwarded-for: ${xff}\r\n${conn.fp.xfp}x-forwarded-host: ${req.host}\r\n\r\n`;
    }
    start() {
        const fp = this.conn.fp;
        const e = fp.o.upstreams.pick(this.route, this.tried, fp.now);
        if (!e)
            return this.answerError(503, 'App not running', `${this.route.stack}/${this.route.node} has no healthy instance right now. Check it with: viking ps ${this.route.stack}`);
        this.endpoint = e;
        const up = fp.o.upstreams.get(e);
        this.up = up;
        up.inflight++;
        this.attempts++;
        this.since = fp.now;
        const idle = up.takeIdle(fp.now);
        if (idle) {
            this.reused = true;
            this.sock = idle;
            idle[kOwner] = this;
            return this.send();
        }
        this.reused = false;
        this.phase = Phase.Connecting;
        const s = net.connect({ host: up.ip, port: up.port, noDelay: true });
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
    connected() {
        if (this.phase === Phase.Connecting)
            this.send();
    }
    send() {
        this.phase = Phase.Waiting;
        this.since = this.conn.fp.now;
        this.sock.write(this.wire, 'latin1');
        this.pumpBody();
    }
    /** Forwards request body bytes the client sent, once the app connection is there. */
    pumpBody() {
        if (this.bodyLeft === 0 || this.phase === Phase.Connecting || this.phase === Phase.Done)
            return;
        const buf = this.conn.buf;
        if (buf === null)
            return;
        const take = Math.min(this.bodyLeft, buf.length);
        const chunk = take === buf.length ? buf : buf.subarray(0, take);
        this.conn.buf = take === buf.length ? null : buf.subarray(take);
        this.bodyLeft -= take;
        this.bodySent += take;
        if (!this.sock.write(chunk))
            this.conn.pause();
    }
    appDrained() {
        if (this.phase !== Phase.Done)
            this.conn.resume();
    }
    clientDrained() {
        if (this.upstreamPaused && this.sock) {
            this.upstreamPaused = false;
            this.sock.resume();
        }
    }
    appData(d) {
        if (this.phase === Phase.Body)
            return this.body(d);
        if (this.phase !== Phase.Waiting)
            return;
        this.since = this.conn.fp.now;
        let buf = this.respBuf === null ? d : Buffer.concat([this.respBuf, d]);
        for (;;) {
            const end = buf.indexOf(CRLFCRLF);
            if (end === -1) {
                if (buf.length > MAX_RESPONSE_HEAD)
                    return this.appFailed('EHEAD', 'the answer head is too large');
                this.respBuf = buf;
                return;
            }
            const head = parseResponseHead(buf.toString('latin1', 0, end), this.req.method);
            if (typeof head === 'string')
                return this.appFailed('EPROTO', `invalid answer: ${head}`);
            const rest = end + 4 < buf.length ? buf.subarray(end + 4) : null;
            if (head.status < 200) {
                // Informational answers (103 Early Hints...) are not needed by the client; the final one follows.
                if (head.status === 101)
                    return this.appFailed('EPROTO', 'switched protocols without being asked');
                if (rest === null) {
                    this.respBuf = null;
                    return;
                }
                buf = rest;
                continue;
            }
            this.respBuf = null;
            this.framing = head.framing;
            this.appWillClose = head.close;
            if (head.keepAliveSeconds !== null)
                this.keepAliveMs = Math.max(0, head.keepAliveSeconds * 1000 - 2000);
            this.closeClient = this.req.close || head.framing.kind === 'close' || this.bodyLeft > 0 || this.conn.fp.closing;
            const wireHead = `${head.head}${this.closeClient ? 'connection: close\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=65\r\n'}\r\n`;
            this.responseStarted = true;
            this.phase = Phase.Body;
            if (head.framing.kind === 'length')
                this.respLeft = head.framing.length;
            else if (head.framing.kind === 'chunked')
                this.scanner = new ChunkedScanner();
            if (head.framing.kind === 'none' || (head.framing.kind === 'length' && head.framing.length === 0)) {
                this.conn.socket.write(wireHead, 'latin1');
                if (rest !== null)
                    this.appWillClose = true; // bytes after a bodiless answer: do not trust this connection
                return this.finish();
            }
            if (rest === null) {
                this.conn.socket.write(wireHead, 'latin1');
                return;
            }
            // Head and the first body bytes in one write (writev).
            const bodyPart = this.bodyBytes(rest);
            if (bodyPart === null)
                return;
            const client = this.conn.socket;
            client.cork();
            client.write(wireHead, 'latin1');
            this.write(bodyPart.chunk);
            client.uncork();
            if (bodyPart.done)
                this.finish();
            return;
        }
    }
    /** The part of `d` that belongs to the body, and whether the body ends in it; null if malformed. */
    bodyBytes(d) {
        switch (this.framing.kind) {
            case 'length': {
                const take = Math.min(this.respLeft, d.length);
                this.respLeft -= take;
                if (take < d.length)
                    this.appWillClose = true;
                return { chunk: take === d.length ? d : d.subarray(0, take), done: this.respLeft === 0 };
            }
            case 'chunked': {
                let end;
                try {
                    end = this.scanner.feed(d);
                }
                catch (err) {
                    this.appFailed('EPROTO', `invalid chunked answer: ${err.message}`);
                    return null;
                }
                if (end === -1)
                    return { chunk: d, done: false };
                if (end < d.length)
                    this.appWillClose = true;
                return { chunk: end === d.length ? d : d.subarray(0, end), done: true };
            }
            default:
                return { chunk: d, done: false };
        }
    }
    body(d) {
        this.since = this.conn.fp.now;
        const part = this.bodyBytes(d);
        if (part === null)
            return;
        this.write(part.chunk);
        if (part.done)
            this.finish();
    }
    write(chunk) {
        if (!this.conn.socket.write(chunk) && this.sock && !this.upstreamPaused) {
            // The client reads slower than the app writes: hold the app until it drained.
            this.upstreamPaused = true;
            this.sock.pause();
        }
    }
    /** The answer is complete. */
    finish() {
        this.phase = Phase.Done;
        const sock = this.sock;
        const up = this.up;
        this.sock = null;
        this.release();
        if (sock) {
            sock[kOwner] = null;
            if (this.upstreamPaused)
                sock.resume();
            if (!this.appWillClose && this.bodyLeft === 0 && up && !sock.destroyed)
                up.putIdle(sock, this.conn.fp.now + this.keepAliveMs);
            else
                sock.destroy();
        }
        this.conn.exchangeDone(this.closeClient || this.bodyLeft > 0);
    }
    appEnded() {
        // An answer delimited by the close of the connection is complete now.
        if (this.phase === Phase.Body && this.framing.kind === 'close')
            return this.finish();
        this.appFailed(this.reused && this.phase === Phase.Waiting && this.respBuf === null ? 'ECLOSED_REUSED' : 'ECLOSED', 'the app closed the connection without answering');
    }
    appError(err) {
        const code = this.phase === Phase.Connecting ? (err.code ?? 'ECONNREFUSED') : (err.code ?? 'EIO');
        this.appFailed(code, describe(code, err.message));
    }
    appClosed() {
        if (this.phase !== Phase.Done)
            this.appEnded();
    }
    /** The app side failed: retry if nothing reached the client and that is safe, else answer 502. */
    appFailed(code, message) {
        if (this.phase === Phase.Done)
            return;
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
        if (connectFailed && this.endpoint)
            this.conn.fp.o.upstreams.markDown(this.endpoint, Date.now());
        const brokeEarly = (code === 'ECLOSED_REUSED' || code === 'ECLOSED' || code === 'ECONNRESET' || code === 'EPIPE') && this.respBuf === null;
        const safe = (connectFailed && this.bodySent === 0) || (brokeEarly && this.req.contentLength === 0 && IDEMPOTENT.has(this.req.method));
        if (safe && this.endpoint) {
            (this.tried ??= []).push(this.endpoint);
            // Every endpoint tried: only a broken keep-alive connection is worth a fresh one.
            if (this.tried.length >= this.route.endpoints.length && brokeEarly)
                this.tried = [];
            if (this.attempts < MAX_ATTEMPTS && this.tried.length < this.route.endpoints.length) {
                this.respBuf = null;
                return this.start();
            }
        }
        const e = this.endpoint;
        const where = e ? `${e.ip}:${e.hostPort} (${e.tag}/${e.instance})` : 'no endpoint';
        this.conn.fp.o.log?.(`router: ${this.route.stack}/${this.route.node} ${this.req.method} ${this.req.target}: ${code} from ${where}`);
        if (code === 'ETIMEDOUT_HEAD')
            return this.answerError(504, 'Gateway timeout', `${this.route.stack}/${this.route.node} did not answer in time (${where}).`);
        const tries = this.attempts > 1 ? ` after ${this.attempts} attempts` : '';
        this.answerError(502, 'Bad gateway', `${this.route.stack}/${this.route.node} did not answer${tries}: ${message} (${where}). Check it with: viking ps ${this.route.stack}`);
    }
    answerError(status, title, detail) {
        this.phase = Phase.Done;
        // Unread body bytes would be taken for the next request: close after a refused body.
        const close = this.req.close || this.bodyLeft > 0 || this.bodySent > 0 || this.conn.fp.closing;
        this.conn.socket.write(rawErrorPage(status, title, detail, this.req.wantsHtml, close), 'latin1');
        this.conn.exchangeDone(close);
    }
    release() {
        if (this.up) {
            this.up.inflight--;
            this.up = undefined;
        }
    }
    clientGone() {
        if (this.phase === Phase.Done)
            return;
        this.phase = Phase.Done;
        const sock = this.sock;
        this.sock = null;
        if (sock) {
            sock[kOwner] = null;
            sock.destroy();
        }
        this.release();
    }
    checkTimeouts(now) {
        const waited = now - this.since;
        const ups = this.conn.fp.o.upstreams;
        if (this.phase === Phase.Connecting && waited > ups.connectTimeoutMs)
            this.appFailed('ETIMEDOUT_CONNECT', 'connect timed out');
        else if (this.phase === Phase.Waiting && waited > ups.headersTimeoutMs)
            this.appFailed('ETIMEDOUT_HEAD', 'no answer in time');
    }
}
function describe(code, message) {
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
function onAppConnect() {
    this[kOwner]?.connected();
}
function onAppData(d) {
    const owner = this[kOwner];
    if (owner)
        owner.appData(d);
    else
        this.destroy(); // an idle connection must stay silent
}
function onAppDrain() {
    this[kOwner]?.appDrained();
}
function onAppEnd() {
    this[kOwner]?.appEnded();
}
function onAppError(err) {
    this[kOwner]?.appError(err);
}
function onAppClose() {
    const owner = this[kOwner];
    if (owner)
        owner.appClosed();
    else
        this[kUpstream].dropIdle(this);
}
//# sourceMappingURL=fast-exchange.js.map
export function requestWire(req, remote, xfp) {
  const xff = req.forwardedFor === null ? remote : `${req.forwardedFor}, ${remote}`;
  return `${req.head}host: ${req.host}\r\nx-forwarded-for: ${xff}\r\n${xfp}x-forwarded-host: ${req.host}\r\n\r\n`;
}

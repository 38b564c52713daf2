import { errorPage } from './pages.js';
/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set([
    'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization',
]);
/** Request headers the router sets itself (or that node:http already handled, like Expect). */
const REPLACED = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'expect']);
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Most tries of one request: the first endpoint and two others. */
const MAX_ATTEMPTS = 3;
function connectionTokens(value) {
    if (!value)
        return null;
    const out = new Set();
    for (const v of Array.isArray(value) ? value : [value])
        for (const t of v.split(','))
            out.add(t.trim().toLowerCase());
    return out;
}
/**
 * The request headers to send upstream, as a flat [name, value, ...] list:
 * the client's minus hop-by-hop ones and those its Connection header names,
 * plus X-Forwarded-For (appended), -Proto and -Host (replaced).
 */
export function forwardHeaders(req, proto, keepUpgrade = false) {
    const listed = connectionTokens(req.headers.connection);
    const raw = req.rawHeaders;
    const out = [];
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i];
        const lower = name.toLowerCase();
        if (REPLACED.has(lower))
            continue;
        if (HOP_BY_HOP.has(lower) || (listed !== null && listed.has(lower))) {
            if (!(keepUpgrade && (lower === 'upgrade' || lower === 'connection')))
                continue;
            if (lower === 'connection')
                continue; // re-added below as exactly `upgrade`
        }
        out.push(name, raw[i + 1]);
    }
    const host = req.headers.host ?? '';
    const remote = req.socket.remoteAddress ?? '';
    const prior = req.headers['x-forwarded-for'];
    out.push('host', host, 'x-forwarded-for', prior ? `${prior}, ${remote}` : remote, 'x-forwarded-proto', proto, 'x-forwarded-host', host);
    if (keepUpgrade)
        out.push('connection', 'upgrade');
    return out;
}
/** The response headers to send to the client, flat, without hop-by-hop ones. */
export function responseHeaders(raw) {
    const out = [];
    let listed = null;
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1');
        const lower = name.toLowerCase();
        const value = raw[i + 1].toString('latin1');
        if (HOP_BY_HOP.has(lower)) {
            if (lower === 'connection')
                listed = connectionTokens(value);
            continue;
        }
        out.push(name, value);
    }
    if (listed === null)
        return out;
    const filtered = [];
    for (let i = 0; i < out.length; i += 2)
        if (!listed.has(out[i].toLowerCase()))
            filtered.push(out[i], out[i + 1]);
    return filtered;
}
/** Errors meaning the request never reached the app: safe to send elsewhere. */
const CONNECT_FAILED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);
/** The connection broke before any response byte: an idempotent request may be replayed. */
const BROKE_EARLY = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
function errorCode(err) {
    return err.code ?? err.name;
}
/**
 * One client request on its way to a container: tries endpoints in the
 * balancer's order and streams the first answer back. It is the undici
 * dispatch handler itself, so no closure is made per request.
 */
export class Exchange {
    ctx;
    route;
    req;
    res;
    endpoint;
    upstream;
    tried = null;
    attempts = 0;
    abortUpstream = null;
    resumeUpstream = null;
    answered = false;
    finished = false;
    headers;
    bodyless;
    constructor(ctx, route, req, res) {
        this.ctx = ctx;
        this.route = route;
        this.req = req;
        this.res = res;
        this.headers = forwardHeaders(req, ctx.proto);
        const cl = req.headers['content-length'];
        this.bodyless = (cl === undefined || cl === '0') && req.headers['transfer-encoding'] === undefined;
        res.once('close', this.onClientClose);
    }
    start() {
        const now = Date.now();
        const e = this.ctx.upstreams.pick(this.route, this.tried, now);
        if (!e)
            return this.fail(503, 'App not running', `${this.route.stack}/${this.route.node} has no healthy instance right now. Check it with: viking ps ${this.route.stack}`);
        this.endpoint = e;
        const up = this.ctx.upstreams.get(e);
        this.upstream = up;
        up.inflight++;
        this.attempts++;
        up.pool.dispatch({
            path: this.req.url ?? '/',
            method: this.req.method ?? 'GET',
            headers: this.headers,
            body: this.bodyless ? null : this.req,
        }, this);
    }
    onClientClose = () => {
        // The client went away before the answer was complete: stop the upstream side too.
        if (!this.finished)
            this.abortUpstream?.(new Error('client closed the connection'));
    };
    onConnect(abort) {
        this.abortUpstream = abort;
        if (this.res.destroyed)
            abort(new Error('client closed the connection'));
    }
    onHeaders(statusCode, rawHeaders, resume, statusText) {
        if (statusCode < 200)
            return true; // 1xx informational: the final answer follows
        this.answered = true;
        this.resumeUpstream = resume;
        const res = this.res;
        if (res.destroyed)
            return true;
        res.writeHead(statusCode, statusText, responseHeaders(rawHeaders));
        return true;
    }
    onData(chunk) {
        if (this.res.write(chunk))
            return true;
        // The client reads slower than the app writes: pause the upstream until it drains.
        this.res.once('drain', this.onDrain);
        return false;
    }
    onDrain = () => this.resumeUpstream?.();
    onComplete() {
        this.release();
        this.finished = true;
        this.res.end();
    }
    onError(err) {
        this.release();
        if (this.finished)
            return;
        const code = errorCode(err);
        if (this.res.destroyed) {
            this.finished = true;
            return;
        }
        if (!this.answered && this.mayRetry(code)) {
            if (CONNECT_FAILED.has(code) && this.endpoint)
                this.ctx.upstreams.markDown(this.endpoint, Date.now());
            (this.tried ??= []).push(this.endpoint);
            // Every endpoint tried: only a broken keep-alive connection is worth a fresh one.
            if (this.tried.length >= this.route.endpoints.length && BROKE_EARLY.has(code))
                this.tried = [];
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
    mayRetry(code) {
        if (!this.bodyless)
            return false;
        if (CONNECT_FAILED.has(code))
            return true;
        return BROKE_EARLY.has(code) && IDEMPOTENT.has(this.req.method ?? 'GET');
    }
    release() {
        if (this.upstream) {
            this.upstream.inflight--;
            this.upstream = undefined;
        }
    }
    fail(status, title, detail) {
        this.finished = true;
        errorPage(this.res, status, title, detail);
    }
}
function describeError(code, err) {
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
//# sourceMappingURL=proxy.js.map
import { MAX_HEAD_BYTES, parseRequestHead } from './http1.js';
import { FastExchange } from './fast-exchange.js';
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Client bytes buffered before reading pauses (pipelined requests, bodies waiting for a connection). */
const MAX_PENDING = 256 * 1024;
const CLIENT_IDLE_MS = 65_000;
const CLIENT_HEAD_MS = 60_000;
export class FastPath {
    o;
    connections = new Set();
    /** A clock that costs nothing to read: updated by the sweep. */
    now = Date.now();
    closing = false;
    timer;
    xfp;
    constructor(o) {
        this.o = o;
        this.xfp = `x-forwarded-proto: ${o.proto ?? 'http'}\r\n`;
        this.timer = setInterval(() => this.sweep(), 1000);
        this.timer.unref();
    }
    accept = (socket) => {
        if (this.closing)
            return void socket.destroy();
        this.connections.add(new ClientConnection(this, socket));
    };
    sweep() {
        this.now = Date.now();
        for (const c of this.connections)
            c.checkTimeouts(this.now);
    }
    /** Stops taking requests: idle connections close now, busy ones after their answer. */
    shutdown() {
        this.closing = true;
        clearInterval(this.timer);
        for (const c of this.connections)
            c.shutdown();
    }
    /** Closes every connection at once. */
    destroyAll() {
        for (const c of this.connections)
            c.socket.destroy();
    }
}
class ClientConnection {
    fp;
    socket;
    buf = null;
    exchange = null;
    lastActive;
    closing = false;
    gone = false;
    paused = false;
    remote;
    constructor(fp, socket) {
        this.fp = fp;
        this.socket = socket;
        this.lastActive = fp.now;
        this.remote = socket.remoteAddress ?? '';
        socket.on('data', this.onData);
        socket.on('end', this.onEnd);
        socket.on('drain', this.onDrain);
        socket.on('error', this.onError);
        socket.on('close', this.onClose);
    }
    /** The client will send nothing more (half-close): answer what is in flight, then close. */
    onEnd = () => {
        this.closing = true;
        if (!this.exchange)
            this.socket.end();
    };
    onData = (d) => {
        this.lastActive = this.fp.now;
        this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
        if (this.exchange) {
            this.exchange.pumpBody();
            if (this.buf !== null && this.buf.length > MAX_PENDING)
                this.pause();
        }
        else
            this.next();
    };
    onDrain = () => this.exchange?.clientDrained();
    onError = () => {
        this.socket.destroy();
    };
    onClose = () => {
        this.gone = true;
        this.fp.connections.delete(this);
        this.exchange?.clientGone();
    };
    pause() {
        if (!this.paused) {
            this.paused = true;
            this.socket.pause();
        }
    }
    resume() {
        if (this.paused) {
            this.paused = false;
            this.socket.resume();
        }
    }
    /** Starts the next buffered request, or hands the connection over. */
    next() {
        const buf = this.buf;
        if (buf === null || this.exchange || this.closing || this.gone)
            return;
        const end = buf.indexOf(CRLFCRLF);
        if (end === -1) {
            if (buf.length > MAX_HEAD_BYTES)
                this.handoff();
            return;
        }
        if (end > MAX_HEAD_BYTES)
            return this.handoff();
        const head = parseRequestHead(buf.toString('latin1', 0, end));
        if (!head)
            return this.handoff();
        const route = this.fp.o.routes().lookup(head.host);
        if (!route || route.kind !== 'container' || route.endpoints.length === 0)
            return this.handoff();
        this.buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
        this.exchange = new FastExchange(this, head, route);
        this.exchange.start();
    }
    /** node:http serves this connection from here on, starting with the bytes not used yet. */
    handoff() {
        this.fp.connections.delete(this);
        const s = this.socket;
        s.off('data', this.onData);
        s.off('end', this.onEnd);
        s.off('drain', this.onDrain);
        s.off('error', this.onError);
        s.off('close', this.onClose);
        s.pause();
        if (this.buf)
            s.unshift(this.buf);
        this.buf = null;
        this.fp.o.handoff(s);
        s.resume();
    }
    /** The exchange is over: close if asked, else go on with what the client sent meanwhile. */
    exchangeDone(close) {
        this.exchange = null;
        this.lastActive = this.fp.now;
        if (this.gone)
            return;
        if (close || this.closing) {
            this.closing = true;
            this.socket.end();
            return;
        }
        this.resume();
        this.next();
    }
    checkTimeouts(now) {
        if (this.exchange)
            return this.exchange.checkTimeouts(now);
        const limit = this.buf === null ? CLIENT_IDLE_MS : CLIENT_HEAD_MS;
        if (now - this.lastActive > limit)
            this.socket.destroy();
    }
    shutdown() {
        this.closing = true;
        if (!this.exchange)
            this.socket.end();
    }
}
//# sourceMappingURL=fast-path.js.map
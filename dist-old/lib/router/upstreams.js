import { Pool } from 'undici';
export const BALANCE_MODES = ['round-robin', 'least-conn'];
/** How long an endpoint that refused a connection is skipped. */
export const DOWN_MS = 2000;
/** Idle connections kept per endpoint and process. */
const MAX_IDLE = 256;
export class Upstream {
    origin;
    ip;
    port;
    o;
    /** Requests and websockets in flight to it from this process. */
    inflight = 0;
    /** Epoch ms before which it is skipped after a failed connect. */
    downUntil = 0;
    /** Idle raw connections, most recently used last. */
    idle = [];
    undici;
    closed = false;
    constructor(origin, ip, port, o) {
        this.origin = origin;
        this.ip = ip;
        this.port = port;
        this.o = o;
    }
    /** The undici pool, for requests served by the node:http path. */
    get pool() {
        this.undici ??= new Pool(this.origin, {
            connections: this.o.connections ?? 256,
            pipelining: 1,
            keepAliveTimeout: 30_000,
            headersTimeout: this.o.headersTimeoutMs ?? 60_000,
            bodyTimeout: this.o.bodyTimeoutMs ?? 300_000,
            connect: { timeout: this.o.connectTimeoutMs ?? 2000 },
        });
        return this.undici;
    }
    /** A reusable idle connection, or undefined. */
    takeIdle(now) {
        for (;;) {
            const entry = this.idle.pop();
            if (!entry)
                return undefined;
            if (entry.expires > now && !entry.socket.destroyed)
                return entry.socket;
            entry.socket.destroy();
        }
    }
    /** Keeps a connection for the next request, until `expires`. */
    putIdle(socket, expires) {
        if (this.closed || this.idle.length >= MAX_IDLE) {
            socket.destroy();
            return;
        }
        this.idle.push({ socket, expires });
    }
    /** An idle connection was closed by the app. */
    dropIdle(socket) {
        const i = this.idle.findIndex((e) => e.socket === socket);
        if (i !== -1)
            this.idle.splice(i, 1);
    }
    /** No new requests; idle connections go now, busy ones when their request is done. */
    close() {
        this.closed = true;
        for (const e of this.idle.splice(0))
            e.socket.destroy();
        return this.undici ? this.undici.close().catch(() => { }) : Promise.resolve();
    }
    destroy() {
        this.closed = true;
        for (const e of this.idle.splice(0))
            e.socket.destroy();
        return this.undici ? this.undici.destroy().catch(() => { }) : Promise.resolve();
    }
}
export const originOf = (e) => `http://${e.ip}:${e.hostPort}`;
export class Upstreams {
    mode;
    o;
    byOrigin = new Map();
    /** Same, by endpoint object: a route's endpoints are looked up on every request without building strings. */
    byEndpoint = new WeakMap();
    constructor(mode = 'least-conn', o = {}) {
        this.mode = mode;
        this.o = o;
    }
    /** Connect timeout for new connections, in ms. */
    get connectTimeoutMs() {
        return this.o.connectTimeoutMs ?? 2000;
    }
    get headersTimeoutMs() {
        return this.o.headersTimeoutMs ?? 60_000;
    }
    get(e) {
        const known = this.byEndpoint.get(e);
        if (known && !known.closed)
            return known;
        const origin = originOf(e);
        let up = this.byOrigin.get(origin);
        if (!up) {
            up = new Upstream(origin, e.ip, e.hostPort, this.o);
            this.byOrigin.set(origin, up);
        }
        this.byEndpoint.set(e, up);
        return up;
    }
    /** The state of an endpoint if it has been used, without creating it. */
    peek(e) {
        const known = this.byEndpoint.get(e);
        return known && !known.closed ? known : this.byOrigin.get(originOf(e));
    }
    /**
     * The endpoint for the next request of a route, skipping those already
     * tried for it and, while others are up, those recently refusing.
     */
    pick(route, tried, now) {
        const list = route.endpoints;
        const n = list.length;
        if (n === 0)
            return undefined;
        if (n === 1 && !tried)
            return list[0];
        const start = route.cursor++ % n;
        let best;
        let bestLoad = Infinity;
        let fallback;
        for (let i = 0; i < n; i++) {
            const e = list[(start + i) % n];
            if (tried && tried.includes(e))
                continue;
            const up = this.peek(e);
            if (up && up.downUntil > now) {
                fallback ??= e;
                continue;
            }
            if (this.mode === 'round-robin')
                return e;
            const load = up ? up.inflight : 0;
            if (load < bestLoad) {
                best = e;
                bestLoad = load;
                if (load === 0)
                    break;
            }
        }
        return best ?? fallback;
    }
    /** A connect failed: skip the endpoint for a while. */
    markDown(e, now) {
        this.get(e).downUntil = now + DOWN_MS;
    }
    /** Closes the pools of endpoints no longer routed to; their in-flight requests finish first. */
    retain(live) {
        const keep = new Set();
        for (const e of live)
            keep.add(originOf(e));
        for (const [origin, up] of this.byOrigin) {
            if (keep.has(origin))
                continue;
            this.byOrigin.delete(origin);
            void up.close();
        }
    }
    /** Endpoint address -> requests in flight, for status and tests. */
    load() {
        const out = {};
        for (const [origin, up] of this.byOrigin)
            out[origin] = up.inflight;
        return out;
    }
    async closeAll() {
        const all = [...this.byOrigin.values()];
        this.byOrigin.clear();
        await Promise.all(all.map((u) => u.destroy()));
    }
}
//# sourceMappingURL=upstreams.js.map
/**
 * The HTTP side of the router: looks up each request's Host in the current
 * route table and proxies it to a container, serves a website's files, or
 * answers 404/502/503 with a page that says what is wrong.
 *
 * Connections arrive on the raw fast path (fast-path.ts), which proxies
 * plain HTTP/1.1 requests itself and hands every other connection to a
 * node:http server that never listens on its own: websockets, websites,
 * chunked uploads, HTTP/1.0 and error pages are served there. It knows
 * nothing about etcd: it is handed RouteSnapshots and swaps its table in one
 * assignment, so it runs the same in the host process and in every router
 * worker process.
 */
import http from 'node:http';
import net from 'node:net';
import { RouteTable, normaliseHost } from './route-table.js';
import { Upstreams } from './upstreams.js';
import { Exchange } from './proxy.js';
import { proxyUpgrade, rawErrorResponse } from './upgrade.js';
import { StaticFiles } from './static-site.js';
import { FastPath } from './fast-path.js';
import { errorPage } from './pages.js';
const unknownDomain = (host) => [
    404,
    'No app here',
    `viking has no app for the domain ${host ? normaliseHost(host) : '(none: the request has no Host header)'}. Add it to the domains: of a node in your Vikingfile and push.`,
];
export class RouterServer {
    o;
    table = new RouteTable();
    upstreams;
    files = new StaticFiles();
    ctx;
    http;
    fast;
    /** Upgraded connections (websockets), which node:http no longer tracks. */
    tunnels = new Set();
    /** The listening socket: the fast path's, or node:http's itself. */
    listener;
    constructor(o = {}) {
        this.o = o;
        this.upstreams = new Upstreams(o.balance ?? 'least-conn', o.upstream ?? {});
        this.ctx = { upstreams: this.upstreams, proto: o.proto ?? 'http', ...(o.log ? { log: o.log } : {}) };
        this.http = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, this.onRequest);
        this.http.on('upgrade', this.onUpgrade);
        if (o.fastPath === false) {
            this.listener = this.http;
        }
        else {
            const fast = new FastPath({
                upstreams: this.upstreams,
                routes: () => this.table,
                handoff: (socket) => this.http.emit('connection', socket),
                proto: o.proto ?? 'http',
                ...(o.log ? { log: o.log } : {}),
            });
            this.fast = fast;
            // Half-open like node:http's own sockets, so handed-over connections behave the same.
            this.listener = net.createServer({ noDelay: true, allowHalfOpen: true }, fast.accept);
        }
    }
    /** Swaps in the table of a new snapshot; pools of endpoints that left are closed gracefully. */
    apply(snap) {
        const table = RouteTable.build(snap);
        this.table = table;
        this.upstreams.retain(table.endpoints);
    }
    get routes() {
        return this.table;
    }
    get revision() {
        return this.table.revision;
    }
    async listen(port, host = '0.0.0.0') {
        const l = this.listener;
        await new Promise((resolve, reject) => {
            l.once('error', reject);
            l.listen(port, host, () => {
                l.off('error', reject);
                resolve();
            });
        });
        return l.address().port;
    }
    /** Stops accepting, lets requests in flight finish for up to `graceMs`, then closes the rest. */
    async close(graceMs = 2000) {
        const stopped = new Promise((r) => this.listener.close(() => r()));
        this.fast?.shutdown();
        this.http.closeIdleConnections();
        const timer = setTimeout(() => {
            this.fast?.destroyAll();
            this.http.closeAllConnections();
            for (const t of this.tunnels)
                t.destroy();
        }, graceMs);
        await stopped;
        clearTimeout(timer);
        await this.upstreams.closeAll();
    }
    onRequest = (req, res) => {
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
        this.files.serve(root, req, res).catch((err) => {
            this.o.log?.(`router: ${route.stack}/${route.node} ${req.url}: ${err.message}`);
            errorPage(res, 500, 'Internal error', `the file could not be read: ${err.message}`);
        });
    };
    onUpgrade = (req, socket, head) => {
        const route = this.table.lookup(req.headers.host);
        if (!route) {
            const [status, title, detail] = unknownDomain(req.headers.host);
            return rawErrorResponse(socket, status, title, detail);
        }
        if (route.kind === 'website')
            return rawErrorResponse(socket, 400, 'Bad request', `${route.stack}/${route.node} is a static website; it does not accept upgrades`);
        if (route.endpoints.length === 0) {
            return rawErrorResponse(socket, 503, 'App not running', `${route.stack}/${route.node} has no healthy instance right now`);
        }
        this.tunnels.add(socket);
        socket.once('close', () => this.tunnels.delete(socket));
        proxyUpgrade(this.ctx, route, req, socket, head);
    };
}
//# sourceMappingURL=server.js.map
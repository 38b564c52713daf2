/**
 * Websockets (and any other HTTP/1.1 Upgrade) through the router.
 *
 * The request head is rewritten like any proxied request (hop-by-hop headers
 * out, X-Forwarded-* in, `Connection: upgrade` kept) and written to a fresh
 * TCP connection to one endpoint; from then on the two sockets are piped
 * into each other, byte for byte, in both directions. The app's own answer
 * (101, or a refusal) reaches the client unchanged. A route table swap does
 * not touch such a connection: it lives until one side closes it.
 */
import net from 'node:net';
import { forwardHeaders } from './proxy.js';
const MAX_ATTEMPTS = 3;
/** Answers an upgrade request on the raw socket (there is no ServerResponse for it). */
export function rawErrorResponse(socket, status, title, detail) {
    if (socket.destroyed)
        return;
    const body = `${status} ${title}: ${detail}\n`;
    socket.end(`HTTP/1.1 ${status} ${title}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `cache-control: no-store\r\nx-viking-error: ${status}\r\nconnection: close\r\n\r\n${body}`);
}
/** The request head as it goes upstream. */
export function upgradeHead(req, proto) {
    const headers = forwardHeaders(req, proto, true);
    let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2)
        head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    return `${head}\r\n`;
}
export function proxyUpgrade(ctx, route, req, client, head) {
    const tried = [];
    let closed = false;
    client.on('error', () => client.destroy());
    client.once('close', () => (closed = true));
    const attempt = () => {
        if (closed)
            return;
        const e = ctx.upstreams.pick(route, tried, Date.now());
        if (!e) {
            const why = tried.length ? `no instance of ${route.stack}/${route.node} accepted the connection` : `${route.stack}/${route.node} has no healthy instance right now`;
            return rawErrorResponse(client, tried.length ? 502 : 503, tried.length ? 'Bad gateway' : 'App not running', why);
        }
        const up = ctx.upstreams.get(e);
        let connected = false;
        const upstream = net.connect({ host: e.ip, port: e.hostPort });
        upstream.setNoDelay(true);
        up.inflight++;
        let released = false;
        const release = () => {
            if (released)
                return;
            released = true;
            up.inflight--;
        };
        upstream.once('connect', () => {
            connected = true;
            if (closed)
                return upstream.destroy();
            upstream.setKeepAlive(true, 30_000);
            upstream.write(upgradeHead(req, ctx.proto));
            if (head.length > 0)
                upstream.write(head);
            upstream.pipe(client);
            client.pipe(upstream);
            // No half-open tunnels: once either side hangs up, the whole tunnel closes
            // (node:http sockets allow half-open, so this is not automatic).
            client.once('end', () => client.end());
            upstream.once('end', () => upstream.end());
            client.once('close', () => upstream.destroy());
        });
        upstream.on('error', (err) => {
            release();
            if (connected) {
                client.destroy();
                return;
            }
            ctx.upstreams.markDown(e, Date.now());
            tried.push(e);
            ctx.log?.(`router: ${route.stack}/${route.node} upgrade: ${err.code ?? err.message} from ${e.ip}:${e.hostPort}`);
            if (tried.length < MAX_ATTEMPTS && tried.length < route.endpoints.length)
                return attempt();
            rawErrorResponse(client, 502, 'Bad gateway', `${route.stack}/${route.node} did not accept the connection: ${err.code ?? err.message}`);
        });
        upstream.once('close', () => {
            release();
            // The app closed its side: finish what is buffered for the client, then close.
            if (connected)
                client.end();
        });
    };
    attempt();
}
//# sourceMappingURL=upgrade.js.map
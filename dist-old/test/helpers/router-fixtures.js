/**
 * Real HTTP backends and etcd route records for router tests: small
 * node:http servers on loopback that report what they received, and the
 * /domains, /stack and /ports keys a push would have written, built with the
 * key helpers of lib/store/keys.ts.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { domainKey, portsKey, stackKey } from '../../lib/store/keys.js';
/**
 * A backend that answers every request with an Echo (JSON), waits on
 * `/slow?ms=N`, and accepts websocket upgrades, echoing every byte back.
 */
export async function startBackend(name) {
    const b = { name, port: 0, hits: 0 };
    const upgraded = new Set();
    const server = http.createServer((req, res) => {
        let bytes = 0;
        req.on('data', (c) => (bytes += c.length));
        req.on('end', () => {
            b.hits++;
            const url = new URL(req.url ?? '/', 'http://x');
            const send = () => {
                const echo = { name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: bytes };
                const body = JSON.stringify(echo);
                res.writeHead(200, {
                    'content-type': 'application/json',
                    'content-length': Buffer.byteLength(body),
                    // Hop-by-hop on the way back: the router must drop these.
                    'keep-alive': 'timeout=5',
                    'x-backend': name,
                });
                res.end(body);
            };
            const ms = Number(url.searchParams.get('ms') ?? 0);
            if (url.pathname === '/slow' && ms > 0)
                setTimeout(send, ms);
            else
                send();
        });
    });
    server.on('upgrade', (req, socket) => {
        const key = String(req.headers['sec-websocket-key'] ?? '');
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Backend: ${name}\r\n\r\n`);
        upgraded.add(socket);
        socket.on('data', (d) => socket.write(d));
        socket.on('end', () => socket.end());
        socket.on('error', () => socket.destroy());
        socket.on('close', () => upgraded.delete(socket));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', () => r()));
    b.port = server.address().port;
    b.server = server;
    b.close = () => new Promise((r) => {
        server.closeAllConnections();
        for (const s of upgraded)
            s.destroy();
        server.close(() => r());
    });
    return b;
}
export function endpointFor(stack, node, tag, instance, port) {
    return { stack, tag, node, instance, host: 'test', ip: '127.0.0.1', port: 80, hostPort: port, proto: 'tcp', container: `c-${stack}-${tag}-${instance}`, primary: true };
}
/** Writes what a push and a slave would have: the stack's current release, its domains, its endpoints. Returns the last revision. */
export async function putRoute(client, r) {
    const node = r.node ?? 'web';
    const stack = { name: r.stack, current: r.current ?? null, lastRelease: 1, releases: [], domains: { [node]: r.domains ?? [] }, websites: {} };
    let rev = (await client.put(stackKey(r.stack)).value(JSON.stringify(stack)).exec()).header.revision;
    for (const d of r.domains ?? []) {
        const rec = { stack: r.stack, node, kind: r.kind ?? 'container' };
        rev = (await client.put(domainKey(d)).value(JSON.stringify(rec)).exec()).header.revision;
    }
    for (const e of r.endpoints ?? [])
        rev = (await client.put(portsKey(e)).value(JSON.stringify(e)).exec()).header.revision;
    return rev;
}
/** One HTTP request to the router on loopback, with the given Host header. */
export function call(port, host, o = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: o.path ?? '/', method: o.method ?? 'GET', headers: { host, ...(o.headers ?? {}) }, agent: o.agent ?? false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end(o.body);
    });
}
/** A raw HTTP request head sent over a fresh socket, resolving with the whole answer (for targets node:http would normalise). */
export function rawCall(port, head) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => s.write(head));
        let out = '';
        s.setEncoding('latin1');
        s.on('data', (d) => (out += d));
        s.on('end', () => resolve(out));
        s.on('error', reject);
        setTimeout(() => s.destroy(), 5000).unref();
    });
}
/** Opens a websocket-style upgrade through the router; resolves with the socket after the 101. */
export function openUpgrade(port, host, path = '/ws') {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
            socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        });
        let buf = '';
        const onData = (d) => {
            buf += d.toString('latin1');
            const end = buf.indexOf('\r\n\r\n');
            if (end === -1)
                return;
            socket.off('data', onData);
            const head = buf.slice(0, end);
            if (!head.startsWith('HTTP/1.1 101')) {
                socket.destroy();
                return reject(new Error(`upgrade refused: ${buf}`));
            }
            resolve({ socket, head });
        };
        socket.on('data', onData);
        socket.on('error', reject);
    });
}
/** Sends bytes on an upgraded socket and resolves with the same number of bytes echoed back. */
export function echo(socket, text, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
        let got = '';
        const timer = setTimeout(() => {
            socket.off('data', onData);
            reject(new Error(`no echo of ${JSON.stringify(text)} in ${timeoutMs} ms (got ${JSON.stringify(got)})`));
        }, timeoutMs);
        const onData = (d) => {
            got += d.toString('utf8');
            if (got.length >= text.length) {
                clearTimeout(timer);
                socket.off('data', onData);
                resolve(got);
            }
        };
        socket.on('data', onData);
        socket.write(text);
    });
}
//# sourceMappingURL=router-fixtures.js.map
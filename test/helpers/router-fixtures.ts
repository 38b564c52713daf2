/**
 * Real HTTP backends and etcd route records for router tests: small
 * node:http servers on loopback that report what they received, and the
 * /domains, /stack and /ports keys a push would have written, built with the
 * key helpers of lib/store/keys.ts.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { domainKey, portsKey, stackKey } from '../../lib/store/keys.js';
import type { DomainRecord, PortEndpoint, StackRecord } from '../../lib/store/records.js';

export interface Backend {
  name: string;
  port: number;
  /** Requests it answered. */
  hits: number;
  server: http.Server;
  close(): Promise<void>;
}

/** What a backend answers: who it is and what reached it. */
export interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
}

/**
 * A backend that answers every request with an Echo (JSON), waits on
 * `/slow?ms=N`, and accepts websocket upgrades, echoing every byte back.
 */
export async function startBackend(name: string): Promise<Backend> {
  const b = { name, port: 0, hits: 0 } as Backend;
  const upgraded = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      b.hits++;
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (): void => {
        const echo: Echo = { name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: bytes };
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
      if (url.pathname === '/slow' && ms > 0) setTimeout(send, ms);
      else send();
    });
  });
  server.on('upgrade', (req, socket: net.Socket) => {
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Backend: ${name}\r\n\r\n`);
    upgraded.add(socket);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => upgraded.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as AddressInfo).port;
  b.server = server;
  b.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      server.close(() => r());
    });
  return b;
}

export function endpointFor(stack: string, node: string, tag: string, instance: number, port: number): PortEndpoint {
  return { stack, tag, node, instance, host: 'test', ip: '127.0.0.1', port: 80, hostPort: port, proto: 'tcp', container: `c-${stack}-${tag}-${instance}`, primary: true };
}

/** Writes what a push and a slave would have: the stack's current release, its domains, its endpoints. Returns the last revision. */
export async function putRoute(
  client: Etcd3,
  r: { stack: string; node?: string; current?: string | null; domains?: string[]; kind?: DomainRecord['kind']; endpoints?: PortEndpoint[]; accessLog?: string[] },
): Promise<string> {
  const node = r.node ?? 'web';
  const stack: StackRecord = { name: r.stack, current: r.current ?? null, lastRelease: 1, releases: [], domains: { [node]: r.domains ?? [] }, websites: {}, ...(r.accessLog ? { accessLog: r.accessLog } : {}) };
  let rev = (await client.put(stackKey(r.stack)).value(JSON.stringify(stack)).exec()).header.revision;
  for (const d of r.domains ?? []) {
    const rec: DomainRecord = { stack: r.stack, node, kind: r.kind ?? 'container' };
    rev = (await client.put(domainKey(d)).value(JSON.stringify(rec)).exec()).header.revision;
  }
  for (const e of r.endpoints ?? []) rev = (await client.put(portsKey(e)).value(JSON.stringify(e)).exec()).header.revision;
  return rev;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to the router on loopback, with the given Host header. */
export function call(port: number, host: string, o: { path?: string; method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: o.path ?? '/', method: o.method ?? 'GET', headers: { host, ...(o.headers ?? {}) }, agent: o.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A raw HTTP request head sent over a fresh socket, resolving with the whole answer (for targets node:http would normalise). */
export function rawCall(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(head));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

/** Opens a websocket-style upgrade through the router; resolves with the socket after the 101. */
export function openUpgrade(port: number, host: string, path = '/ws'): Promise<{ socket: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
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
export function echo(socket: net.Socket, text: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`no echo of ${JSON.stringify(text)} in ${timeoutMs} ms (got ${JSON.stringify(got)})`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
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

/**
 * The router's HTTPS side in one worker: a TLS listener beside the plain
 * one, on `--https-port`. The certificate comes from the SNI name
 * (tls-certs.ts); ALPN picks the protocol. An HTTP/1.1 connection, once
 * decrypted, is handed to the same accept path as a plain one (fast path,
 * node:http for the rest, websockets included), so both schemes proxy
 * alike; an `h2` connection becomes an HTTP/2 session whose requests go to
 * the node:http handlers through node's compatibility API.
 *
 * A name without a certificate fails the handshake at once with a TLS
 * alert (no fallback certificate a browser would warn about, no hang), as
 * does a client that sends no name. Session tickets use keys shared by all
 * workers of the router, so a client resumes whichever worker it lands on.
 * `resumption: false` (the bench's full-handshake rows only) turns tickets
 * off, so every handshake is a full one, as with nginx's
 * `ssl_session_tickets off; ssl_session_cache off;`.
 */
import tls from 'node:tls';
import { constants } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TlsCertificates } from './tls-certs.js';

export interface TlsListenerOptions {
  certs: TlsCertificates;
  /** Takes a decrypted HTTP/1.1 connection (the plain listener's accept path). */
  accept: (socket: tls.TLSSocket) => void;
  /** Serves an HTTP/2 request (node's compatibility API). */
  onRequest: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  /** Longest a handshake may take (the head timeout of plain HTTP). */
  handshakeTimeoutMs: number;
  /** Idle HTTP/2 session timeout. */
  idleMs: number;
  /** Connections this worker keeps open on the TLS port. */
  maxConnections: number;
  /** 48 bytes shared by the workers (tls.Server ticketKeys). */
  ticketKeys?: Buffer;
  /**
   * false: no session tickets, so no session is ever resumed (there is no
   * server-side session cache either: node keeps none unless asked). Default
   * true; false only for the bench, to measure full handshakes alike.
   */
  resumption?: boolean;
  log?: (msg: string) => void;
}

export class TlsListener {
  readonly server: tls.Server;
  readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly o: TlsListenerOptions) {
    this.h2 = http2.createServer({ maxSessionMemory: 32 });
    this.h2.setTimeout(o.idleMs);
    this.h2.on('request', o.onRequest);
    this.h2.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
      s.on('error', () => s.destroy());
    });
    this.server = tls.createServer(
      {
        ALPNProtocols: ['h2', 'http/1.1'],
        SNICallback: (name, cb) => {
          const context = o.certs.contextFor(name);
          if (context) cb(null, context);
          else cb(new Error(`no certificate for ${JSON.stringify(name.slice(0, 253))}`));
        },
        handshakeTimeout: o.handshakeTimeoutMs,
        allowHalfOpen: true,
        ...(o.resumption === false ? { secureOptions: constants.SSL_OP_NO_TICKET } : o.ticketKeys ? { ticketKeys: o.ticketKeys } : {}),
      },
      (socket) => {
        socket.setNoDelay(true);
        if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
        else o.accept(socket);
      },
    );
    this.server.maxConnections = o.maxConnections;
    // A failed handshake (no certificate for the name, no name, not TLS at all, too slow): drop it quietly.
    this.server.on('tlsClientError', (_err, socket) => socket.destroy());
  }

  async listen(port: number, host: string): Promise<number> {
    const s = this.server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    return (s.address() as AddressInfo).port;
  }

  /** Stops accepting; HTTP/2 sessions finish their streams, then are destroyed after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sessions) s.close();
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    await stopped;
    clearTimeout(timer);
  }
}

/**
 * Websockets (and any other HTTP/1.1 Upgrade) through the router.
 *
 * The request head is rewritten like any proxied request (hop-by-hop headers
 * out, X-Forwarded-* in, `Connection: upgrade` kept) and written to a fresh
 * TCP connection to one endpoint. The client's further bytes wait until the
 * app answers: only a 101 makes a tunnel (the two sockets piped into each
 * other, byte for byte). Any other answer is relayed as a plain response and
 * both connections close, so bytes the client sent after a refused upgrade
 * never reach the app as a request the router did not check. A route table
 * swap does not touch a tunnel: it lives until one side closes it.
 */
import { Field } from './traffic-counters.js';
import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PortEndpoint } from '../store/records.js';
import type { ContainerRoute } from './route-table.js';
import { forwardHeaders, type ForwardContext } from './proxy.js';
import { MAX_ATTEMPTS, type TrustedProxies } from './forwarding.js';
import { ChunkedScanner, headTextEnd, parseResponseHead, responseHeadEnd, type ResponseHead } from './http1.js';

const MAX_ANSWER_HEAD = 64 * 1024;
/** After a refused upgrade the client connection closes within this long. */
const REFUSED_LINGER_MS = 2000;

/** Answers an upgrade request on the raw socket (there is no ServerResponse for it). */
export function rawErrorResponse(socket: Duplex, status: number, title: string, detail: string): void {
  if (socket.destroyed) return;
  const body = `${status} ${title}: ${detail}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `cache-control: no-store\r\nx-viking-error: ${status}\r\nconnection: close\r\n\r\n${body}`,
  );
  // Nothing more is read from this client: drop what it still sends, and close soon whatever it does.
  socket.resume();
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

/** The request head as it goes upstream. */
export function upgradeHead(req: IncomingMessage, proto: string, trust?: TrustedProxies): string {
  const headers = forwardHeaders(req, proto, true, trust);
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

export function proxyUpgrade(ctx: ForwardContext, route: ContainerRoute, req: IncomingMessage, client: Duplex, head: Buffer): void {
  const tried: PortEndpoint[] = [];
  const t0 = ctx.counters ? performance.now() : 0;
  let closed = false;
  client.on('error', () => client.destroy());
  client.once('close', () => (closed = true));
  // Nothing the client sends reaches the app before the app said 101: after a refusal those bytes
  // would be read as a request that never went through the router's checks.
  client.pause();

  const attempt = (): void => {
    if (closed) return;
    const e = ctx.upstreams.pick(route, tried, Date.now());
    if (!e) {
      const why = tried.length ? `no instance of ${route.stack}/${route.node} accepted the connection` : `${route.stack}/${route.node} has no healthy instance right now`;
      return rawErrorResponse(client, tried.length ? 502 : 503, tried.length ? 'Bad gateway' : 'App not running', why);
    }
    const up = ctx.upstreams.get(e);
    let connected = false;
    let answered = false;
    const upstream = net.connect({ host: e.ip, port: e.hostPort });
    upstream.setNoDelay(true);
    up.inflight++;
    // A websocket counts as an active connection of its replica for as long as the tunnel is open.
    const counters = ctx.counters;
    counters?.add(e.slot, Field.Active, 1);
    if (tried.length > 0) counters?.add(e.slot, Field.Retries, 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      up.inflight--;
      counters?.add(e.slot, Field.Active, -1);
    };
    let answer: Buffer | null = null;
    const onAnswer = (d: Buffer): void => {
      answer = answer === null ? d : Buffer.concat([answer, d]);
      for (;;) {
        const bodyStart = responseHeadEnd(answer);
        if (bodyStart === -1) {
          if (answer.length > MAX_ANSWER_HEAD) fail('the answer head is too large');
          return;
        }
        const text = answer.toString('latin1', 0, headTextEnd(answer, bodyStart));
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
        if (status === '101') {
          answered = true;
          upstream.off('data', onAnswer);
          return tunnel(answer);
        }
        const parsed = parseResponseHead(text, req.method ?? 'GET');
        if (typeof parsed === 'string') return fail(`invalid answer: ${parsed}`);
        const rest = answer.subarray(bodyStart);
        if (parsed.status < 200) {
          // 100 Continue, 103 Early Hints: the final answer follows.
          answer = rest.length > 0 ? rest : null;
          if (answer === null) return;
          continue;
        }
        answered = true;
        upstream.off('data', onAnswer);
        return refused(parsed, rest);
      }
    };
    const fail = (why: string): void => {
      upstream.off('data', onAnswer);
      upstream.destroy();
      if (!answered) {
        answered = true;
        rawErrorResponse(client, 502, 'Bad gateway', `${route.stack}/${route.node} did not answer the upgrade: ${why}`);
      }
    };
    /** The app switched protocols: from now on the two connections are one byte stream. */
    const tunnel = (answerBytes: Buffer): void => {
      counters?.answered(e.slot, 101, false, performance.now() - t0, 0, answerBytes.length);
      client.write(answerBytes);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
      // No half-open tunnels: once either side hangs up, the whole tunnel closes
      // (node:http sockets allow half-open, so this is not automatic).
      client.once('end', () => client.end());
      upstream.once('end', () => upstream.end());
      client.once('close', () => upstream.destroy());
    };
    /** The app refused the upgrade: relay its answer as a plain response, then close both connections. */
    const refused = (parsed: ResponseHead, rest: Buffer): void => {
      const framing = parsed.framing;
      const chunkedOut = framing.kind === 'close';
      client.write(`${parsed.head}${chunkedOut ? `transfer-encoding: ${parsed.codings === null ? '' : `${parsed.codings}, `}chunked\r\n` : ''}connection: close\r\n\r\n`, 'latin1');
      let left = framing.kind === 'length' ? framing.length : 0;
      const scanner = framing.kind === 'chunked' ? new ChunkedScanner() : null;
      const done = (): void => {
        upstream.destroy();
        client.end();
        // Read and drop what the client still sends (closing on unread bytes would reset the connection
        // and could lose the answer), for a short while.
        client.resume();
        setTimeout(() => client.destroy(), REFUSED_LINGER_MS).unref();
      };
      const relay = (d: Buffer): void => {
        if (d.length === 0) return;
        if (framing.kind === 'length') {
          const take = Math.min(left, d.length);
          left -= take;
          client.write(d.subarray(0, take));
          if (left === 0) done();
        } else if (scanner) {
          let end: number;
          try {
            end = scanner.feed(d);
          } catch {
            upstream.destroy();
            client.destroy();
            return;
          }
          client.write(end === -1 ? d : d.subarray(0, end));
          if (end !== -1) done();
        } else if (chunkedOut) {
          client.write(`${d.length.toString(16)}\r\n`, 'latin1');
          client.write(d);
          client.write('\r\n', 'latin1');
        }
      };
      if (framing.kind === 'none' || (framing.kind === 'length' && left === 0)) return done();
      relay(rest);
      if (upstream.destroyed) return;
      upstream.on('data', relay);
      upstream.once('end', () => {
        if (chunkedOut) client.write('0\r\n\r\n', 'latin1');
        done();
      });
    };
    upstream.once('connect', () => {
      connected = true;
      if (closed) return upstream.destroy();
      upstream.setKeepAlive(true, 30_000);
      upstream.write(upgradeHead(req, ctx.proto, ctx.trust));
      upstream.on('data', onAnswer);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      release();
      if (connected) {
        if (!answered) fail(err.code ?? err.message);
        else client.destroy();
        return;
      }
      ctx.upstreams.markDown(e, Date.now());
      counters?.add(e.slot, Field.ConnectErrors, 1);
      tried.push(e);
      ctx.log?.(`router: ${route.stack}/${route.node} upgrade: ${err.code ?? err.message} from ${e.ip}:${e.hostPort}`);
      if (tried.length < MAX_ATTEMPTS && tried.length < route.endpoints.length) return attempt();
      rawErrorResponse(client, 502, 'Bad gateway', `${route.stack}/${route.node} did not accept the connection: ${err.code ?? err.message}`);
    });
    upstream.once('close', () => {
      release();
      if (!connected) return;
      if (!answered) return fail('the app closed the connection without answering');
      // The app closed its side: finish what is buffered for the client, then close.
      client.end();
    });
  };
  attempt();
}

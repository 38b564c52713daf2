/**
 * Plain HTTP to HTTPS, per domain: once a valid certificate covers a
 * domain, its plain requests are answered with a 308 to the same URL over
 * HTTPS (308 keeps the method and body, unlike 301/302). ACME HTTP-01
 * validation requests (`/.well-known/acme-challenge/`) are never
 * redirected: the CA asks for them over plain HTTP, also while a
 * certificate is renewed.
 *
 * The fast path hands such requests to node:http (server.ts), which
 * answers here: the redirect is not a hot path, a client follows it once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normaliseHost } from './route-table.js';

export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** Whether a plain request must go to HTTPS: a certificate covers its host and it is no ACME challenge. */
export function wantsRedirect(target: string | undefined, covered: boolean): boolean {
  return covered && !(target ?? '').startsWith(ACME_CHALLENGE_PATH);
}

/** `https://host[:port]/target`: the Host header's name (its port dropped), the HTTPS port unless 443. */
export function httpsLocation(hostHeader: string, target: string, httpsPort: number): string {
  const host = normaliseHost(hostHeader);
  const path = target.startsWith('/') ? target : '/';
  return `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`;
}

export function answerRedirect(req: IncomingMessage, res: ServerResponse, httpsPort: number): void {
  const location = httpsLocation(req.headers.host ?? '', req.url ?? '/', httpsPort);
  const body = `Moved to ${location}\n`;
  res.writeHead(308, { location, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * ACME HTTP-01 answers on every router. The issuer (lib/certs/acme-issuer.ts)
 * puts `/acme-challenge/<token>` = key authorization under its lease; the CA
 * may send its validation request to any router, so each one answers
 * `GET /.well-known/acme-challenge/<token>` from etcd.
 *
 * The host process watches the prefix (ChallengeFeed, challenge-feed.ts)
 * and hands the whole set to its HTTP servers (in-process or each worker
 * over IPC); the servers look tokens up in memory (ChallengeAnswers, here).
 * This file has no etcd in it: router workers import it, and with the feed
 * here every worker loaded etcd3 and gRPC (82 modules) it never used. The path belongs to the
 * router on every domain: a request for it never reaches an app. Hostile
 * input: only a base64url token of bounded length is looked up; any other
 * path under the prefix, any other method, an unknown token: 404.
 */
import type http from 'node:http';
import { errorPage } from './pages.js';

export const CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** RFC 8555 tokens are base64url with at least 128 bits of entropy; Let's Encrypt's are 43 characters. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
/** A key authorization is `<token>.<base64url thumbprint>`. */
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{16,128}\.[A-Za-z0-9_-]{16,128}$/;

export const isChallengeToken = (token: string): boolean => TOKEN.test(token);

/** The token of a request target under CHALLENGE_PATH, or null when the target is anything else. */
export function challengeToken(target: string | undefined): string | null {
  if (!target || !target.startsWith(CHALLENGE_PATH)) return null;
  const token = target.slice(CHALLENGE_PATH.length);
  return TOKEN.test(token) ? token : null;
}

/** The answers one HTTP server gives: token -> key authorization, swapped whole on every change. */
export class ChallengeAnswers {
  private answers = new Map<string, string>();

  replace(entries: ReadonlyArray<readonly [string, string]>): void {
    const next = new Map<string, string>();
    for (const [token, keyAuthorization] of entries) {
      if (TOKEN.test(token) && KEY_AUTHORIZATION.test(keyAuthorization) && keyAuthorization.startsWith(`${token}.`)) next.set(token, keyAuthorization);
    }
    this.answers = next;
  }

  get size(): number {
    return this.answers.size;
  }

  /** The key authorization for a request target, or undefined (404). */
  answer(method: string | undefined, target: string | undefined): string | undefined {
    if (method !== 'GET' && method !== 'HEAD') return undefined;
    const token = challengeToken(target);
    return token === null ? undefined : this.answers.get(token);
  }

  /** Answers a request whose target starts with CHALLENGE_PATH (node:http side). */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const body = this.answer(req.method, req.url);
    if (body === undefined) return errorPage(res, 404, 'No such ACME challenge', 'this router holds no ACME HTTP-01 answer for that token');
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

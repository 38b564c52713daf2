/**
 * The dashboard's sign-in (lib/ui): the API token lives in an HttpOnly,
 * SameSite=Strict cookie that page scripts cannot read, so a script injected
 * into the page cannot steal it, and the token never appears in a URL.
 *
 * A cookie is sent by the browser on its own, so every request that changes
 * something and is authenticated by the cookie must also carry the
 * double-submit token: the `X-Viking-CSRF` header equal to the `viking_csrf`
 * cookie (readable by the page, random per sign-in). Another site can make
 * the browser send the cookies (SameSite=Strict already stops that in
 * today's browsers) but cannot read the CSRF cookie to copy it into a header.
 * Requests with `Authorization: Bearer` (the CLI) need no CSRF token: no
 * browser adds that header by itself.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'viking_session';
export const CSRF_COOKIE = 'viking_csrf';
export const CSRF_HEADER = 'x-viking-csrf';
/** A dashboard session lasts at most this long (the token's own expiry still applies). */
export const SESSION_MAX_AGE_S = 12 * 3600;

/** The cookies of a request, parsed without trusting them (first value of a name wins; no prototype keys). */
export function cookiesOf(req: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

/** The token of the session cookie, if the request carries one that looks like a token. */
export function sessionTokenOf(req: FastifyRequest): string | undefined {
  const v = cookiesOf(req).get(SESSION_COOKIE);
  return v && /^[A-Za-z0-9._~-]{1,512}$/.test(v) ? v : undefined;
}

/** Methods that change nothing need no CSRF token. */
export const isSafeMethod = (method: string): boolean => method === 'GET' || method === 'HEAD' || method === 'OPTIONS';

/** The double-submit check: the header equals the CSRF cookie, compared in constant time. */
export function csrfMatches(req: FastifyRequest): boolean {
  const cookie = cookiesOf(req).get(CSRF_COOKIE);
  const header = req.headers[CSRF_HEADER];
  if (!cookie || typeof header !== 'string' || cookie.length < 16) return false;
  const a = Buffer.from(cookie);
  const b = Buffer.from(header);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(name: string, value: string, o: { httpOnly: boolean; maxAge: number; secure: boolean }): string {
  return `${name}=${value}; Path=/; Max-Age=${o.maxAge}; SameSite=Strict${o.httpOnly ? '; HttpOnly' : ''}${o.secure ? '; Secure' : ''}`;
}

/** Sets the session and a fresh CSRF cookie; returns the CSRF token. */
export function startSession(req: FastifyRequest, reply: FastifyReply, token: string): string {
  const csrf = randomBytes(24).toString('base64url');
  const secure = req.protocol === 'https';
  void reply.header('set-cookie', [
    cookie(SESSION_COOKIE, token, { httpOnly: true, maxAge: SESSION_MAX_AGE_S, secure }),
    cookie(CSRF_COOKIE, csrf, { httpOnly: false, maxAge: SESSION_MAX_AGE_S, secure }),
  ]);
  return csrf;
}

/** Clears both cookies. */
export function endSession(req: FastifyRequest, reply: FastifyReply): void {
  const secure = req.protocol === 'https';
  void reply.header('set-cookie', [
    cookie(SESSION_COOKIE, '', { httpOnly: true, maxAge: 0, secure }),
    cookie(CSRF_COOKIE, '', { httpOnly: false, maxAge: 0, secure }),
  ]);
}

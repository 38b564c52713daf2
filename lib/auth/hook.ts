/**
 * The API's gate. Every request but the public routes of the permission table
 * (lib/auth/route-permissions.ts) must carry `Authorization: Bearer <token>`
 * naming a live, unexpired token, and the token's role and stack scope
 * (lib/auth/roles.ts) must hold the permission the route needs. The check
 * runs in fastify's first hook (onRequest), before any body is read or any
 * handler runs, so a refused request changes nothing; a stack named in a
 * JSON body is checked once the body is parsed, still before the handler.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import type { TokenRecord } from '../store/records.js';
import { isExpired, verifyToken } from './tokens.js';
import { Access, demand } from './roles.js';
import { ruleFor, type RouteRule } from './route-permissions.js';
import { csrfMatches, isSafeMethod, sessionTokenOf } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token the request was made with (set by the auth hook). */
    token?: Omit<TokenRecord, 'hash'>;
    /** What that token may do (set by the auth hook). */
    access?: Access;
  }
}

/** The bearer token of a request, if it sent one. */
export function bearerOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** A string field of a parsed params, query or body object, read without trusting its shape. */
function field(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null || !Object.prototype.hasOwnProperty.call(source, name)) return undefined;
  const v = (source as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
}

/** A route the table does not know is an admin's only (and its test fails). */
const UNLISTED: RouteRule = { need: 'tokens:admin' };

function ruleOf(req: FastifyRequest): RouteRule | undefined {
  const url = req.routeOptions.url;
  // No route matched: the token is still checked, then the 404 answers.
  if (url === undefined) return { anyToken: true };
  return ruleFor(req.method, url) ?? UNLISTED;
}

/** The access of an authenticated request (the hook ran, so it is set). */
export function accessOf(req: FastifyRequest): Access {
  if (!req.access) throw new VikingError('VIKING_E_UNAUTHORIZED', 'this API needs a token');
  return req.access;
}

export function registerAuth(app: FastifyInstance, client: Etcd3): void {
  app.decorateRequest('token', undefined);
  app.decorateRequest('access', undefined);
  app.addHook('onRequest', async (req) => {
    const rule = ruleOf(req);
    if (rule && 'public' in rule && req.method === 'GET') return;
    let given = bearerOf(req);
    // The dashboard's cookie session (lib/auth/session.ts): a change needs the CSRF header too.
    if (!given) {
      given = sessionTokenOf(req);
      if (given && !isSafeMethod(req.method) && !csrfMatches(req)) {
        throw new VikingError('VIKING_E_CSRF', 'this request changes something and came with the dashboard session cookie but without a matching X-Viking-CSRF header; reload the dashboard and sign in again');
      }
      // Routes that call other hosts forward the caller's token (bearerOf): the cookie's, once checked below.
      if (given) req.headers.authorization = `Bearer ${given}`;
    }
    if (!given) {
      throw new VikingError(
        'VIKING_E_UNAUTHORIZED',
        'this API needs a token: pass --token, set VIKING_TOKEN, or run viking configure --api URL --token TOKEN',
      );
    }
    const record = await verifyToken(client, given);
    if (!record) {
      throw new VikingError('VIKING_E_UNAUTHORIZED', 'the API token is unknown or revoked; viking token create makes a new one');
    }
    if (isExpired(record)) {
      throw new VikingError('VIKING_E_TOKEN_EXPIRED', `the API token ${record.name} (${record.id}) expired at ${record.expiresAt}; an admin can renew it with viking token rotate ${record.id}`);
    }
    const { hash: _hash, ...rest } = record;
    req.token = rest;
    req.access = new Access(record);
    if (!rule || !('need' in rule)) return;
    const src = rule.stack;
    if (src === undefined) return demand(req.access, rule.need);
    if (src === 'vikingfile' || 'body' in src) return demand(req.access, rule.need, undefined);
    const stack = 'param' in src ? field(req.params, src.param) : field(req.query, src.query);
    if (stack === undefined && !rule.listing) throw new VikingError('VIKING_E_BAD_REQUEST', `this route needs a stack name`);
    demand(req.access, rule.need, stack);
  });
  app.addHook('preHandler', async (req) => {
    const rule = ruleOf(req);
    if (!rule || !('need' in rule) || typeof rule.stack !== 'object' || !('body' in rule.stack)) return;
    const stack = field(req.body, rule.stack.body);
    if (stack === undefined) throw new VikingError('VIKING_E_BAD_REQUEST', `the body needs a ${rule.stack.body}`);
    demand(accessOf(req), rule.need, stack);
  });
}

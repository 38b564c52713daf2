/**
 * The audit log at the API (lib/audit/log.ts keeps it):
 *
 *   every request that is not a GET and carries a valid token -> one entry,
 *       written when its answer is complete (a stream's end included)
 *   GET /v1/audit[?stack=&since=1h&afterRevision=N&limit=N]
 *       {entries (oldest first), revision}: the newest entries the token may
 *       see; a token scoped to stacks sees only entries about those stacks
 *
 * Requests refused before a token is known (401) are not recorded: anyone
 * could send them, and they would push real entries out of the log.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { appendAudit, readAudit, trimAudit } from '../audit/log.js';
import { accessOf } from '../auth/hook.js';
import { ruleFor } from '../auth/route-permissions.js';
import { parseDuration } from '../auth/roles.js';
import { readSettings } from '../store/settings.js';
import { NAME, OBJS, okObject } from './schemas.js';
import type { ApiContext } from './server.js';

/** What a handler learnt that the audit entry should say. */
export interface AuditNote {
  stack?: string;
  release?: string;
  /** The VIKING_E_ code the request failed with, even inside a 200 stream. */
  code?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditNote?: AuditNote;
  }
}

/** Notes something for the request's audit entry. */
export function noteAudit(req: FastifyRequest, note: AuditNote): void {
  req.auditNote = { ...req.auditNote, ...note };
}

/** The stack a request is about, as the permission table says where it is. */
function stackOf(req: FastifyRequest): string | undefined {
  if (req.auditNote?.stack) return req.auditNote.stack;
  const url = req.routeOptions.url;
  const rule = url ? ruleFor(req.method, url) : undefined;
  if (!rule || !('need' in rule) || typeof rule.stack !== 'object') return undefined;
  const [source, name] = 'param' in rule.stack ? [req.params, rule.stack.param] : 'query' in rule.stack ? [req.query, rule.stack.query] : [req.body, rule.stack.body];
  if (typeof source !== 'object' || source === null || !Object.prototype.hasOwnProperty.call(source, name)) return undefined;
  const v = (source as Record<string, unknown>)[name];
  return typeof v === 'string' ? v.slice(0, 63) : undefined;
}

export function registerAuditLog(app: FastifyInstance, ctx: ApiContext): void {
  app.decorateRequest('auditNote', undefined);
  // Registered before the auth hook, so refusals (403) are recorded too.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
    reply.raw.once('close', () => {
      if (!req.token) return;
      const note = req.auditNote ?? {};
      const status = reply.raw.headersSent ? reply.raw.statusCode : 0;
      const user = req.headers['x-viking-user'];
      const stack = stackOf(req);
      const entry = {
        token: { id: req.token.id, name: req.token.name },
        ...(typeof user === 'string' && user ? { user: user.slice(0, 100) } : {}),
        address: req.ip,
        method: req.method,
        route: req.routeOptions.url ?? '(no route)',
        path: (req.url.split('?')[0] ?? '').slice(0, 300),
        ...(stack ? { stack } : {}),
        status,
        result: note.code ?? (status === 0 ? 'aborted' : status < 400 ? 'ok' : 'error'),
        ...(note.release ? { release: note.release } : {}),
        host: ctx.hostName,
      };
      void (async () => {
        await appendAudit(ctx.client, entry);
        await trimAudit(ctx.client, await readSettings(ctx.client));
      })().catch((err: Error) => ctx.log?.(`audit: could not record ${entry.method} ${entry.path} by ${entry.token.name}: ${err.message}`));
    });
  });
}

export function registerAuditRoute(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { stack?: string; since?: string; afterRevision?: string; limit?: number } }>(
    '/v1/audit',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            stack: NAME,
            since: { type: 'string', maxLength: 20 },
            afterRevision: { type: 'string', pattern: '^[0-9]{1,19}$' },
            limit: { type: 'integer', minimum: 1, maximum: 5000 },
          },
        },
        response: okObject({ entries: OBJS, revision: { type: 'string' } }, ['entries', 'revision']),
      },
    },
    async (req) => {
      const access = accessOf(req);
      const q = req.query;
      const sinceMs = q.since !== undefined ? Date.now() - parseDuration(q.since, 'since') : undefined;
      return readAudit(ctx.client, {
        limit: q.limit ?? 200,
        ...(sinceMs !== undefined ? { sinceMs } : {}),
        ...(q.afterRevision !== undefined ? { afterRevision: q.afterRevision } : {}),
        // A scoped token sees entries about its stacks only; cluster-wide entries need every stack.
        keep: (e) => (q.stack === undefined || e.stack === q.stack) && (access.allStacks || (typeof e.stack === 'string' && access.covers(e.stack))),
      });
    },
  );
}

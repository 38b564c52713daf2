/**
 * Everyday operations of issue 15:
 *
 *   GET    /v1/cron/:stack                    cron nodes of the live release, next tick, kept runs
 *   GET    /v1/secrets/:stack[?reveal=1]      secret names; values only with reveal and a token that may (lib/secrets/access.ts)
 *   POST   /v1/secrets/:stack  {set?, unset?} seal, store, roll the stack onto them (NDJSON progress, like /v1/env)
 *
 * Secret values never appear in /v1/stack, /v1/env or a log line; the
 * POST body is not logged (fastify logs no bodies here).
 */
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import { cronView } from '../cron/history.js';
import { requireStack } from '../rollout/releases.js';
import { changeSecrets, readSecrets } from '../secrets/store.js';
import { hostSecretsKey } from '../secrets/key-file.js';
import { openSecret } from '../secrets/seal.js';
import { mayRevealSecrets } from '../secrets/access.js';
import { actorOf } from './deploy-routes.js';
import { streamProgress } from './progress.js';
import { FLAG, NAME, flagOn, noQuery, params, streamResponses } from './schemas.js';
import type { ApiContext } from './server.js';

export function registerOpsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { stack: string } }>('/v1/cron/:stack', { schema: { params: params({ stack: NAME }), querystring: noQuery } }, async (req) => {
    await requireStack(ctx.client, req.params.stack);
    return { stack: req.params.stack, nodes: await cronView(ctx.client, req.params.stack) };
  });

  app.get<{ Params: { stack: string }; Querystring: { reveal?: string } }>(
    '/v1/secrets/:stack',
    { schema: { params: params({ stack: NAME }), querystring: { type: 'object', additionalProperties: false, properties: { reveal: FLAG } } } },
    async (req) => {
      await requireStack(ctx.client, req.params.stack);
      const record = await readSecrets(ctx.client, req.params.stack);
      const secrets = record?.secrets ?? [];
      if (req.query.reveal === undefined || !flagOn(req.query.reveal)) {
        return { stack: req.params.stack, updatedAt: record?.updatedAt ?? null, secrets: secrets.map((s) => ({ name: s.name })) };
      }
      if (!mayRevealSecrets(req.access)) throw new VikingError('VIKING_E_FORBIDDEN', 'forbidden: needs secrets:reveal; revealing secret values needs an admin token', { permission: 'secrets:reveal' });
      const key = hostSecretsKey();
      ctx.log?.(`secrets: ${actorOf(req)} revealed the values of ${req.params.stack}`);
      return {
        stack: req.params.stack,
        updatedAt: record?.updatedAt ?? null,
        secrets: secrets.map((s) => ({ name: s.name, value: openSecret(key, req.params.stack, s) })),
      };
    },
  );

  app.post<{ Params: { stack: string }; Body: { set?: Record<string, string>; unset?: string[] } }>(
    '/v1/secrets/:stack',
    {
      schema: {
        params: params({ stack: NAME }),
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            set: { type: 'object', additionalProperties: { type: 'string', maxLength: 65536 }, maxProperties: 100 },
            unset: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 128 }, maxItems: 100 },
          },
        },
        response: streamResponses,
      },
    },
    async (req, reply) => {
      let failed: string | undefined;
      try {
        await streamProgress(
          reply,
          (emit) =>
            changeSecrets(
              { client: ctx.client, by: actorOf(req), hostName: ctx.hostName, emit, ...(ctx.rolloutTimeoutMs !== undefined ? { timeoutMs: ctx.rolloutTimeoutMs } : {}) },
              req.params.stack,
              { ...(req.body.set ? { set: req.body.set } : {}), ...(req.body.unset ? { unset: req.body.unset } : {}) },
            ),
          (code) => (failed = code),
          ctx,
        );
      } finally {
        ctx.metrics?.operations.inc({ kind: 'secrets', result: failed ?? 'ok' });
      }
      return reply;
    },
  );
}

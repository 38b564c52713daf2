/**
 * Routes that change what runs, each answering an NDJSON progress stream
 * (lib/api/progress.ts) that ends in a `result` or an `error` line:
 *
 *   POST   /v1/scale/:stack      {nodes: {web: 3}}          more or fewer replicas, no new release
 *   POST   /v1/rollback/:stack   {release?: "v3"}           the previous release (or a named one) as a new release
 *   POST   /v1/env/:stack        {set?: {K: V}, unset?: [K]} new env overrides, rolled out as a new release
 *   DELETE /v1/stack/:name                                  containers, routes and keys gone
 *
 * Each holds the stack's lock while it runs. Refusals (no such stack, busy,
 * nothing to roll back to) are plain HTTP errors, before any stream starts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerOf } from '../auth/hook.js';
import { changeEnv, rollbackStack, type ReleaseOpContext } from '../rollout/releases.js';
import { MAX_REPLICAS, scaleStack } from '../rollout/scale.js';
import { removeStack } from '../rollout/remove.js';
import type { Emit } from '../rollout/rollout.js';
import { containersEverywhere } from './local-routes.js';
import { streamProgress } from './progress.js';
import { FLAG, NAME, TAG, flagOn, noQuery, params, streamResponses } from './schemas.js';
import { cleanupEverywhere, removeFromRegistry } from './cleanup.js';
import { REGISTRY_KEY } from '../store/keys.js';
import type { ApiContext } from './server.js';

/** Who did it, for the release history: the token's name, and the user the CLI says it runs as. */
export function actorOf(req: FastifyRequest): string {
  const user = req.headers['x-viking-user'];
  const token = req.token?.name ?? 'anonymous';
  return typeof user === 'string' && user && user !== token ? `${user} (token ${token})` : token;
}

export function registerDeployRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const opContext = (req: FastifyRequest, emit: Emit): ReleaseOpContext => ({
    client: ctx.client,
    by: actorOf(req),
    hostName: ctx.hostName,
    emit,
    ...(ctx.rolloutTimeoutMs !== undefined ? { timeoutMs: ctx.rolloutTimeoutMs } : {}),
  });
  const run = async <R extends object>(kind: string, reply: FastifyReply, op: (emit: Emit) => Promise<R>): Promise<FastifyReply> => {
    let failed: string | undefined;
    try {
      await streamProgress(reply, op, (code) => (failed = code), ctx);
    } finally {
      ctx.metrics?.operations.inc({ kind, result: failed ?? 'ok' });
    }
    return reply;
  };

  app.post<{ Params: { stack: string }; Body: { nodes: Record<string, number> } }>(
    '/v1/scale/:stack',
    {
      schema: {
        params: params({ stack: NAME }),
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['nodes'],
          properties: {
            nodes: {
              type: 'object',
              minProperties: 1,
              propertyNames: NAME,
              additionalProperties: { type: 'integer', minimum: 0, maximum: MAX_REPLICAS },
            },
          },
        },
        response: streamResponses,
      },
    },
    async (req, reply) =>
      run('scale', reply, async (emit) => ({ stack: req.params.stack, nodes: await scaleStack(opContext(req, emit), req.params.stack, req.body.nodes) })),
  );

  app.post<{ Params: { stack: string }; Body: { release?: string } | undefined }>(
    '/v1/rollback/:stack',
    {
      schema: {
        params: params({ stack: NAME }),
        querystring: noQuery,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { release: TAG } },
        response: streamResponses,
      },
    },
    async (req, reply) => run('rollback', reply, (emit) => rollbackStack(opContext(req, emit), req.params.stack, req.body?.release)),
  );

  app.post<{ Params: { stack: string }; Body: { set?: Record<string, string>; unset?: string[] } }>(
    '/v1/env/:stack',
    {
      schema: {
        params: params({ stack: NAME }),
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            set: { type: 'object', additionalProperties: { type: 'string', maxLength: 32768 } },
            unset: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 128 }, maxItems: 100 },
          },
        },
        response: streamResponses,
      },
    },
    async (req, reply) =>
      run('env', reply, (emit) =>
        changeEnv(opContext(req, emit), req.params.stack, { ...(req.body.set ? { set: req.body.set } : {}), ...(req.body.unset ? { unset: req.body.unset } : {}) }),
      ),
  );

  app.delete<{ Params: { name: string }; Querystring: { volumes?: string } }>(
    '/v1/stack/:name',
    {
      schema: {
        params: params({ name: NAME }),
        querystring: { type: 'object', additionalProperties: false, properties: { volumes: FLAG } },
        response: streamResponses,
      },
    },
    async (req, reply) =>
      run('rm', reply, (emit) =>
        removeStack(
          {
            ...opContext(req, emit),
            dataDir: ctx.dataDir,
            countContainers: (stack) => containersEverywhere(ctx, stack, bearerOf(req)),
            cleanup: (r) => cleanupEverywhere(ctx, r, bearerOf(req)),
            cleanRegistry: async (refs) => {
              const registry = await ctx.client.get(REGISTRY_KEY).string();
              return registry ? removeFromRegistry(registry, refs) : { removed: 0, failed: 0 };
            },
            removeVolumes: req.query.volumes !== undefined && flagOn(req.query.volumes),
          },
          req.params.name,
        ),
      ),
  );
}

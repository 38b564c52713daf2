/**
 * Cluster settings, the same for every host (kept in etcd, lib/store/settings.ts):
 *
 *   GET  /v1/settings                the settings in force
 *   POST /v1/settings {maxScale: N}  changes the ones named
 */
import type { FastifyInstance } from 'fastify';
import { MAX_SCALE_CEILING, readSettings, writeSettings, type ClusterSettings } from '../store/settings.js';
import { noQuery, okObject } from './schemas.js';
import type { ApiContext } from './server.js';

const SETTINGS = { maxScale: { type: 'integer', minimum: 1, maximum: MAX_SCALE_CEILING } } as const;

export function registerSettingsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/settings', { schema: { querystring: noQuery, response: okObject(SETTINGS, ['maxScale']) } }, async () => readSettings(ctx.client));

  app.post<{ Body: Partial<ClusterSettings> }>(
    '/v1/settings',
    {
      schema: {
        querystring: noQuery,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: SETTINGS },
        response: okObject(SETTINGS, ['maxScale']),
      },
    },
    async (req) => {
      const next = await writeSettings(ctx.client, req.body);
      ctx.log?.(`settings changed by ${req.token?.name ?? 'anonymous'}: ${JSON.stringify(req.body)}`);
      return next;
    },
  );
}

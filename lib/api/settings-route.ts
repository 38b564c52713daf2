/**
 * Cluster settings, the same for every host (kept in etcd, lib/store/settings.ts):
 *
 *   GET  /v1/settings                the settings in force
 *   POST /v1/settings {maxScale?, auditMaxEntries?, auditMaxAgeDays?}  changes the ones named
 */
import type { FastifyInstance } from 'fastify';
import { SETTING_RANGES, readSettings, writeSettings, type ClusterSettings } from '../store/settings.js';
import { noQuery, okObject } from './schemas.js';
import type { ApiContext } from './server.js';

const SETTINGS = Object.fromEntries(
  Object.entries(SETTING_RANGES).map(([name, r]) => [name, { type: 'integer', minimum: r.min, maximum: r.max }]),
) as Record<keyof ClusterSettings, { type: 'integer'; minimum: number; maximum: number }>;

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

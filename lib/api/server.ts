/**
 * The /v1 REST API every host serves (fastify). The CLI talks only to it.
 * Errors leave as `{statusCode, code, message}` from the one registry in
 * lib/errors.ts, whatever threw them.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { VikingError, toVikingError } from '../errors.js';
import { registerPush } from './push-route.js';
import { registerWebsiteSource } from './website-route.js';
import { listJobs, listStacks } from './status.js';
import { readStack } from '../schedule/stacks.js';
import { isValidName } from '../vikingfile/index.js';

export interface ApiContext {
  client: Etcd3;
  docker: Docker;
  dataDir: string;
  hostName: string;
  /** Largest source upload accepted, in bytes. */
  maxUploadBytes: number;
  /** Base URL of the router, to print the app's address after a push. */
  routerPort: number;
  log?: (msg: string) => void;
}

const stackParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: '^[a-z0-9-]{1,63}$' } },
} as const;

export function createApi(ctx: ApiContext): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  app.setErrorHandler((err, _req, reply) => {
    const e = err as Error & { validation?: unknown; statusCode?: number; code?: string };
    const vk =
      e instanceof VikingError
        ? e
        : e.validation
          ? new VikingError('VIKING_E_BAD_REQUEST', e.message)
          : e.statusCode && e.statusCode < 500
            ? new VikingError('VIKING_E_BAD_REQUEST', e.message)
            : toVikingError(e);
    if (vk.statusCode >= 500) ctx.log?.(`api: ${vk.code}: ${vk.message}`);
    void reply.status(vk.statusCode).send(vk.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new VikingError('VIKING_E_NOT_FOUND', `no API route ${req.method} ${req.url}; see viking --help`);
    void reply.status(404).send(e.toJSON());
  });

  app.get('/v1/ping', async () => ({ ok: true, host: ctx.hostName }));

  app.get('/v1/stacks', async () => {
    const stacks = await listStacks(ctx.client);
    return stacks.map((s) => ({
      name: s.name,
      current: s.current,
      releases: s.releases.length,
      lastRelease: s.lastRelease,
      domains: Object.values(s.domains).flat(),
      updatedAt: s.releases.at(-1)?.at ?? null,
    }));
  });

  app.get<{ Params: { name: string } }>('/v1/stack/:name', { schema: { params: stackParams } }, async (req) => {
    const stack = await readStack(ctx.client, req.params.name);
    if (!stack) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${req.params.name}; viking stacks lists them`);
    return { ...stack, jobs: await listJobs(ctx.client, stack.name) };
  });

  app.get<{ Querystring: { stack?: string } }>(
    '/v1/ps',
    { schema: { querystring: { type: 'object', properties: { stack: { type: 'string' } } } } },
    async (req) => {
      const stack = req.query.stack;
      if (stack !== undefined && !isValidName(stack)) throw new VikingError('VIKING_E_INVALID_NAME', `'${stack}' is not a stack name`);
      return listJobs(ctx.client, stack);
    },
  );

  registerPush(app, ctx);
  registerWebsiteSource(app, ctx);
  return app;
}

/**
 * Routes about the cluster itself, its hosts and its tokens:
 *
 *   GET    /v1/ping                   liveness, no token needed
 *   GET    /v1/whoami                 the token this request carries
 *   GET    /v1/info                   a summary: hosts, leader, stacks, jobs by state
 *   GET    /v1/network                every live host: address, role, load, API
 *   GET    /v1/server/:name           one host and the jobs placed on it
 *   POST   /v1/server/:name/drain     {drain: true|false}: move its stateless jobs away, or stop draining
 *   DELETE /v1/server/:name[?force=1] forget a host that is gone
 *   POST   /v1/rebalance              {dryRun?}: move replicas to spread nodes and even load, one at a time (NDJSON progress)
 *   POST   /v1/tokens {name, role?, stacks?, domains?, expires?}   make a token (shown once)
 *   GET    /v1/tokens  DELETE /v1/tokens/:id  POST /v1/tokens/:id/rotate {expires?}
 */
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import { drainHost, listHosts, removeHost } from '../host-admin/ops.js';
import { readMembers, summarise, withEtcdRoles } from '../host-admin/etcd-roles.js';
import type { NetworkRow } from './wire.js';
import { createToken, listTokens, publicView, revokeToken, rotateToken, type TokenGrant } from '../auth/tokens.js';
import { ROLES } from '../auth/roles.js';
import { LEADER_KEY } from '../store/keys.js';
import { VERSION } from '../version.js';
import { listJobs, listStacks } from './status.js';
import { FLAG, NAME, OBJ, OBJS, flagOn, noQuery, okArray, okObject, params, streamResponses } from './schemas.js';
import type { ApiContext } from './server.js';
import { dict, own } from '../store/dict.js';
import { rebalance } from '../host-admin/rebalance.js';
import { streamProgress } from './progress.js';
import { actorOf } from './deploy-routes.js';

export function registerClusterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/ping', { schema: { querystring: noQuery, response: okObject({ ok: { type: 'boolean' }, host: { type: 'string' } }, ['ok', 'host']) } }, async () => ({
    ok: true,
    host: ctx.hostName,
  }));

  app.get('/v1/whoami', { schema: { querystring: noQuery, response: okObject({ id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } }, ['id', 'name', 'role']) } }, async (req) => ({
    ...req.token,
    role: req.access?.role,
    ...(req.access?.stacks ? { stacks: [...req.access.stacks] } : {}),
    host: ctx.hostName,
  }));

  app.get(
    '/v1/info',
    { schema: { querystring: noQuery, response: okObject({ host: { type: 'string' }, leader: { type: ['string', 'null'] }, hosts: OBJ, stacks: OBJ, jobs: OBJ }, ['host', 'hosts', 'stacks', 'jobs']) } },
    async () => {
      const [hosts, stacks, jobs, leader, members] = await Promise.all([
        listHosts(ctx.client),
        listStacks(ctx.client),
        listJobs(ctx.client),
        ctx.client.get(LEADER_KEY).string(),
        readMembers(ctx.client),
      ]);
      const byState = dict<number>();
      for (const j of jobs) byState[j.state] = (own(byState, j.state) ?? 0) + 1;
      return {
        host: ctx.hostName,
        version: VERSION,
        leader: leader ?? null,
        hosts: { total: hosts.length, draining: hosts.filter((h) => h.draining).length, masters: hosts.filter((h) => h.master).length, names: hosts.map((h) => h.name) },
        stacks: { total: stacks.length, live: stacks.filter((s) => s.current !== null).length, names: stacks.map((s) => s.name) },
        jobs: { total: jobs.length, byState },
        ...(members ? { etcd: summarise(members) } : {}),
      };
    },
  );

  app.get(
    '/v1/network',
    { schema: { querystring: noQuery, response: okArray({ name: { type: 'string' }, ip: { type: 'string' }, leader: { type: 'boolean' }, jobs: { type: 'integer' } }, ['name', 'ip']) } },
    async (): Promise<NetworkRow[]> => withEtcdRoles(ctx.client, await listHosts(ctx.client)),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/server/:name',
    { schema: { params: params({ name: NAME }), querystring: noQuery, response: okObject({ name: { type: 'string' }, alive: { type: 'boolean' }, jobs: OBJS }, ['name', 'alive', 'jobs']) } },
    async (req) => {
      const [hosts, jobs] = await Promise.all([listHosts(ctx.client), listJobs(ctx.client)]);
      const host = hosts.find((h) => h.name === req.params.name);
      const mine = jobs.filter((j) => j.host === req.params.name);
      if (!host && mine.length === 0) throw new VikingError('VIKING_E_NOT_FOUND', `no host named ${req.params.name}; viking hosts lists them`);
      if (!host) return { name: req.params.name, alive: false, jobs: mine };
      const [withRole] = await withEtcdRoles(ctx.client, [host]);
      return { ...withRole, alive: true, jobs: mine };
    },
  );

  app.post<{ Params: { name: string }; Body: { drain?: boolean } | undefined }>(
    '/v1/server/:name/drain',
    {
      schema: {
        params: params({ name: NAME }),
        body: { type: ['object', 'null'], additionalProperties: false, properties: { drain: { type: 'boolean' } } },
        response: okObject({ name: { type: 'string' }, draining: { type: 'boolean' } }, ['name', 'draining']),
      },
    },
    async (req) => {
      const on = req.body?.drain ?? true;
      await drainHost(ctx.client, req.params.name, on);
      return { name: req.params.name, draining: on };
    },
  );

  app.delete<{ Params: { name: string }; Querystring: { force?: string } }>(
    '/v1/server/:name',
    {
      schema: {
        params: params({ name: NAME }),
        querystring: { type: 'object', additionalProperties: false, properties: { force: FLAG } },
        response: okObject({ name: { type: 'string' }, unpinned: { type: 'array', items: { type: 'string' } } }, ['name', 'unpinned']),
      },
    },
    async (req) => {
      const known = (await listHosts(ctx.client)).some((h) => h.name === req.params.name) || (await listJobs(ctx.client)).some((j) => j.host === req.params.name);
      if (!known) throw new VikingError('VIKING_E_NOT_FOUND', `no host named ${req.params.name}; viking hosts lists them`);
      const force = req.query.force !== undefined && flagOn(req.query.force);
      const { unpinned } = await removeHost(ctx.client, req.params.name, force);
      return { name: req.params.name, unpinned };
    },
  );

  app.post<{ Body: { dryRun?: boolean } | undefined }>(
    '/v1/rebalance',
    {
      schema: {
        querystring: noQuery,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { dryRun: { type: 'boolean' } } },
        response: streamResponses,
      },
    },
    async (req, reply) => {
      let failed: string | undefined;
      try {
        await streamProgress(
          reply,
          (emit) => rebalance(ctx.client, { dryRun: req.body?.dryRun ?? false, emit, by: actorOf(req), hostName: ctx.hostName }),
          (code) => (failed = code),
          ctx,
        );
      } finally {
        ctx.metrics?.operations.inc({ kind: 'rebalance', result: failed ?? 'ok' });
      }
      return reply;
    },
  );

  const PATTERNS = { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 253 } } as const;
  const EXPIRES = { type: 'string', minLength: 2, maxLength: 8 } as const;
  const TOKEN_VIEW = { id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } };

  app.post<{ Body: TokenGrant & { name: string } }>(
    '/v1/tokens',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, role: { type: 'string', enum: [...ROLES] }, stacks: PATTERNS, domains: PATTERNS, expires: EXPIRES },
        },
        response: okObject({ ...TOKEN_VIEW, token: { type: 'string' } }, ['id', 'name', 'role', 'token']),
      },
    },
    async (req) => {
      const { name, ...grant } = req.body;
      const made = await createToken(ctx.client, name, req.token?.name ?? 'api', grant);
      return { ...publicView(made.record), token: made.token };
    },
  );

  app.get('/v1/tokens', { schema: { querystring: noQuery, response: okArray(TOKEN_VIEW, ['id', 'name', 'role']) } }, async () => listTokens(ctx.client));

  app.post<{ Params: { id: string }; Body: { expires?: string } | undefined }>(
    '/v1/tokens/:id/rotate',
    {
      schema: {
        params: params({ id: { type: 'string', pattern: '^[a-f0-9]{12}$' } }),
        querystring: noQuery,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { expires: EXPIRES } },
        response: okObject({ ...TOKEN_VIEW, token: { type: 'string' } }, ['id', 'name', 'role', 'token']),
      },
    },
    async (req) => {
      const made = await rotateToken(ctx.client, req.params.id, req.body?.expires);
      return { ...publicView(made.record), token: made.token };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/tokens/:id',
    { schema: { params: params({ id: { type: 'string', pattern: '^[a-f0-9]{12}$' } }), response: okObject({ id: { type: 'string' }, revoked: { type: 'boolean' } }, ['id']) } },
    async (req) => {
      const r = await revokeToken(ctx.client, req.params.id);
      return { id: r.id, name: r.name, revoked: true };
    },
  );
}

/**
 * Read routes about stacks and their releases (a token scoped to some
 * stacks lists only those; lib/auth/route-permissions.ts):
 *
 *   GET /v1/stacks                        every stack, its live release, domains
 *   GET /v1/stack/:name                   the stack record, its history and its jobs
 *   GET /v1/tags/:stack                   its releases, newest last, the live one marked
 *   GET /v1/nodes/:stack/:tag             a release's nodes: spec, replicas and their state
 *   GET /v1/allocate/:stack/:tag/:node    where a node runs or would run, with dowding's reasons
 *   GET /v1/env/:stack                    the Vikingfile env of each node and the overrides
 *   GET /v1/ps[?stack=]                   one row per job
 */
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import type { StackRecord } from '../store/records.js';
import { readStack } from '../rollout/stacks.js';
import { readStackLock } from '../rollout/lock.js';
import { allocate } from './allocate.js';
import { listJobs, listStacks } from './status.js';
import { cronPsRows } from '../cron/history.js';
import { NAME, OBJ, OBJS, TAG, noQuery, okArray, okObject, params } from './schemas.js';
import type { ApiContext } from './server.js';
import { dict, own } from '../store/dict.js';
import { accessOf } from '../auth/hook.js';

async function stackOr404(ctx: ApiContext, name: string): Promise<StackRecord> {
  const stack = await readStack(ctx.client, name);
  if (!stack) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${name}; viking stacks lists them`);
  return stack;
}

export function registerStackRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/stacks',
    {
      schema: {
        querystring: noQuery,
        response: okArray({ name: { type: 'string' }, current: { type: ['string', 'null'] }, releases: { type: 'integer' }, domains: { type: 'array', items: { type: 'string' } } }, ['name']),
      },
    },
    async (req) => {
      const access = accessOf(req);
      const stacks = (await listStacks(ctx.client)).filter((s) => access.covers(s.name));
      return stacks.map((s) => ({
        name: s.name,
        current: s.current,
        releases: s.releases.length,
        lastRelease: s.lastRelease,
        domains: Object.values(s.domains).flat(),
        updatedAt: s.releases.at(-1)?.at ?? null,
      }));
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/stack/:name',
    { schema: { params: params({ name: NAME }), querystring: noQuery, response: okObject({ name: { type: 'string' }, jobs: OBJS }, ['name', 'jobs']) } },
    async (req) => {
      const stack = await stackOr404(ctx, req.params.name);
      const [jobs, lock] = await Promise.all([listJobs(ctx.client, stack.name), readStackLock(ctx.client, stack.name)]);
      return { ...stack, env: stack.env ?? {}, scale: stack.scale ?? {}, busy: lock ?? null, jobs };
    },
  );

  app.get<{ Params: { stack: string } }>(
    '/v1/tags/:stack',
    {
      schema: {
        params: params({ stack: NAME }),
        querystring: noQuery,
        response: okArray({ tag: { type: 'string' }, current: { type: 'boolean' }, jobs: { type: 'integer' } }, ['tag', 'current']),
      },
    },
    async (req) => {
      const stack = await stackOr404(ctx, req.params.stack);
      const jobs = await listJobs(ctx.client, stack.name);
      return stack.releases.map((r) => ({
        tag: r.tag,
        number: r.number,
        current: r.tag === stack.current,
        at: r.at,
        by: r.by,
        origin: r.origin ?? { kind: 'push' },
        images: r.images,
        nodes: Object.keys(r.nodes ?? {}),
        env: r.env ?? {},
        redeployable: r.nodes !== undefined,
        jobs: jobs.filter((j) => j.tag === r.tag).length,
      }));
    },
  );

  app.get<{ Params: { stack: string; tag: string } }>(
    '/v1/nodes/:stack/:tag',
    { schema: { params: params({ stack: NAME, tag: TAG }), querystring: noQuery, response: okArray({ node: { type: 'string' }, replicas: OBJS }, ['node']) } },
    async (req) => {
      const stack = await stackOr404(ctx, req.params.stack);
      const release = stack.releases.find((r) => r.tag === req.params.tag);
      const jobs = (await listJobs(ctx.client, stack.name)).filter((j) => j.tag === req.params.tag);
      if (!release && jobs.length === 0) {
        throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no release ${req.params.tag}; viking releases ${stack.name} lists them`);
      }
      const names = new Set([...Object.keys(release?.nodes ?? {}), ...Object.keys(release?.domains ?? {}), ...jobs.map((j) => j.node)]);
      return [...names].sort().map((node) => {
        const spec = own(release?.nodes, node);
        const website = own(release?.websites, node);
        const replicas = jobs.filter((j) => j.node === node);
        return {
          node,
          kind: website !== undefined ? 'website' : 'container',
          domains: own(release?.domains, node) ?? [],
          ...(spec ? { spec, scale: own(stack.scale, node)?.replicas ?? spec.scale } : {}),
          ...(website !== undefined ? { documentRoot: website } : {}),
          replicas: replicas.map((j) => ({ instance: j.instance, host: j.host, state: j.state, container: j.container, endpoints: j.endpoints, reason: j.reason })),
        };
      });
    },
  );

  app.get<{ Params: { stack: string; tag: string; node: string } }>(
    '/v1/allocate/:stack/:tag/:node',
    {
      schema: {
        params: params({ stack: NAME, tag: TAG, node: NAME }),
        querystring: noQuery,
        response: okObject({ replicas: OBJS, hosts: OBJS, hypothetical: { type: 'boolean' } }, ['replicas', 'hosts']),
      },
    },
    async (req) => allocate(ctx.client, req.params.stack, req.params.tag, req.params.node),
  );

  app.get<{ Params: { stack: string } }>(
    '/v1/env/:stack',
    { schema: { params: params({ stack: NAME }), querystring: noQuery, response: okObject({ overrides: { type: 'object', additionalProperties: { type: 'string' } } }, ['overrides']) } },
    async (req) => {
      const stack = await stackOr404(ctx, req.params.stack);
      const current = stack.releases.find((r) => r.tag === stack.current);
      const nodes = dict<Record<string, string>>();
      for (const [node, t] of Object.entries(current?.nodes ?? {})) nodes[node] = t.env;
      return { stack: stack.name, release: stack.current, overrides: stack.env ?? {}, nodes };
    },
  );

  app.get<{ Querystring: { stack?: string } }>(
    '/v1/ps',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { stack: NAME } },
        response: okArray({ stack: { type: 'string' }, tag: { type: 'string' }, node: { type: 'string' }, instance: { type: 'integer' }, state: { type: 'string' } }, ['stack', 'state']),
      },
    },
    async (req) => {
      const access = accessOf(req);
      const jobs = (await listJobs(ctx.client, req.query.stack)).filter((j) => access.covers(j.stack));
      // Cron nodes have no /proc jobs: one row each with the last finished run (a failed run shows here). Only in ps.
      const stacks = (await listStacks(ctx.client)).filter((st) => (req.query.stack === undefined || st.name === req.query.stack) && access.covers(st.name));
      return [...jobs, ...(await cronPsRows(ctx.client, stacks))];
    },
  );
}

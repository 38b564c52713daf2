/**
 * Host-local routes: what only this host's Docker Engine knows. The API that
 * a user talks to calls these on the host running each replica (lib/api/peers.ts):
 *
 *   GET /v1/local/logs/:stack/:tag/:node/:instance?follow=&tail=
 *       NDJSON {time, stream, line} from the replica's container here
 *   GET /v1/local/containers?stack=
 *       the viking containers this host runs
 *
 * They need a token like every route, and only ever touch containers
 * labelled with this cluster's id and this host's name.
 */
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import { listOwned, type Owner } from '../slave/containers.js';
import { ensureClusterId } from '../store/cluster-id.js';
import type { JobId } from '../store/records.js';
import { containerLogLines, findJobContainer } from './container-logs.js';
import { liveHosts, peerJson } from './peers.js';
import { writeTexts } from './stream-out.js';
import { FLAG, NAME, TAG, TAIL, errorResponses, flagOn, okArray, params } from './schemas.js';
import type { ApiContext } from './server.js';
import { accessOf } from '../auth/hook.js';

export interface LocalContainer {
  id: string;
  name: string;
  host: string;
  stack: string;
  tag: string;
  node: string;
  instance: number;
  running: boolean;
}

/** This host of this cluster: whose containers the local routes may see. */
export async function ownerOf(ctx: ApiContext): Promise<Owner> {
  ctx.clusterId ??= await ensureClusterId(ctx.client);
  return { cluster: ctx.clusterId, host: ctx.hostName };
}

export async function localContainers(ctx: ApiContext, stack?: string): Promise<LocalContainer[]> {
  const owned = await listOwned(ctx.docker, await ownerOf(ctx));
  return owned
    .filter((c) => stack === undefined || c.job.stack === stack)
    .map((c) => ({ id: c.id.slice(0, 12), name: c.name, host: ctx.hostName, ...c.job, running: c.running }));
}

/**
 * Containers of a stack on every live host: this one from Docker directly,
 * the others through their API. A host that cannot be asked counts as one
 * unknown container, so nobody is told "all gone" without seeing it.
 */
export async function containersEverywhere(ctx: ApiContext, stack: string, token: string | undefined): Promise<number> {
  const hosts = await liveHosts(ctx.client);
  const counts = await Promise.all(
    [...hosts.values()].map(async (h) => {
      if (h.name === ctx.hostName) return (await localContainers(ctx, stack)).length;
      try {
        return (await peerJson<LocalContainer[]>(h, `/v1/local/containers?stack=${encodeURIComponent(stack)}`, token)).length;
      } catch {
        return 1;
      }
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

export function registerLocalRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { stack?: string } }>(
    '/v1/local/containers',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { stack: NAME } },
        response: okArray({ id: { type: 'string' }, stack: { type: 'string' }, running: { type: 'boolean' } }, ['id', 'stack']),
      },
    },
    async (req) => {
      const access = accessOf(req);
      return (await localContainers(ctx, req.query.stack)).filter((c) => access.covers(c.stack));
    },
  );

  app.get<{ Params: { stack: string; tag: string; node: string; instance: number }; Querystring: { follow?: string; tail?: number | 'all' } }>(
    '/v1/local/logs/:stack/:tag/:node/:instance',
    {
      schema: {
        params: params({ stack: NAME, tag: TAG, node: NAME, instance: { type: 'integer', minimum: 1 } }),
        querystring: { type: 'object', additionalProperties: false, properties: { follow: FLAG, tail: TAIL } },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const job = { stack: req.params.stack, tag: req.params.tag, node: req.params.node, instance: req.params.instance };
      const id = await findJobContainer(ctx.docker, await ownerOf(ctx), job);
      if (!id) throw new VikingError('VIKING_E_NOT_FOUND', `no container of ${job.node}.${job.instance} (${job.tag}) on ${ctx.hostName}`);
      const abort = new AbortController();
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      raw.on('close', () => abort.abort());
      const follow = req.query.follow !== undefined && flagOn(req.query.follow);
      async function* texts(): AsyncGenerator<string> {
        for await (const l of containerLogLines(ctx.docker, id!, { follow, tail: req.query.tail ?? 100, signal: abort.signal })) yield `${JSON.stringify(l)}\n`;
      }
      // Backpressure all the way: a caller that stops reading pauses Docker's stream here.
      const complete = await writeTexts(raw, texts()).catch(() => false);
      abort.abort();
      if (complete) raw.end();
      else raw.destroy();
    },
  );
}

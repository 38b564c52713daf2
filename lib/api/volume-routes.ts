/**
 * Volumes (issue 15), on the host that holds them (lib/ops/volume-ops.ts):
 *
 *   GET  /v1/volumes?stack=                              every live host's volumes of the token's stacks
 *   GET  /v1/volume/:stack/:node/backup?path=/data       a tar of the volume, streamed from its host
 *   POST /v1/volume/:stack/:node/restore?path=/data      (application/x-tar body) stop the node there,
 *                                                        replace the volume's content, start it again
 *   GET  /v1/local/volumes, GET /v1/local/volume/.../backup, POST /v1/local/volume/.../restore
 *                                                        the same on this host only
 *
 * A node's volume host is its pin (`/fixed/<stack>/<node>`, written when a
 * volume node is first placed), or the host of its first replica. Backup and
 * restore read and write a stack's data: they need `stack:exec`, like exec.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES, VikingError, type ErrorCode } from '../errors.js';
import { accessOf, bearerOf } from '../auth/hook.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, REGISTRY_KEY, fixedKey } from '../store/keys.js';
import { placementOf } from '../store/placements.js';
import type { HostRecord, StackRecord } from '../store/records.js';
import { liveNodeSpec } from '../ops/node-spec.js';
import { backupHere, restoreHere, volumePathOf, volumesHere, type VolumeRow } from '../ops/volume-ops.js';
import { ownerOf } from './local-routes.js';
import { liveHosts, peerFetch, peerJson } from './peers.js';
import { NAME, params } from './schemas.js';
import type { ApiContext } from './server.js';

const PATH = { type: 'string', pattern: '^/[^\\u0000]*$', maxLength: 4096 } as const;
const pathQuery = { type: 'object', additionalProperties: false, required: ['path'], properties: { path: PATH } } as const;
const stackQuery = { type: 'object', additionalProperties: false, properties: { stack: NAME } } as const;

interface NodeParams {
  stack: string;
  node: string;
}

/** The stacks (name -> incarnation) a listing covers: the one asked for, or every one the token may see. */
async function stacksFor(ctx: ApiContext, covers: (s: string) => boolean, only: string | undefined): Promise<Map<string, string | undefined>> {
  const read = await readPrefix<StackRecord>(ctx.client, PREFIX.stack);
  const out = new Map<string, string | undefined>();
  for (const e of read.entries) if (e.value && (only === undefined || e.value.name === only) && covers(e.value.name)) out.set(e.value.name, e.value.incarnation);
  if (only !== undefined && out.size === 0) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${only}; viking stacks lists them`);
  return out;
}

/** The live host that holds the node's volume at `given`. */
async function volumeHost(ctx: ApiContext, p: NodeParams, given: string): Promise<HostRecord | 'here'> {
  const { spec } = await liveNodeSpec(ctx.client, p.stack, p.node);
  const mountPath = volumePathOf(spec, given);
  const name =
    (await ctx.client.get(fixedKey(p.stack, p.node)).string()) ?? (await placementOf(ctx.client, { stack: p.stack, tag: spec.tag, node: p.node, instance: 1 }))?.host;
  if (!name) throw new VikingError('VIKING_E_VOLUME_NOT_PLACED', `${p.stack}/${p.node}:${mountPath} has no host yet: the node was never placed; push or scale it first`);
  if (name === ctx.hostName) return 'here';
  const host = (await liveHosts(ctx.client)).get(name);
  if (!host) throw new VikingError('VIKING_E_API_UNREACHABLE', `host ${name}, which holds ${p.stack}/${p.node}:${mountPath}, is down; its volume cannot be read until it is back`);
  return host;
}

const registryOf = async (ctx: ApiContext): Promise<string | undefined> => (await ctx.client.get(REGISTRY_KEY).string()) ?? undefined;

async function sendBackupHere(ctx: ApiContext, reply: FastifyReply, p: NodeParams, given: string): Promise<FastifyReply> {
  const { spec } = await liveNodeSpec(ctx.client, p.stack, p.node);
  const b = await backupHere(ctx.docker, await ownerOf(ctx), spec, given, await registryOf(ctx));
  b.stream.once('end', () => void b.done());
  b.stream.once('close', () => void b.done());
  reply.raw.once('close', () => void b.done());
  return reply.header('content-type', 'application/x-tar').header('x-viking-volume', b.volume).header('x-viking-host', ctx.hostName).send(b.stream);
}

async function restoreBody(body: unknown): Promise<Readable> {
  if (body && typeof (body as Readable).pipe === 'function') return body as Readable;
  throw new VikingError('VIKING_E_BAD_REQUEST', 'send the archive as the body, with content-type application/x-tar (viking volume restore STACK NODE PATH < file.tar)');
}

export function registerVolumeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { stack?: string } }>('/v1/local/volumes', { schema: { querystring: stackQuery } }, async (req) => {
    const access = accessOf(req);
    return volumesHere(ctx.docker, ctx.hostName, await stacksFor(ctx, (s) => access.covers(s), req.query.stack));
  });

  app.get<{ Querystring: { stack?: string } }>('/v1/volumes', { schema: { querystring: stackQuery } }, async (req) => {
    const access = accessOf(req);
    const stacks = await stacksFor(ctx, (s) => access.covers(s), req.query.stack);
    const hosts = await liveHosts(ctx.client);
    const q = req.query.stack ? `?stack=${encodeURIComponent(req.query.stack)}` : '';
    const lists = await Promise.all(
      [...hosts.values()].map(async (h): Promise<VolumeRow[]> => {
        if (h.name === ctx.hostName) return volumesHere(ctx.docker, ctx.hostName, stacks);
        return peerJson<VolumeRow[]>(h, `/v1/local/volumes${q}`, bearerOf(req)).catch(() => []);
      }),
    );
    // One Docker Engine can serve several hosts (tests, labs): a volume is listed once, under its pin's host when known.
    const seen = new Map<string, VolumeRow>();
    for (const r of lists.flat()) {
      const pin = await ctx.client.get(fixedKey(r.stack, r.node)).string();
      const prev = seen.get(r.volume);
      if (!prev) seen.set(r.volume, r);
      else if (pin === r.host && prev.host !== pin) seen.set(r.volume, { ...r, size: r.size ?? prev.size });
      else if (prev.size === null) prev.size = r.size;
    }
    return [...seen.values()].sort((a, b) => `${a.stack}/${a.node}/${a.path}/${a.host}`.localeCompare(`${b.stack}/${b.node}/${b.path}/${b.host}`));
  });

  app.get<{ Params: NodeParams; Querystring: { path: string } }>(
    '/v1/local/volume/:stack/:node/backup',
    { schema: { params: params({ stack: NAME, node: NAME }), querystring: pathQuery } },
    async (req, reply) => sendBackupHere(ctx, reply, req.params, req.query.path),
  );

  app.get<{ Params: NodeParams; Querystring: { path: string } }>(
    '/v1/volume/:stack/:node/backup',
    { schema: { params: params({ stack: NAME, node: NAME }), querystring: pathQuery } },
    async (req, reply) => {
      const host = await volumeHost(ctx, req.params, req.query.path);
      if (host === 'here') return sendBackupHere(ctx, reply, req.params, req.query.path);
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      const res = await peerFetch(host, `/v1/local/volume/${req.params.stack}/${req.params.node}/backup?path=${encodeURIComponent(req.query.path)}`, bearerOf(req), abort.signal);
      if (!res.body) throw new VikingError('VIKING_E_INTERNAL', `host ${host.name} sent no archive`);
      return reply
        .header('content-type', 'application/x-tar')
        .header('x-viking-volume', res.headers.get('x-viking-volume') ?? '')
        .header('x-viking-host', host.name)
        .send(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>));
    },
  );

  app.post<{ Params: NodeParams; Querystring: { path: string } }>(
    '/v1/local/volume/:stack/:node/restore',
    { schema: { params: params({ stack: NAME, node: NAME }), querystring: pathQuery } },
    async (req) => {
      const archive = await restoreBody(req.body);
      const { spec } = await liveNodeSpec(ctx.client, req.params.stack, req.params.node);
      const result = await restoreHere(ctx.docker, await ownerOf(ctx), spec, req.query.path, archive, { registry: await registryOf(ctx), hold: ctx.holdNode });
      ctx.log?.(`volume: restored ${result.bytes} bytes into ${result.volume} (${result.stack}/${result.node}:${result.path}), ${result.stopped} container(s) restarted`);
      return result;
    },
  );

  app.post<{ Params: NodeParams; Querystring: { path: string } }>(
    '/v1/volume/:stack/:node/restore',
    { schema: { params: params({ stack: NAME, node: NAME }), querystring: pathQuery } },
    async (req) => {
      const archive = await restoreBody(req.body);
      const host = await volumeHost(ctx, req.params, req.query.path);
      if (host === 'here') {
        const { spec } = await liveNodeSpec(ctx.client, req.params.stack, req.params.node);
        return restoreHere(ctx.docker, await ownerOf(ctx), spec, req.query.path, archive, { registry: await registryOf(ctx), hold: ctx.holdNode });
      }
      const token = bearerOf(req);
      let res: Response;
      try {
        res = await fetch(`${host.api}/v1/local/volume/${req.params.stack}/${req.params.node}/restore?path=${encodeURIComponent(req.query.path)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-tar', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: archive as unknown as RequestInit['body'],
          duplex: 'half',
        } as RequestInit);
      } catch (err) {
        throw new VikingError('VIKING_E_API_UNREACHABLE', `host ${host.name}'s API at ${host.api} did not answer (${(err as Error).message})`);
      }
      const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
      if (!res.ok) {
        const vk = (body.code && Object.hasOwn(ERROR_CODES, body.code) ? body.code : 'VIKING_E_INTERNAL') as ErrorCode;
        throw new VikingError(vk, `host ${host.name}: ${body.message ?? `HTTP ${res.status}`}`);
      }
      return body;
    },
  );
}

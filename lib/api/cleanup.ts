/**
 * What `viking rm` leaves to each host once the stack's containers are gone:
 * its images on that host's Docker Engine, and its volumes, kept and reported
 * unless `--volumes` asked to remove them.
 *
 *   POST /v1/local/cleanup {stack, incarnation?, images, removeVolumes}
 *
 * Only what this cluster made is touched: the image references the builder
 * recorded under /images/<stack>/ (given by the caller), and the volumes of
 * the stack's incarnation (a random id only this cluster knows). The API a
 * user called asks every live host, as it asks them for their containers.
 */
import type { FastifyInstance } from 'fastify';
import type Docker from 'dockerode';
import type { HostRecord } from '../store/records.js';
import { VikingError } from '../errors.js';
import { stackVolumes, type StackVolume } from '../slave/volumes.js';
import { liveHosts } from './peers.js';
import { NAME, noQuery, okObject } from './schemas.js';
import type { ApiContext } from './server.js';

export interface CleanupRequest {
  stack: string;
  /** The stack's incarnation; without one (a stack older than incarnations) no volume is looked at. */
  incarnation?: string;
  /** Docker references of every image built for the stack. */
  images: string[];
  removeVolumes: boolean;
}

export interface HostCleanup {
  host: string;
  images: { removed: string[]; kept: Array<{ ref: string; reason: string }> };
  volumes: { removed: StackVolume[]; kept: StackVolume[] };
  /** Set when the host could not be asked. */
  error?: string;
}

/**
 * Removes the given images from this engine, children before parents: a round
 * removes what it can and the next retries the rest, while rounds make
 * progress. An image a container still uses (another stack's) is kept.
 */
export async function removeImages(docker: Docker, refs: string[]): Promise<HostCleanup['images']> {
  const removed: string[] = [];
  const failed = new Map<string, string>();
  let left = [...new Set(refs)];
  for (let round = 0; round < 8 && left.length > 0; round++) {
    const next: string[] = [];
    for (const ref of left) {
      try {
        await docker.getImage(ref).remove();
        removed.push(ref);
        failed.delete(ref);
      } catch (err) {
        const e = err as { statusCode?: number; json?: { message?: string }; message?: string };
        if (e.statusCode === 404) continue; // never on this host
        failed.set(ref, e.json?.message ?? e.message ?? 'refused');
        next.push(ref);
      }
    }
    if (next.length === left.length) break;
    left = next;
  }
  return { removed, kept: [...failed].map(([ref, reason]) => ({ ref, reason })) };
}

export async function localCleanup(docker: Docker, host: string, req: CleanupRequest): Promise<HostCleanup> {
  const images = await removeImages(docker, req.images);
  const volumes: HostCleanup['volumes'] = { removed: [], kept: [] };
  if (req.incarnation !== undefined) {
    for (const v of await stackVolumes(docker, req.stack, req.incarnation)) {
      if (!req.removeVolumes) {
        volumes.kept.push(v);
        continue;
      }
      try {
        await docker.getVolume(v.name).remove();
        volumes.removed.push(v);
      } catch {
        volumes.kept.push(v);
      }
    }
  }
  return { host, images, volumes };
}

async function askPeer(host: HostRecord, req: CleanupRequest, token: string | undefined): Promise<HostCleanup> {
  try {
    const res = await fetch(`${host.api}/v1/local/cleanup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(req),
      signal: AbortSignal.timeout(60_000),
    });
    const body = (await res.json()) as HostCleanup & { message?: string };
    if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
    return body;
  } catch (err) {
    return { host: host.name, images: { removed: [], kept: [] }, volumes: { removed: [], kept: [] }, error: (err as Error).message };
  }
}

/** Every live host cleans up after the stack: this one directly, the others through their API. */
export async function cleanupEverywhere(ctx: ApiContext, req: CleanupRequest, token: string | undefined): Promise<HostCleanup[]> {
  const hosts = await liveHosts(ctx.client);
  const answers = await Promise.all(
    [...hosts.values()].map((h) => (h.name === ctx.hostName ? localCleanup(ctx.docker, ctx.hostName, req) : askPeer(h, req, token))),
  );
  if (!hosts.has(ctx.hostName)) answers.push(await localCleanup(ctx.docker, ctx.hostName, req));
  return answers.sort((a, b) => a.host.localeCompare(b.host));
}

/**
 * Deletes the stack's images from the cluster registry (delete is enabled
 * there), by manifest digest. Best effort: a registry that cannot be reached
 * or refuses leaves them, and rm says how many went.
 */
export async function removeFromRegistry(registry: string, refs: string[]): Promise<{ removed: number; failed: number }> {
  let removed = 0;
  let failed = 0;
  for (const ref of new Set(refs)) {
    if (!ref.startsWith(`${registry}/`)) continue;
    const rest = ref.slice(registry.length + 1);
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) continue;
    const repo = rest.slice(0, colon);
    const tag = rest.slice(colon + 1);
    try {
      const head = await fetch(`http://${registry}/v2/${repo}/manifests/${encodeURIComponent(tag)}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
        signal: AbortSignal.timeout(10_000),
      });
      const digest = head.headers.get('docker-content-digest');
      if (!head.ok || !digest) {
        if (head.status !== 404) failed++;
        continue;
      }
      const del = await fetch(`http://${registry}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
      if (del.ok || del.status === 404) removed++;
      else failed++;
    } catch {
      failed++;
    }
  }
  return { removed, failed };
}

export function registerCleanupRoute(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: CleanupRequest }>(
    '/v1/local/cleanup',
    {
      schema: {
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['stack', 'images', 'removeVolumes'],
          properties: {
            stack: NAME,
            incarnation: { type: 'string', pattern: '^[0-9a-f]{16}$' },
            images: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 512 } },
            removeVolumes: { type: 'boolean' },
          },
        },
        response: okObject({ host: { type: 'string' } }, ['host']),
      },
    },
    async (req) => {
      // Only images this stack's builder names: `<registry>/<stack>/...` or `viking-<stack>/...`.
      const { stack } = req.body;
      for (const ref of req.body.images) {
        if (!ref.startsWith(`viking-${stack}/`) && !ref.includes(`/${stack}/`)) {
          throw new VikingError('VIKING_E_BAD_REQUEST', `${ref} is not an image built for ${stack}`);
        }
      }
      return localCleanup(ctx.docker, ctx.hostName, req.body);
    },
  );
}

/**
 * What each replica uses, from the Docker Engine of the host that runs it:
 * CPU % (of one core; 200% is two cores busy), memory against its limit,
 * and when it started. `viking ps --stats` and `viking top` show it beside
 * the jobs' states and restarts; /metrics has the same figures as gauges.
 *
 *   GET /v1/local/resources?stack=   this host's running replicas
 *   GET /v1/resources?stack=         every live host's, through their APIs
 */
import type Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { accessOf } from '../auth/hook.js';
import { listOwned } from '../slave/containers.js';
import { liveHosts, peerJson } from './peers.js';
import { ownerOf } from './local-routes.js';
import { NAME } from './schemas.js';
import type { ApiContext } from './server.js';

export interface ReplicaResources {
  host: string;
  stack: string;
  tag: string;
  node: string;
  instance: number;
  container: string;
  /** CPU used over the engine's last sampling period, % of one core. */
  cpuPct: number | null;
  memoryBytes: number | null;
  /** The container's memory limit (0: none). */
  memoryLimitBytes: number | null;
  startedAt: string | null;
  /** The kernel killed a process of it for memory (the container may still run). */
  oomKilled: boolean;
}

interface EngineStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: { cache?: number; inactive_file?: number } };
}

/** CPU % as `docker stats` computes it: container time over system time, times the CPUs. */
export function cpuPercent(s: EngineStats): number | null {
  const cpu = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const system = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats?.online_cpus ?? 1;
  if (!(system > 0) || !(s.precpu_stats?.system_cpu_usage)) return null;
  return Math.round((cpu / system) * cpus * 10_000) / 100;
}

/** Memory in use as `docker stats` shows it: usage without the page cache. */
export function memoryUsed(s: EngineStats): number | null {
  const usage = s.memory_stats?.usage;
  if (usage === undefined) return null;
  const cache = s.memory_stats?.stats?.inactive_file ?? s.memory_stats?.stats?.cache ?? 0;
  return Math.max(0, usage - cache);
}

/** This host's running replicas with their usage (one Engine stats call each, in parallel). */
export async function localResources(docker: Docker, ctx: ApiContext, keep: (stack: string) => boolean): Promise<ReplicaResources[]> {
  const owned = (await listOwned(docker, await ownerOf(ctx))).filter((c) => c.running && keep(c.job.stack));
  return Promise.all(
    owned.map(async (c): Promise<ReplicaResources> => {
      const container = docker.getContainer(c.id);
      const [stats, info] = await Promise.all([
        container.stats({ stream: false }).then((s) => s as unknown as EngineStats, () => undefined),
        container.inspect().catch(() => undefined),
      ]);
      const limit = info?.HostConfig?.Memory;
      return {
        host: ctx.hostName,
        ...c.job,
        container: c.id.slice(0, 12),
        cpuPct: stats ? cpuPercent(stats) : null,
        memoryBytes: stats ? memoryUsed(stats) : null,
        memoryLimitBytes: limit === undefined ? null : limit,
        startedAt: info?.State?.StartedAt ?? null,
        oomKilled: info?.State?.OOMKilled === true,
      };
    }),
  );
}

/** How long one sample of this host's replicas serves every caller. */
export const RESOURCES_TTL_MS = 2000;

/**
 * This host's replicas' usage, sampled at most once per `ttlMs` whoever asks:
 * /metrics scrapes (often several Prometheus servers at once) and
 * /v1/local/resources (`viking ps --stats`, `viking top` on every host) share
 * one sample, and callers that come while a sample is being taken wait for
 * that one. So a host makes one Docker stats call per container per TTL,
 * however many scrapes and tabs ask. Callers filter the sample by stack.
 */
export class ResourceSampler {
  private sample: { at: number; value: Promise<ReplicaResources[]> } | undefined;

  constructor(
    private readonly read: () => Promise<ReplicaResources[]>,
    private readonly ttlMs = RESOURCES_TTL_MS,
  ) {}

  get(): Promise<ReplicaResources[]> {
    const now = performance.now();
    if (this.sample && now - this.sample.at < this.ttlMs) return this.sample.value;
    const value = this.read();
    const sample = { at: now, value };
    this.sample = sample;
    // A failed sample is not kept: the next caller tries again.
    value.catch(() => {
      if (this.sample === sample) this.sample = undefined;
    });
    return value;
  }
}

const QUERY = { type: 'object', additionalProperties: false, properties: { stack: NAME } } as const;

/** This host's replicas of the stacks `keep` accepts, from the shared sample when the API has one. */
async function sampledResources(ctx: ApiContext, keep: (stack: string) => boolean): Promise<ReplicaResources[]> {
  const all = ctx.resources ? await ctx.resources.get() : await localResources(ctx.docker, ctx, () => true);
  return all.filter((r) => keep(r.stack));
}

export function registerResourceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { stack?: string } }>('/v1/local/resources', { schema: { querystring: QUERY } }, async (req) => {
    const access = accessOf(req);
    const stack = req.query.stack;
    return sampledResources(ctx, (s) => access.covers(s) && (stack === undefined || s === stack));
  });

  app.get<{ Querystring: { stack?: string } }>('/v1/resources', { schema: { querystring: QUERY } }, async (req) => {
    const access = accessOf(req);
    const stack = req.query.stack;
    const keep = (s: string): boolean => access.covers(s) && (stack === undefined || s === stack);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const hosts = [...(await liveHosts(ctx.client)).values()];
    const lists = await Promise.all(
      hosts.map(async (h) => {
        try {
          const list = h.name === ctx.hostName ? await sampledResources(ctx, keep) : await peerJson<ReplicaResources[]>(h, `/v1/local/resources${stack ? `?stack=${encodeURIComponent(stack)}` : ''}`, token, AbortSignal.timeout(5000));
          return list.filter((r) => keep(r.stack));
        } catch {
          return [];
        }
      }),
    );
    return lists.flat();
  });
}

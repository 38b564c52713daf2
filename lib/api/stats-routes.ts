/**
 * Traffic of the routers, for `viking stats`:
 *
 *   GET /v1/local/traffic?stack=   this host's router counters, summed over its
 *                                  worker processes (traffic-counters.ts)
 *   GET /v1/stats?stack=           the same from every live host, summed: the
 *                                  API asked calls each host's /v1/local/traffic
 *                                  with the caller's token (peers.ts)
 *
 * Both keep only the stacks the token covers. A host that cannot be asked is
 * named in `hosts` with its error; the sum is then of the others, and says so.
 */
import type { FastifyInstance } from 'fastify';
import { accessOf } from '../auth/hook.js';
import { emptyDump, sumDumps, type TrafficDump } from '../router/traffic-counters.js';
import { liveHosts, peerJson } from './peers.js';
import { NAME } from './schemas.js';
import type { ApiContext } from './server.js';

export interface LocalTraffic {
  host: string;
  at: string;
  traffic: TrafficDump;
}

export interface ClusterTraffic {
  at: string;
  /** Every live host and whether its counters are in the sum. */
  hosts: Array<{ host: string; ok: boolean; error?: string }>;
  traffic: TrafficDump;
}

const QUERY = { type: 'object', additionalProperties: false, properties: { stack: NAME } } as const;

function bearer(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

/** This host's counters, only of the stacks `keep` accepts. */
export async function localTraffic(ctx: ApiContext, keep: (stack: string) => boolean): Promise<LocalTraffic> {
  const dump = ctx.routerTraffic ? await ctx.routerTraffic() : emptyDump();
  return { host: ctx.hostName, at: new Date().toISOString(), traffic: { slots: dump.slots.filter((s) => keep(s.stack)), unrouted: dump.unrouted } };
}

export function registerStatsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { stack?: string } }>('/v1/local/traffic', { schema: { querystring: QUERY } }, async (req) => {
    const access = accessOf(req);
    const stack = req.query.stack;
    return localTraffic(ctx, (s) => access.covers(s) && (stack === undefined || s === stack));
  });

  app.get<{ Querystring: { stack?: string } }>('/v1/stats', { schema: { querystring: QUERY } }, async (req): Promise<ClusterTraffic> => {
    const access = accessOf(req);
    const stack = req.query.stack;
    const keep = (s: string): boolean => access.covers(s) && (stack === undefined || s === stack);
    const token = bearer(req.headers.authorization);
    const query = stack === undefined ? '' : `?stack=${encodeURIComponent(stack)}`;
    const hosts = [...(await liveHosts(ctx.client)).values()];
    const answers = await Promise.all(
      hosts.map(async (h): Promise<{ host: string; ok: boolean; error?: string; dump?: TrafficDump }> => {
        try {
          const local = h.name === ctx.hostName ? await localTraffic(ctx, keep) : await peerJson<LocalTraffic>(h, `/v1/local/traffic${query}`, token, AbortSignal.timeout(3000));
          return { host: h.name, ok: true, dump: { slots: local.traffic.slots.filter((s) => keep(s.stack)), unrouted: local.traffic.unrouted } };
        } catch (err) {
          return { host: h.name, ok: false, error: (err as Error).message };
        }
      }),
    );
    const dumps = answers.flatMap((a) => (a.dump ? [a.dump] : []));
    return {
      at: new Date().toISOString(),
      hosts: answers.map((a) => ({ host: a.host, ok: a.ok, ...(a.error ? { error: a.error } : {}) })).sort((a, b) => a.host.localeCompare(b.host)),
      traffic: sumDumps(dumps),
    };
  });
}

/**
 * Access logs of the routers (`viking logs STACK [NODE] --access`):
 *
 *   GET /v1/local/access/:stack?node=&tail=&follow=   this host's router's
 *       lines (lib/router/access-hub.ts): the last `tail` kept, then, with
 *       follow, new ones as they come
 *   GET /v1/access/:stack?node=&tail=&follow=         the same from every live
 *       host, merged in time order: any router may serve any domain, so each
 *       host has only its own share of a stack's requests
 *
 * Both answer NDJSON, one AccessLine (lib/router/access-log.ts) a line, and
 * are built from the pieces of `viking logs`: peers.ts asks the other hosts
 * with the caller's token, log-merge.ts merges in time order holding one line
 * per host, stream-out.ts writes with backpressure. A reader that stops
 * reading stops the merge, then each host's answer; the host's follower
 * queue then fills and drops lines, counted in a `{"dropped": N}` line,
 * instead of growing any process.
 */
import type { FastifyInstance } from 'fastify';
import { bearerOf } from '../auth/hook.js';
import { VikingError } from '../errors.js';
import { readJSON } from '../store/client.js';
import { stackKey } from '../store/keys.js';
import type { StackRecord } from '../store/records.js';
import { KEEP } from '../router/access-hub.js';
import { mergeLogs } from './log-merge.js';
import { liveHosts, peerLines } from './peers.js';
import { writeTexts } from './stream-out.js';
import { FLAG, NAME, flagOn, params, streamResponses } from './schemas.js';
import type { ApiContext } from './server.js';

interface AccessQuery {
  node?: string;
  tail?: number;
  follow?: string;
}

const QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { node: NAME, tail: { type: 'integer', minimum: 0, maximum: KEEP }, follow: FLAG },
} as const;

/** Any line of the access log, as the merge needs it. */
interface Timed {
  time: string;
  [k: string]: unknown;
}

/** This host's lines of a stack: the kept tail, then (follow) new ones until the signal aborts. */
async function* localLines(ctx: ApiContext, stack: string, q: AccessQuery, follow: boolean, signal: AbortSignal): AsyncGenerator<string> {
  const hub = ctx.accessLog;
  if (!hub) return;
  // Subscribe before reading the tail, so no line falls between the two.
  const live = follow ? hub.follow(stack, q.node, signal) : undefined;
  try {
    for (const line of hub.tail(stack, q.node, q.tail ?? 100)) yield line;
    if (live) yield* live;
  } finally {
    await live?.return(undefined);
  }
}

/** Answers NDJSON texts with backpressure; ends or cuts the answer as writeTexts says. */
async function stream(raw: import('node:http').ServerResponse, abort: AbortController, texts: AsyncIterable<string>): Promise<void> {
  raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  // A follow may wait long for its first line: the caller (a peer host's API too) gets the head now.
  raw.flushHeaders();
  const complete = await writeTexts(raw, texts).catch(() => false);
  abort.abort();
  if (complete) raw.end();
  else raw.destroy();
}

export function registerAccessRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { stack: string }; Querystring: AccessQuery }>(
    '/v1/local/access/:stack',
    { schema: { params: params({ stack: NAME }), querystring: QUERY, response: streamResponses } },
    async (req, reply) => {
      const follow = req.query.follow !== undefined && flagOn(req.query.follow);
      reply.hijack();
      const abort = new AbortController();
      reply.raw.on('close', () => abort.abort());
      async function* texts(): AsyncGenerator<string> {
        for await (const line of localLines(ctx, req.params.stack, req.query, follow, abort.signal)) yield `${line}\n`;
      }
      await stream(reply.raw, abort, texts());
    },
  );

  app.get<{ Params: { stack: string }; Querystring: AccessQuery }>(
    '/v1/access/:stack',
    { schema: { params: params({ stack: NAME }), querystring: QUERY, response: streamResponses } },
    async (req, reply) => {
      const { stack } = req.params;
      const q = req.query;
      const follow = q.follow !== undefined && flagOn(q.follow);
      const record = await readJSON<StackRecord>(ctx.client, stackKey(stack));
      if (!record) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${stack}; viking stacks lists them`);
      const logged = Array.isArray(record.accessLog) ? record.accessLog : [];
      if (q.node !== undefined ? !logged.includes(q.node) : logged.length === 0) {
        const what = q.node !== undefined ? `${stack}/${q.node}` : `no node of ${stack}`;
        const verb = q.node !== undefined ? ' does not log its requests' : ' logs its requests';
        throw new VikingError('VIKING_E_NOT_FOUND', `${what}${verb} in the live release; add access_log: true to the node in the Vikingfile and push${logged.length ? ` (logged now: ${logged.join(', ')})` : ''}`);
      }
      const hosts = [...(await liveHosts(ctx.client)).values()].sort((a, b) => a.name.localeCompare(b.name));
      const token = bearerOf(req);
      reply.hijack();
      const abort = new AbortController();
      reply.raw.on('close', () => abort.abort());
      const query = new URLSearchParams({ tail: String(q.tail ?? 100) });
      if (q.node !== undefined) query.set('node', q.node);
      if (follow) query.set('follow', '1');

      /** One host's lines; a host that cannot be asked becomes one `error` line. */
      async function* hostLines(name: string): AsyncGenerator<Timed> {
        try {
          if (name === ctx.hostName) {
            for await (const line of localLines(ctx, stack, q, follow, abort.signal)) yield JSON.parse(line) as Timed;
            return;
          }
          const host = hosts.find((h) => h.name === name)!;
          for await (const v of peerLines(host, `/v1/local/access/${stack}?${query}`, token, abort.signal)) yield v as Timed;
        } catch (err) {
          if (!abort.signal.aborted) yield { time: new Date().toISOString(), router: name, error: (err as Error).message };
        }
      }
      const merged = mergeLogs(hosts.map((h) => hostLines(h.name)), { time: (l) => l.time, ...(follow ? { settleMs: 300 } : {}) });
      async function* texts(): AsyncGenerator<string> {
        for await (const l of merged) yield `${JSON.stringify(l)}\n`;
      }
      await stream(reply.raw, abort, texts());
    },
  );
}

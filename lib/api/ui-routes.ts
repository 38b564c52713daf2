/**
 * The dashboard (ui/, bundled by scripts/build-ui.mjs into dist/ui) and the
 * routes only it needs; everything it does goes through the /v1 routes with
 * the same auth, codes and errors.
 *
 *   GET    /ui, /ui/*         the page, its script and its style (public: no secret in them)
 *   POST   /ui/session        Authorization: Bearer TOKEN -> the session cookies (lib/auth/session.ts)
 *   DELETE /ui/session        clears them (a cookie request: needs the CSRF header)
 *   GET    /v1/events         server-sent events: what changed (lib/api/live-feed.ts), one stream per tab
 *   GET    /v1/capacity       every live host's memory, CPU and containers reserved against its capacity
 *
 * The page is served with a strict Content-Security-Policy: scripts, styles
 * and connections from this origin only, no inline script or style, no
 * frames, no plugins. Nothing is loaded from anywhere else.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { VikingError } from '../errors.js';
import { accessOf } from '../auth/hook.js';
import { endSession, startSession } from '../auth/session.js';
import { readSnapshot, toPlanHosts } from '../dispatch/snapshot.js';
import { toHostState } from '../dowding/host-state.js';
import { LiveFeed, type LiveChange } from './live-feed.js';
import { noQuery, okArray, okObject } from './schemas.js';
import type { ApiContext } from './server.js';
import type { CapacityRow } from './wire.js';

/** dist/ui, next to dist/lib (this file is dist/lib/api/ui-routes.js once built). */
export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The only files served, and their types: nothing else in the folder is reachable. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** Every SSE heartbeat keeps proxies and the browser from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

export function registerUiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const cache = new Map<string, Buffer>();
  const serve = async (file: string, reply: FastifyReply): Promise<FastifyReply> => {
    const type = Object.prototype.hasOwnProperty.call(FILES, file) ? FILES[file] : undefined;
    if (!type) throw new VikingError('VIKING_E_NOT_FOUND', `the dashboard has no file ${file.slice(0, 80)}`);
    let body = cache.get(file);
    if (!body) {
      body = await readFile(path.join(UI_DIR, file)).catch(() => {
        throw new VikingError('VIKING_E_NOT_FOUND', `the dashboard is not built (${UI_DIR}/${file} is missing); run npm run build`);
      });
      cache.set(file, body);
    }
    return reply
      .header('content-type', type)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', file === 'index.html' ? 'no-store' : 'no-cache')
      .send(body);
  };
  app.get('/ui', { schema: { querystring: noQuery } }, async (_req, reply) => serve('index.html', reply));
  app.get<{ Params: { '*': string } }>('/ui/*', async (req, reply) => serve(req.params['*'] || 'index.html', reply));

  app.post(
    '/ui/session',
    { schema: { querystring: noQuery, response: okObject({ name: { type: 'string' }, role: { type: 'string' }, csrf: { type: 'string' } }, ['name', 'role', 'csrf']) } },
    async (req, reply) => {
      // The auth hook has checked the bearer token; it becomes the session.
      const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!token || !req.token) throw new VikingError('VIKING_E_UNAUTHORIZED', 'sign in with Authorization: Bearer TOKEN');
      const csrf = startSession(req, reply, token);
      return { name: req.token.name, role: accessOf(req).role, csrf };
    },
  );
  app.delete('/ui/session', { schema: { querystring: noQuery, response: okObject({ signedOut: { type: 'boolean' } }, ['signedOut']) } }, async (req, reply) => {
    endSession(req, reply);
    return { signedOut: true };
  });

  const feed = new LiveFeed(ctx.client, ctx.log);
  const open = new Set<(closing?: boolean) => void>();
  // A stopping host closes every stream's socket at once: a tab reconnects (or shows it is offline).
  app.addHook('preClose', async () => {
    for (const end of [...open]) end(true);
    // Not awaited: the watch's cancel is only a courtesy to etcd, and the host closes its client next.
    void feed.stop();
  });
  app.get('/v1/events', { schema: { querystring: noQuery } }, async (req, reply) => {
    const access = accessOf(req);
    reply.hijack();
    const raw = reply.raw;
    // connection: close: the socket of an ended stream is closed, never kept alive idle, so a host that
    // stops (which ends every stream) does not wait for the keep-alive timeout (72 s) of each tab's socket.
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'close' });
    const send = (event: string, data: unknown): void => {
      raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // A tab sees only the stacks its token covers; a cluster change is only news to a token that reads the cluster.
    const cluster = access.hasPermission('cluster:read');
    const unsubscribe = feed.subscribe((c: LiveChange) => {
      const stacks = c.stacks.filter((s) => access.covers(s));
      const out = { cluster: cluster && c.cluster, routes: c.routes, all: c.all, stacks };
      if (out.cluster || out.routes || out.all || stacks.length > 0) send('change', out);
    });
    const beat = setInterval(() => raw.write(': beat\n\n'), HEARTBEAT_MS);
    const end = (closing = false): void => {
      clearInterval(beat);
      unsubscribe();
      open.delete(end);
      if (closing) raw.destroy();
      else if (!raw.writableEnded) raw.end();
    };
    open.add(end);
    raw.on('close', () => end());
    send('hello', { host: ctx.hostName });
  });

  app.get('/v1/capacity', { schema: { querystring: noQuery, response: okArray({ host: { type: 'string' } }, ['host']) } }, async (): Promise<CapacityRow[]> => {
    const snap = await readSnapshot(ctx.client);
    return toPlanHosts(snap).map((h) => {
      const s = toHostState(h);
      return { host: h.name, capacity: s.capacity, reserved: s.used, replicas: h.jobs.length };
    });
  });
}

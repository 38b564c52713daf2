/**
 * POST /v1/push: the body is a tar of the stack's directory. The answer is
 * a stream of NDJSON progress events, one per line, ending with a `result`
 * or an `error` event, so the CLI can show each stage as it happens. An
 * upload that cannot be unpacked is refused with its own HTTP status first.
 */
import { randomBytes } from 'node:crypto';
import { removeTree } from '../upload/remove-tree.js';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import { DEFAULT_MAX_ENTRIES, extractUpload, rawArchiveCap, tooLarge } from '../upload/extract.js';
import { pushRelease } from '../rollout/push.js';
import { actorOf } from './deploy-routes.js';
import { streamProgress, type ProgressLine } from './progress.js';
import { NAME, noQuery, params, streamResponses } from './schemas.js';
import type { ApiContext } from './server.js';
import { ensureClusterId } from '../store/cluster-id.js';
import { accessOf } from '../auth/hook.js';
import { demand } from '../auth/roles.js';
import { checkPushDomains } from '../auth/push-policy.js';
import { noteAudit } from './audit-route.js';
import { LivePush, readPushes } from './push-live.js';

export interface PushResultLine {
  stack: string;
  tag: string;
  domains: string[];
  routerPort: number;
  images: Record<string, string>;
}

export type PushStreamLine = ProgressLine<PushResultLine>;

export function registerPush(app: FastifyInstance, ctx: ApiContext): void {
  // A stack's pushes in progress (or ended within the grace period), from any host: the dashboard's live view.
  app.get<{ Params: { stack: string } }>('/v1/pushes/:stack', { schema: { params: params({ stack: NAME }), querystring: noQuery } }, async (req) => readPushes(ctx.client, req.params.stack));

  // The body is streamed to disk as it arrives, never buffered whole.
  app.addContentTypeParser(['application/x-tar', 'application/octet-stream'], (_req, payload, done) => done(null, payload));

  app.post('/v1/push', { schema: { querystring: noQuery, response: streamResponses } }, async (req, reply) => {
    const uploadDir = path.join(ctx.dataDir, 'uploads', `${Date.now()}-${randomBytes(4).toString('hex')}`);
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
      throw new VikingError('VIKING_E_BAD_REQUEST', 'push needs a tar of the stack directory as body, with content-type application/x-tar');
    }
    const maxEntries = ctx.maxUploadFiles ?? DEFAULT_MAX_ENTRIES;
    // A declared length past the cap is refused before a byte is read.
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > rawArchiveCap(ctx.maxUploadBytes, maxEntries)) {
      ctx.metrics?.pushes.inc({ result: 'VIKING_E_UPLOAD_TOO_LARGE' });
      void reply.header('connection', 'close');
      throw tooLarge(ctx.maxUploadBytes);
    }
    // Unpacked before answering, so an unsafe or oversized upload gets its own HTTP status.
    let received;
    try {
      received = await extractUpload(body, uploadDir, { maxBytes: ctx.maxUploadBytes, maxEntries });
    } catch (err) {
      // The rest of a refused body is not read: the connection closes after the answer.
      body.unpipe?.();
      if (!req.raw.complete) void reply.header('connection', 'close');
      await removeTree(uploadDir).catch(() => {});
      ctx.metrics?.pushes.inc({ result: err instanceof VikingError ? err.code : 'VIKING_E_INTERNAL' });
      throw err;
    }
    let failed: string | undefined;
    const access = accessOf(req);
    // Stages and output for every other tab and host (push-live.ts), once the push is allowed.
    const live = new LivePush(ctx.client, ctx.hostName, actorOf(req), ctx.log);
    await streamProgress<PushResultLine>(
      reply,
      async (emit) => {
        // The first line waits until the push is allowed, so a refusal is a plain 403 before any stream.
        let receivedShown = false;
        const showReceived = (): void => {
          if (receivedShown) return;
          receivedShown = true;
          const text = `received ${received.files} files, ${(received.bytes / 1024).toFixed(1)} KiB`;
          emit('vikingfile', text);
          live.event('vikingfile', text);
        };
        const authorize = async (stack: string, domains: string[]): Promise<void> => {
          noteAudit(req, { stack });
          demand(access, 'stack:push', stack);
          await checkPushDomains(ctx.client, access, req.token?.domains, stack, domains);
          live.begin(stack);
          showReceived();
        };
        const result = await pushRelease({
          authorize,
          client: ctx.client,
          docker: ctx.docker,
          uploadDir,
          dataDir: ctx.dataDir,
          hostName: ctx.hostName,
          by: actorOf(req),
          cluster: (ctx.clusterId ??= await ensureClusterId(ctx.client)),
          ...(ctx.rolloutTimeoutMs !== undefined ? { timeoutMs: ctx.rolloutTimeoutMs } : {}),
          onEvent: (e) => {
            showReceived();
            emit(e.stage, e.message);
            live.event(e.stage, e.message);
          },
        }).catch((err: unknown) => {
          if (!(err instanceof VikingError && err.code === 'VIKING_E_FORBIDDEN')) showReceived();
          throw err;
        });
        return { stack: result.stack, tag: result.tag, domains: result.domains, routerPort: ctx.routerPort, images: result.images };
      },
      (code, message) => {
        failed = code;
        void live.end(`${code}: ${message}`);
        if (code === 'VIKING_E_INTERNAL') ctx.log?.(`push failed: ${code}: ${message}`);
      },
      ctx,
    );
    if (!failed) await live.end();
    ctx.metrics?.pushes.inc({ result: failed ?? 'ok' });
    if (failed) await removeTree(uploadDir).catch(() => {});
    return reply;
  });
}

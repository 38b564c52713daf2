/**
 * POST /v1/push: the body is a tar of the stack's directory. The answer is
 * a stream of NDJSON progress events, one per line, ending with a `result`
 * or an `error` event, so the CLI can show each stage as it happens.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { VikingError, toVikingError } from '../errors.js';
import { extractUpload } from '../upload/extract.js';
import { pushRelease, type PushEvent } from '../schedule/push.js';
import type { ApiContext } from './server.js';

export type PushStreamLine =
  | ({ type: 'progress' } & PushEvent)
  | { type: 'result'; stack: string; tag: string; domains: string[]; routerPort: number; images: Record<string, string> }
  | { type: 'error'; statusCode: number; code: string; message: string; details?: Record<string, unknown> };

export function registerPush(app: FastifyInstance, ctx: ApiContext): void {
  // The body is streamed to disk as it arrives, never buffered whole.
  app.addContentTypeParser(['application/x-tar', 'application/octet-stream'], (_req, payload, done) => done(null, payload));

  app.post('/v1/push', async (req, reply) => {
    const uploadDir = path.join(ctx.dataDir, 'uploads', `${Date.now()}-${randomBytes(4).toString('hex')}`);
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
      throw new VikingError('VIKING_E_BAD_REQUEST', 'push needs a tar of the stack directory as body, with content-type application/x-tar');
    }
    // Unpacked before answering, so an unsafe or oversized upload gets its own HTTP status.
    let received;
    try {
      received = await extractUpload(body, uploadDir, { maxBytes: ctx.maxUploadBytes });
    } catch (err) {
      await rm(uploadDir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (line: PushStreamLine): void => {
      if (!raw.destroyed) raw.write(`${JSON.stringify(line)}\n`);
    };
    try {
      send({ type: 'progress', stage: 'vikingfile', message: `received ${received.files} files, ${(received.bytes / 1024).toFixed(1)} KiB` });
      const result = await pushRelease({
        client: ctx.client,
        docker: ctx.docker,
        uploadDir,
        dataDir: ctx.dataDir,
        hostName: ctx.hostName,
        by: String(req.headers['x-viking-user'] ?? 'anonymous'),
        onEvent: (e) => send({ type: 'progress', ...e }),
      });
      send({ type: 'result', stack: result.stack, tag: result.tag, domains: result.domains, routerPort: ctx.routerPort, images: result.images });
    } catch (err) {
      const e = toVikingError(err);
      if (e.statusCode >= 500) ctx.log?.(`push failed: ${e.code}: ${e.message}`);
      send({ type: 'error', ...e.toJSON() });
      await rm(uploadDir, { recursive: true, force: true }).catch(() => {});
    } finally {
      raw.end();
    }
  });
}

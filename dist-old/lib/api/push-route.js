/**
 * POST /v1/push: the body is a tar of the stack's directory. The answer is
 * a stream of NDJSON progress events, one per line, ending with a `result`
 * or an `error` event, so the CLI can show each stage as it happens. An
 * upload that cannot be unpacked is refused with its own HTTP status first.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';
import { extractUpload } from '../upload/extract.js';
import { pushRelease } from '../schedule/push.js';
import { actorOf } from './deploy-routes.js';
import { streamProgress } from './progress.js';
import { noQuery, streamResponses } from './schemas.js';
export function registerPush(app, ctx) {
    // The body is streamed to disk as it arrives, never buffered whole.
    app.addContentTypeParser(['application/x-tar', 'application/octet-stream'], (_req, payload, done) => done(null, payload));
    app.post('/v1/push', { schema: { querystring: noQuery, response: streamResponses } }, async (req, reply) => {
        const uploadDir = path.join(ctx.dataDir, 'uploads', `${Date.now()}-${randomBytes(4).toString('hex')}`);
        const body = req.body;
        if (!body || typeof body.pipe !== 'function') {
            throw new VikingError('VIKING_E_BAD_REQUEST', 'push needs a tar of the stack directory as body, with content-type application/x-tar');
        }
        // Unpacked before answering, so an unsafe or oversized upload gets its own HTTP status.
        let received;
        try {
            received = await extractUpload(body, uploadDir, { maxBytes: ctx.maxUploadBytes });
        }
        catch (err) {
            await rm(uploadDir, { recursive: true, force: true }).catch(() => { });
            ctx.metrics?.pushes.inc({ result: err instanceof VikingError ? err.code : 'VIKING_E_INTERNAL' });
            throw err;
        }
        let failed;
        await streamProgress(reply, async (emit) => {
            emit('vikingfile', `received ${received.files} files, ${(received.bytes / 1024).toFixed(1)} KiB`);
            const result = await pushRelease({
                client: ctx.client,
                docker: ctx.docker,
                uploadDir,
                dataDir: ctx.dataDir,
                hostName: ctx.hostName,
                by: actorOf(req),
                ...(ctx.rolloutTimeoutMs !== undefined ? { timeoutMs: ctx.rolloutTimeoutMs } : {}),
                onEvent: (e) => emit(e.stage, e.message),
            });
            return { stack: result.stack, tag: result.tag, domains: result.domains, routerPort: ctx.routerPort, images: result.images };
        }, (code, message) => {
            failed = code;
            if (code === 'VIKING_E_INTERNAL')
                ctx.log?.(`push failed: ${code}: ${message}`);
        });
        ctx.metrics?.pushes.inc({ result: failed ?? 'ok' });
        if (failed)
            await rm(uploadDir, { recursive: true, force: true }).catch(() => { });
        return reply;
    });
}
//# sourceMappingURL=push-route.js.map
import { toVikingError } from '../errors.js';
/**
 * Runs `op`, streaming its progress; resolves once the answer is complete.
 * Throws (for fastify's error handler) only when nothing was streamed yet.
 */
export async function streamProgress(reply, op, onError) {
    const raw = reply.raw;
    let started = false;
    const write = (line) => {
        if (!raw.destroyed && !raw.writableEnded)
            raw.write(`${JSON.stringify(line)}\n`);
    };
    const start = () => {
        if (started)
            return;
        started = true;
        reply.hijack();
        raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    };
    const emit = (stage, message) => {
        start();
        write({ type: 'progress', stage, message });
    };
    try {
        const result = await op(emit);
        start();
        write({ type: 'result', ...result });
        raw.end();
        return { streamed: true };
    }
    catch (err) {
        const e = toVikingError(err);
        onError?.(e.code, e.message);
        if (!started)
            throw e;
        write({ type: 'error', ...e.toJSON() });
        raw.end();
        return { streamed: true, failed: e.code };
    }
}
//# sourceMappingURL=progress.js.map
import { VikingError } from '../errors.js';
import { listOwned } from '../slave/containers.js';
import { findJobContainer, readContainerLogs } from './container-logs.js';
import { liveHosts, peerJson } from './peers.js';
import { FLAG, NAME, TAG, TAIL, errorResponses, flagOn, okArray, params } from './schemas.js';
export async function localContainers(ctx, stack) {
    const owned = await listOwned(ctx.docker, ctx.hostName);
    return owned
        .filter((c) => stack === undefined || c.job.stack === stack)
        .map((c) => ({ id: c.id.slice(0, 12), name: c.name, host: ctx.hostName, ...c.job, running: c.running }));
}
/**
 * Containers of a stack on every live host: this one from Docker directly,
 * the others through their API. A host that cannot be asked counts as one
 * unknown container, so nobody is told "all gone" without seeing it.
 */
export async function containersEverywhere(ctx, stack, token) {
    const hosts = await liveHosts(ctx.client);
    const counts = await Promise.all([...hosts.values()].map(async (h) => {
        if (h.name === ctx.hostName)
            return (await localContainers(ctx, stack)).length;
        try {
            return (await peerJson(h, `/v1/local/containers?stack=${encodeURIComponent(stack)}`, token)).length;
        }
        catch {
            return 1;
        }
    }));
    return counts.reduce((a, b) => a + b, 0);
}
/** Streams a local replica's log to `onLine`; false when it has no container here. */
export async function localReplicaLogs(ctx, job, o, onLine) {
    const id = await findJobContainer(ctx.docker, ctx.hostName, job);
    if (!id)
        return false;
    await readContainerLogs(ctx.docker, id, o, onLine);
    return true;
}
export function registerLocalRoutes(app, ctx) {
    app.get('/v1/local/containers', {
        schema: {
            querystring: { type: 'object', additionalProperties: false, properties: { stack: NAME } },
            response: okArray({ id: { type: 'string' }, stack: { type: 'string' }, running: { type: 'boolean' } }, ['id', 'stack']),
        },
    }, async (req) => localContainers(ctx, req.query.stack));
    app.get('/v1/local/logs/:stack/:tag/:node/:instance', {
        schema: {
            params: params({ stack: NAME, tag: TAG, node: NAME, instance: { type: 'integer', minimum: 1 } }),
            querystring: { type: 'object', additionalProperties: false, properties: { follow: FLAG, tail: TAIL } },
            response: errorResponses,
        },
    }, async (req, reply) => {
        const job = { stack: req.params.stack, tag: req.params.tag, node: req.params.node, instance: req.params.instance };
        const id = await findJobContainer(ctx.docker, ctx.hostName, job);
        if (!id)
            throw new VikingError('VIKING_E_NOT_FOUND', `no container of ${job.node}.${job.instance} (${job.tag}) on ${ctx.hostName}`);
        const abort = new AbortController();
        reply.hijack();
        const raw = reply.raw;
        raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        raw.on('close', () => abort.abort());
        await readContainerLogs(ctx.docker, id, { follow: req.query.follow !== undefined && flagOn(req.query.follow), tail: req.query.tail ?? 100, signal: abort.signal }, (l) => {
            if (!raw.destroyed)
                raw.write(`${JSON.stringify(l)}\n`);
        }).catch(() => { });
        raw.end();
    });
}
//# sourceMappingURL=local-routes.js.map
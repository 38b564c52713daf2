import { bearerOf } from '../auth/hook.js';
import { changeEnv, rollbackStack } from '../schedule/releases.js';
import { MAX_REPLICAS, scaleStack } from '../schedule/scale.js';
import { removeStack } from '../schedule/remove.js';
import { containersEverywhere } from './local-routes.js';
import { streamProgress } from './progress.js';
import { NAME, TAG, noQuery, params, streamResponses } from './schemas.js';
/** Who did it, for the release history: the token's name, and the user the CLI says it runs as. */
export function actorOf(req) {
    const user = req.headers['x-viking-user'];
    const token = req.token?.name ?? 'anonymous';
    return typeof user === 'string' && user && user !== token ? `${user} (token ${token})` : token;
}
export function registerDeployRoutes(app, ctx) {
    const opContext = (req, emit) => ({
        client: ctx.client,
        by: actorOf(req),
        hostName: ctx.hostName,
        emit,
        ...(ctx.rolloutTimeoutMs !== undefined ? { timeoutMs: ctx.rolloutTimeoutMs } : {}),
    });
    const run = async (kind, reply, op) => {
        let failed;
        try {
            await streamProgress(reply, op, (code) => (failed = code));
        }
        finally {
            ctx.metrics?.operations.inc({ kind, result: failed ?? 'ok' });
        }
        return reply;
    };
    app.post('/v1/scale/:stack', {
        schema: {
            params: params({ stack: NAME }),
            querystring: noQuery,
            body: {
                type: 'object',
                additionalProperties: false,
                required: ['nodes'],
                properties: {
                    nodes: {
                        type: 'object',
                        minProperties: 1,
                        propertyNames: NAME,
                        additionalProperties: { type: 'integer', minimum: 0, maximum: MAX_REPLICAS },
                    },
                },
            },
            response: streamResponses,
        },
    }, async (req, reply) => run('scale', reply, async (emit) => ({ stack: req.params.stack, nodes: await scaleStack(opContext(req, emit), req.params.stack, req.body.nodes) })));
    app.post('/v1/rollback/:stack', {
        schema: {
            params: params({ stack: NAME }),
            querystring: noQuery,
            body: { type: ['object', 'null'], additionalProperties: false, properties: { release: TAG } },
            response: streamResponses,
        },
    }, async (req, reply) => run('rollback', reply, (emit) => rollbackStack(opContext(req, emit), req.params.stack, req.body?.release)));
    app.post('/v1/env/:stack', {
        schema: {
            params: params({ stack: NAME }),
            querystring: noQuery,
            body: {
                type: 'object',
                additionalProperties: false,
                minProperties: 1,
                properties: {
                    set: { type: 'object', additionalProperties: { type: 'string', maxLength: 32768 } },
                    unset: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 128 }, maxItems: 100 },
                },
            },
            response: streamResponses,
        },
    }, async (req, reply) => run('env', reply, (emit) => changeEnv(opContext(req, emit), req.params.stack, { ...(req.body.set ? { set: req.body.set } : {}), ...(req.body.unset ? { unset: req.body.unset } : {}) })));
    app.delete('/v1/stack/:name', { schema: { params: params({ name: NAME }), querystring: noQuery, response: streamResponses } }, async (req, reply) => run('rm', reply, (emit) => removeStack({
        ...opContext(req, emit),
        dataDir: ctx.dataDir,
        countContainers: (stack) => containersEverywhere(ctx, stack, bearerOf(req)),
    }, req.params.name)));
}
//# sourceMappingURL=deploy-routes.js.map
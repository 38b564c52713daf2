/**
 * The /v1 REST API every host serves (fastify). The CLI talks only to it.
 *
 * Every route declares JSON schemas for what it accepts; every route but
 * `GET /v1/ping` needs a bearer token (lib/auth); errors leave as
 * `{statusCode, code, message}` from the one registry in lib/errors.ts,
 * whatever threw them, and `GET /metrics` counts it all for Prometheus.
 */
import Fastify, {} from 'fastify';
import { VikingError, toVikingError } from '../errors.js';
import { registerAuth } from '../auth/hook.js';
import { NAME_PATTERN } from '../vikingfile/index.js';
import { registerPush } from './push-route.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { registerStackRoutes } from './stack-routes.js';
import { registerDeployRoutes } from './deploy-routes.js';
import { registerLogsRoute } from './logs-route.js';
import { registerLocalRoutes } from './local-routes.js';
import { ApiMetrics } from './metrics.js';
import { registerWebsiteSource } from './website-route.js';
/** A schema refusal as a VikingError: bad names get their own code, the rest VIKING_E_BAD_REQUEST. */
function validationError(e) {
    const items = (e.validation ?? []);
    const badName = items.find((v) => v.keyword === 'pattern' && v.params.pattern === NAME_PATTERN.source);
    if (badName) {
        const where = `${e.validationContext ?? 'request'}${badName.instancePath}`;
        return new VikingError('VIKING_E_INVALID_NAME', `${where}: names are lowercase letters, digits and dashes, at most 63 characters, not starting or ending with a dash`);
    }
    return new VikingError('VIKING_E_BAD_REQUEST', e.message);
}
export function createApi(ctx) {
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
    const metrics = ctx.metrics ?? new ApiMetrics(ctx.client);
    const full = { ...ctx, metrics };
    app.setErrorHandler((err, _req, reply) => {
        const vk = err instanceof VikingError
            ? err
            : err.validation
                ? validationError(err)
                : err.statusCode && err.statusCode < 500
                    ? new VikingError('VIKING_E_BAD_REQUEST', err.message)
                    : toVikingError(err);
        if (vk.statusCode >= 500)
            ctx.log?.(`api: ${vk.code}: ${vk.message}`);
        void reply.status(vk.statusCode).send(vk.toJSON());
    });
    app.setNotFoundHandler((req, reply) => {
        const e = new VikingError('VIKING_E_NOT_FOUND', `no API route ${req.method} ${req.url.split('?')[0]}; see viking --help`);
        void reply.status(404).send(e.toJSON());
    });
    registerAuth(app, ctx.client);
    metrics.register(app);
    registerClusterRoutes(app, full);
    registerStackRoutes(app, full);
    registerDeployRoutes(app, full);
    registerLogsRoute(app, full);
    registerLocalRoutes(app, full);
    registerPush(app, full);
    registerWebsiteSource(app, full);
    return app;
}
//# sourceMappingURL=server.js.map
import { VikingError } from '../errors.js';
import { verifyToken } from './tokens.js';
/**
 * Routes anyone may call. A liveness probe says nothing about the cluster.
 * A website's files are what every router serves to the public anyway; other
 * hosts' routers fetch them from here without a user's token.
 */
export const PUBLIC_ROUTES = new Set(['/v1/ping']);
export const PUBLIC_ROUTE_PATTERNS = [/^\/v1\/source\/[a-z0-9-]+\/[a-z0-9-]+\/website\/[a-z0-9-]+$/];
/** The bearer token of a request, if it sent one. */
export function bearerOf(req) {
    const header = req.headers.authorization;
    if (typeof header !== 'string')
        return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
}
export function registerAuth(app, client) {
    app.decorateRequest('token', undefined);
    app.addHook('onRequest', async (req) => {
        const path = req.url.split('?')[0] ?? '';
        if (req.method === 'GET' && (PUBLIC_ROUTES.has(path) || PUBLIC_ROUTE_PATTERNS.some((re) => re.test(path))))
            return;
        const given = bearerOf(req);
        if (!given) {
            throw new VikingError('VIKING_E_UNAUTHORIZED', 'this API needs a token: pass --token, set VIKING_TOKEN, or run viking configure --api URL --token TOKEN');
        }
        const record = await verifyToken(client, given);
        if (!record) {
            throw new VikingError('VIKING_E_UNAUTHORIZED', 'the API token is unknown or revoked; viking token create makes a new one');
        }
        const { hash: _hash, ...rest } = record;
        req.token = rest;
    });
}
//# sourceMappingURL=hook.js.map
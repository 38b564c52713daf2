/**
 * The CLI's only way into a cluster: HTTP calls to any host's /v1 API, with
 * the bearer token from the flag, the environment or the config file.
 * Errors the API sends come back as VikingErrors with the same code; a 401
 * says how to get a token.
 */
import { VikingError, ERROR_CODES } from '../errors.js';
import { DEFAULT_API, resolveTarget } from './config.js';
export { DEFAULT_API };
/** The API URL from a flag or $VIKING_API (kept for callers that do not read the config file). */
export function apiUrl(flag) {
    return (flag ?? process.env.VIKING_API ?? DEFAULT_API).replace(/\/+$/, '');
}
export function errorFromBody(body, status) {
    const b = (body ?? {});
    const code = (b.code && b.code in ERROR_CODES ? b.code : status === 401 ? 'VIKING_E_UNAUTHORIZED' : status >= 500 ? 'VIKING_E_INTERNAL' : 'VIKING_E_BAD_REQUEST');
    return new VikingError(code, b.message ?? `HTTP ${status}`, b.details);
}
export async function apiFetch(base, path, init = {}, token) {
    const headers = new Headers(init.headers);
    const t = token ?? process.env.VIKING_TOKEN;
    if (t && !headers.has('authorization'))
        headers.set('authorization', `Bearer ${t}`);
    if (!headers.has('x-viking-user') && process.env.USER)
        headers.set('x-viking-user', process.env.USER);
    try {
        return await fetch(`${base}${path}`, { ...init, headers });
    }
    catch (err) {
        const cause = err.cause;
        throw new VikingError('VIKING_E_API_UNREACHABLE', `cannot reach the viking API at ${base} (${cause?.code ?? cause?.message ?? err.message}); pass --api URL, set VIKING_API, or run viking configure`);
    }
}
async function failure(res) {
    return errorFromBody(await res.json().catch(() => ({})), res.status);
}
export async function apiGet(base, path) {
    const res = await apiFetch(base, path);
    if (!res.ok)
        throw await failure(res);
    return (await res.json());
}
/** A connection to one API with one token. */
export class ApiClient {
    target;
    constructor(target) {
        this.target = target;
    }
    static async from(flags) {
        return new ApiClient(await resolveTarget(flags));
    }
    get base() {
        return this.target.api;
    }
    /** Raw response of a call; non-2xx answers become VikingErrors. */
    async call(method, path, body, headers = {}) {
        const init = { method, headers: { ...headers } };
        if (body !== undefined) {
            if (isStreamBody(body)) {
                Object.assign(init, { body, duplex: 'half' });
            }
            else {
                init.body = JSON.stringify(body);
                init.headers['content-type'] = 'application/json';
            }
        }
        const res = await apiFetch(this.base, path, init, this.target.token ?? '');
        if (!res.ok) {
            const err = await failure(res);
            if (err.code === 'VIKING_E_UNAUTHORIZED' && !this.target.token) {
                throw new VikingError(err.code, `${err.message} (no token configured: viking configure --api ${this.base} --token TOKEN)`);
            }
            throw err;
        }
        return res;
    }
    async get(path) {
        return (await (await this.call('GET', path)).json());
    }
    async post(path, body = {}) {
        return (await (await this.call('POST', path, body)).json());
    }
    async delete(path) {
        return (await (await this.call('DELETE', path)).json());
    }
}
function isStreamBody(body) {
    return typeof body === 'object' && body !== null && typeof body.getReader === 'function';
}
export { readLines } from '../ndjson.js';
//# sourceMappingURL=api-client.js.map
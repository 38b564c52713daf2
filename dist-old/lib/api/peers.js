import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { readLines } from '../ndjson.js';
/** Live hosts by name. */
export async function liveHosts(client) {
    const read = await readPrefix(client, PREFIX.host);
    const out = new Map();
    for (const e of read.entries)
        if (e.value)
            out.set(e.value.name, e.value);
    return out;
}
function headers(token) {
    return token ? { authorization: `Bearer ${token}` } : {};
}
/** A peer's answer, or a VikingError saying which host failed and how. */
export async function peerFetch(host, path, token, signal) {
    let res;
    try {
        res = await fetch(`${host.api}${path}`, { headers: headers(token), ...(signal ? { signal } : {}) });
    }
    catch (err) {
        const cause = err.cause?.code ?? err.message;
        throw new VikingError('VIKING_E_API_UNREACHABLE', `host ${host.name}'s API at ${host.api} did not answer (${cause})`);
    }
    if (!res.ok) {
        const body = (await res.json().catch(() => ({})));
        const code = body.code === 'VIKING_E_NOT_FOUND' || body.code === 'VIKING_E_UNAUTHORIZED' ? body.code : 'VIKING_E_INTERNAL';
        throw new VikingError(code, `host ${host.name}: ${body.message ?? `HTTP ${res.status}`}`);
    }
    return res;
}
export async function peerJson(host, path, token, signal) {
    const res = await peerFetch(host, path, token, signal);
    return (await res.json());
}
/** Reads a peer's NDJSON answer line by line until it ends or the signal aborts. */
export async function peerLines(host, path, token, signal, onLine) {
    const res = await peerFetch(host, path, token, signal);
    try {
        await readLines(res, (text) => onLine(JSON.parse(text)));
    }
    catch (err) {
        if (!signal.aborted)
            throw err;
    }
}
//# sourceMappingURL=peers.js.map
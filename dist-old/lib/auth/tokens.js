/**
 * API tokens: who may talk to the /v1 API.
 *
 * A token reads `vkt_<id>_<secret>`. Only the sha256 of the secret is kept,
 * under `/tokens/<id>` with the token's name, so a leaked etcd snapshot does
 * not leak working tokens, and the id lets a request find its record with
 * one etcd read instead of hashing against every token. Revoking deletes
 * the key; the next request with that token gets 401 at once (no cache).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { PREFIX, tokenKey } from '../store/keys.js';
const TOKEN_RE = /^vkt_([a-f0-9]{12})_([A-Za-z0-9_-]{43})$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export function hashSecret(secret) {
    return createHash('sha256').update(secret).digest('hex');
}
/** Splits a token into its id and secret; undefined when it is not shaped like one. */
export function parseToken(token) {
    const m = TOKEN_RE.exec(token.trim());
    return m ? { id: m[1], secret: m[2] } : undefined;
}
export function validateTokenName(name) {
    if (!NAME_RE.test(name)) {
        throw new VikingError('VIKING_E_BAD_REQUEST', `token name '${name}' must be 1-64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit`);
    }
}
/** Makes a token and stores its hash; the id never collides (the put is conditional). */
export async function createToken(client, name, createdBy = 'viking') {
    validateTokenName(name);
    for (let attempt = 0; attempt < 5; attempt++) {
        const id = randomBytes(6).toString('hex');
        const secret = randomBytes(32).toString('base64url');
        const record = { id, name, hash: hashSecret(secret), createdAt: new Date().toISOString(), createdBy };
        const res = await client
            .if(tokenKey(id), 'Version', '==', 0)
            .then(client.put(tokenKey(id)).value(JSON.stringify(record)))
            .commit();
        if (res.succeeded)
            return { token: `vkt_${id}_${secret}`, record };
    }
    throw new VikingError('VIKING_E_INTERNAL', 'could not find a free token id; try again');
}
/** The token's record when it is valid, undefined otherwise (unknown, revoked or malformed). */
export async function verifyToken(client, token) {
    if (!token)
        return undefined;
    const parsed = parseToken(token);
    if (!parsed)
        return undefined;
    const record = await readJSON(client, tokenKey(parsed.id));
    if (!record)
        return undefined;
    const want = Buffer.from(record.hash, 'hex');
    const got = Buffer.from(hashSecret(parsed.secret), 'hex');
    return want.length === got.length && timingSafeEqual(want, got) ? record : undefined;
}
/** Every token, without secrets (there are none to show: only hashes are kept). */
export async function listTokens(client) {
    const read = await readPrefix(client, PREFIX.tokens);
    return read.entries
        .map((e) => e.value)
        .filter((t) => t !== undefined)
        .map(({ hash: _hash, ...rest }) => rest)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
/** Deletes a token by id; refuses to delete the last one, which would lock everybody out of the API. */
export async function revokeToken(client, id) {
    if (!/^[a-f0-9]{12}$/.test(id))
        throw new VikingError('VIKING_E_BAD_REQUEST', `'${id}' is not a token id; viking token list shows them`);
    const record = await readJSON(client, tokenKey(id));
    if (!record)
        throw new VikingError('VIKING_E_NOT_FOUND', `no token with id ${id}; viking token list shows them`);
    const all = await client.getAll().prefix(PREFIX.tokens).keys();
    if (all.length <= 1) {
        throw new VikingError('VIKING_E_BAD_REQUEST', `token ${id} (${record.name}) is the last one; create another before revoking it`);
    }
    await client.delete().key(tokenKey(id));
    return record;
}
/**
 * The first token of a cluster, made by `viking up` and bootstrap: created
 * only when no token exists yet, so running them again never mints more.
 */
export async function ensureFirstToken(client, name = 'admin') {
    const existing = await client.getAll().prefix(PREFIX.tokens).count();
    if (existing > 0)
        return undefined;
    return createToken(client, name, 'viking up');
}
//# sourceMappingURL=tokens.js.map
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
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { PREFIX, tokenKey } from '../store/keys.js';
import type { TokenRecord } from '../store/records.js';
import { checkDomain } from '../vikingfile/values.js';
import { Access, checkStackPatterns, isRole, parseDuration, type Role } from './roles.js';

const TOKEN_RE = /^vkt_([a-f0-9]{12})_([A-Za-z0-9_-]{43})$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface NewToken {
  /** The whole token: shown once, never stored. */
  token: string;
  record: TokenRecord;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Splits a token into its id and secret; undefined when it is not shaped like one. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token.trim());
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function validateTokenName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `token name '${name}' must be 1-64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit`);
  }
}

/** What a new token may do; without a role it is an admin (as every token was before roles). */
export interface TokenGrant {
  role?: Role;
  /** Stack patterns; a deployer needs them (`*` for every stack), an admin takes none. */
  stacks?: string[];
  /** Domain patterns a deployer's push may claim beyond the default policy. */
  domains?: string[];
  /** Lifetime such as `30d`; none means the token never expires. */
  expires?: string;
}

/** The checked fields a grant adds to a record. */
export function grantFields(grant: TokenGrant, now = Date.now()): Pick<TokenRecord, 'role' | 'stacks' | 'domains' | 'expiresAt'> {
  const role = grant.role ?? 'admin';
  if (!isRole(role)) throw new VikingError('VIKING_E_BAD_REQUEST', `role '${String(role).slice(0, 40)}' is none of admin, deployer, reader`);
  const out: Pick<TokenRecord, 'role' | 'stacks' | 'domains' | 'expiresAt'> = { role };
  if (grant.stacks !== undefined) {
    if (role === 'admin') throw new VikingError('VIKING_E_BAD_REQUEST', 'an admin token holds every stack; --stacks is for deployer and reader tokens');
    out.stacks = checkStackPatterns(grant.stacks);
  } else if (role === 'deployer') {
    throw new VikingError('VIKING_E_BAD_REQUEST', "a deployer token needs --stacks: the stacks it may change (patterns such as team-*; '*' for every stack)");
  }
  if (grant.domains !== undefined) {
    if (role !== 'deployer') throw new VikingError('VIKING_E_BAD_REQUEST', '--domains widens what a deployer may push; admins may claim any domain and readers push nothing');
    if (grant.domains.length === 0 || grant.domains.length > 50) throw new VikingError('VIKING_E_BAD_REQUEST', '--domains takes 1 to 50 domains or *.domain patterns');
    out.domains = [
      ...new Set(
        grant.domains.map((d) => {
          const c = checkDomain(d);
          if (!c.ok) throw new VikingError('VIKING_E_BAD_REQUEST', `--domains: ${c.message}`);
          return c.value;
        }),
      ),
    ].sort();
  }
  if (grant.expires !== undefined) out.expiresAt = new Date(now + parseDuration(grant.expires, '--expires')).toISOString();
  return out;
}

/** The token has an expiry and it has passed. */
export function isExpired(record: Pick<TokenRecord, 'expiresAt'>, now = Date.now()): boolean {
  if (record.expiresAt === undefined) return false;
  const at = Date.parse(record.expiresAt);
  // An expiry that cannot be read counts as passed: a token never lives longer by a broken record.
  return !Number.isFinite(at) || at <= now;
}

/** A record as the API shows it: no hash, and the role an old record counts as. */
export function publicView(record: TokenRecord): Omit<TokenRecord, 'hash'> & { role: Role } {
  const { hash: _hash, ...rest } = record;
  const access = new Access(record);
  return { ...rest, role: access.role, ...(access.stacks ? { stacks: [...access.stacks] } : {}) };
}

/** Makes a token and stores its hash; the id never collides (the put is conditional). */
export async function createToken(client: Etcd3, name: string, createdBy = 'viking', grant: TokenGrant = {}): Promise<NewToken> {
  validateTokenName(name);
  const fields = grantFields(grant);
  for (let attempt = 0; attempt < 5; attempt++) {
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: TokenRecord = { id, name, hash: hashSecret(secret), createdAt: new Date().toISOString(), createdBy, ...fields };
    const res = await client
      .if(tokenKey(id), 'Version', '==', 0)
      .then(client.put(tokenKey(id)).value(JSON.stringify(record)))
      .commit();
    if (res.succeeded) return { token: `vkt_${id}_${secret}`, record };
  }
  throw new VikingError('VIKING_E_INTERNAL', 'could not find a free token id; try again');
}

/** The token's record when it is valid, undefined otherwise (unknown, revoked or malformed). */
export async function verifyToken(client: Etcd3, token: string | undefined): Promise<TokenRecord | undefined> {
  if (!token) return undefined;
  const parsed = parseToken(token);
  if (!parsed) return undefined;
  const record = await readJSON<TokenRecord>(client, tokenKey(parsed.id));
  if (!record) return undefined;
  const want = Buffer.from(record.hash, 'hex');
  const got = Buffer.from(hashSecret(parsed.secret), 'hex');
  return want.length === got.length && timingSafeEqual(want, got) ? record : undefined;
}

/** Every token, without secrets (there are none to show: only hashes are kept). */
export async function listTokens(client: Etcd3): Promise<Array<Omit<TokenRecord, 'hash'>>> {
  const read = await readPrefix<TokenRecord>(client, PREFIX.tokens);
  return read.entries
    .map((e) => e.value)
    .filter((t): t is TokenRecord => t !== undefined)
    .map(publicView)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * Gives a token a new secret; the old one stops working at once. Role, stacks
 * and name stay. The expiry moves on by the token's lifetime (or to `expires`
 * from now when given). The write is fenced on the record's revision, so of
 * two rotations at once one fails instead of handing out a dead secret.
 */
export async function rotateToken(client: Etcd3, id: string, expires?: string): Promise<NewToken> {
  if (!/^[a-f0-9]{12}$/.test(id)) throw new VikingError('VIKING_E_BAD_REQUEST', `'${id}' is not a token id; viking token list shows them`);
  const got = await client.get(tokenKey(id)).exec();
  const kv = got.kvs[0];
  if (!kv) throw new VikingError('VIKING_E_NOT_FOUND', `no token with id ${id}; viking token list shows them`);
  const old = JSON.parse(kv.value.toString()) as TokenRecord;
  const now = Date.now();
  let expiresAt = old.expiresAt;
  if (expires !== undefined) expiresAt = new Date(now + parseDuration(expires, '--expires')).toISOString();
  else if (old.expiresAt !== undefined) {
    const lifetime = Date.parse(old.expiresAt) - Date.parse(old.rotatedAt ?? old.createdAt);
    expiresAt = new Date(now + (Number.isFinite(lifetime) && lifetime > 0 ? lifetime : 0)).toISOString();
  }
  const secret = randomBytes(32).toString('base64url');
  const record: TokenRecord = { ...old, hash: hashSecret(secret), rotatedAt: new Date(now).toISOString(), ...(expiresAt !== undefined ? { expiresAt } : {}) };
  const res = await client
    .if(tokenKey(id), 'Mod', '==', kv.mod_revision)
    .then(client.put(tokenKey(id)).value(JSON.stringify(record)))
    .commit();
  if (!res.succeeded) throw new VikingError('VIKING_E_TOKEN_CHANGED', `token ${id} changed while it was rotated (another rotation or a revoke); try again`);
  return { token: `vkt_${id}_${secret}`, record };
}

/** Deletes a token by id; refuses to delete the last one, which would lock everybody out of the API. */
export async function revokeToken(client: Etcd3, id: string): Promise<TokenRecord> {
  if (!/^[a-f0-9]{12}$/.test(id)) throw new VikingError('VIKING_E_BAD_REQUEST', `'${id}' is not a token id; viking token list shows them`);
  const record = await readJSON<TokenRecord>(client, tokenKey(id));
  if (!record) throw new VikingError('VIKING_E_NOT_FOUND', `no token with id ${id}; viking token list shows them`);
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
export async function ensureFirstToken(client: Etcd3, name = 'admin'): Promise<NewToken | undefined> {
  const existing = await client.getAll().prefix(PREFIX.tokens).count();
  if (existing > 0) return undefined;
  return createToken(client, name, 'viking up');
}

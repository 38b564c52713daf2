/**
 * The audit log: who changed what, kept in etcd under `/audit/`.
 *
 * Each entry is written once, with a create-only transaction, under a key
 * that sorts by time (lib/store/keys.ts auditKey) and that no other API host
 * can make at the same moment; nothing ever rewrites one. The only deletes
 * are the trims by the cluster's limits (settings auditMaxAgeDays and
 * auditMaxEntries), oldest first.
 */
import { randomBytes } from 'node:crypto';
import { Range, type Etcd3 } from 'etcd3';
import { PREFIX, auditKey, auditKeyTime, auditTimeKey } from '../store/keys.js';
import type { ClusterSettings } from '../store/settings.js';

export interface AuditEntry {
  /** When the request was answered (ISO time). */
  at: string;
  /** The token that made it. */
  token: { id: string; name: string };
  /** The user the CLI says it runs as (x-viking-user), when it said. */
  user?: string;
  /** The client's address as the API saw it. */
  address: string;
  method: string;
  /** The route's pattern, e.g. /v1/scale/:stack. */
  route: string;
  /** The path asked for. */
  path: string;
  /** The stack it was about, when it was about one. */
  stack?: string;
  /** The HTTP status of the answer (200 for a stream, whatever its end). */
  status: number;
  /** `ok`, or the VIKING_E_ code it failed with (also a stream's). */
  result: string;
  /** The release the request made (push, rollback, env). */
  release?: string;
  /** The API host that served it. */
  host: string;
}

export interface StoredAuditEntry extends AuditEntry {
  /** The entry's key after `/audit/`: unique, and ordered by time. */
  id: string;
}

let lastMs = 0;
let seq = 0;

/** The next key of this process: never earlier than the one before. */
function nextKey(): { key: string; ms: number } {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq = 0;
  } else seq++;
  return { key: auditKey(lastMs, seq, randomBytes(8).toString('hex')), ms: lastMs };
}

/** Appends one entry (create-only); returns its key. */
export async function appendAudit(client: Etcd3, entry: Omit<AuditEntry, 'at'>): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { key, ms } = nextKey();
    const value: AuditEntry = { at: new Date(ms).toISOString(), ...entry };
    const res = await client.if(key, 'Create', '==', 0).then(client.put(key).value(JSON.stringify(value))).commit();
    if (res.succeeded) return key;
  }
  throw new Error('no free audit key after 5 tries');
}

/**
 * Removes entries older than the age limit, then the oldest beyond the count
 * limit. Each is one range delete, so a lowered limit costs one call.
 */
export async function trimAudit(client: Etcd3, limits: Pick<ClusterSettings, 'auditMaxEntries' | 'auditMaxAgeDays'>, now = Date.now()): Promise<number> {
  let removed = 0;
  const cutoff = now - limits.auditMaxAgeDays * 86_400_000;
  const aged = await client.delete().range(new Range(PREFIX.audit, auditTimeKey(cutoff))).exec();
  removed += Number(aged.deleted);
  // Count and oldest keys from one revision: concurrent trims then each delete a prefix of the same
  // order, so together they remove no more than the later one wanted.
  const head = await client.getAll().prefix(PREFIX.audit).limit(1).exec();
  const excess = Number(head.count) - limits.auditMaxEntries;
  if (excess > 0) {
    const oldest = await client.getAll().prefix(PREFIX.audit).sort('Key', 'Ascend').limit(excess).revision(String(head.header.revision)).keys();
    const last = oldest.at(-1);
    if (last) {
      const res = await client.delete().range(new Range(PREFIX.audit, `${last}\0`)).exec();
      removed += Number(res.deleted);
    }
  }
  return removed;
}

export interface AuditQuery {
  /** Only entries at or after this time. */
  sinceMs?: number;
  /** Only entries written after this etcd revision (for following). */
  afterRevision?: string;
  /** Only entries an entry may show: the filter of the stack and of the token's scope. */
  keep?: (e: AuditEntry) => boolean;
  /** Most entries answered: the newest ones. */
  limit: number;
}

const PAGE = 500;

/** Entries oldest first (the newest `limit` of those that match), and the revision they were read at. */
export async function readAudit(client: Etcd3, q: AuditQuery): Promise<{ entries: StoredAuditEntry[]; revision: string }> {
  const start = q.sinceMs !== undefined ? auditTimeKey(q.sinceMs) : PREFIX.audit;
  const end = Range.prefix(PREFIX.audit).end;
  const out: StoredAuditEntry[] = [];
  let upper: Buffer = end;
  let revision: string | undefined;
  // Newest first, a page at a time, until enough match or the range is read.
  while (out.length < q.limit) {
    let b = client.getAll().inRange(new Range(start, upper)).sort('Key', 'Descend').limit(PAGE);
    if (revision !== undefined) b = b.revision(revision);
    if (q.afterRevision !== undefined) b = b.minModRevision(String(BigInt(q.afterRevision) + 1n));
    const res = await b.exec();
    revision ??= String(res.header.revision);
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (auditKeyTime(key) === undefined) continue;
      let e: AuditEntry;
      try {
        e = JSON.parse(kv.value.toString()) as AuditEntry;
      } catch {
        continue;
      }
      if (q.keep && !q.keep(e)) continue;
      out.push({ id: key.slice(PREFIX.audit.length), ...e });
      if (out.length >= q.limit) break;
    }
    if (res.kvs.length < PAGE) break;
    upper = res.kvs.at(-1)!.key;
  }
  return { entries: out.reverse(), revision: revision ?? '0' };
}

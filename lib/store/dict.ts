/**
 * Tables keyed by names users choose (stacks, nodes, images, env names).
 *
 * The records kept in etcd are JSON, so their name-keyed tables come back
 * from `JSON.parse` as ordinary objects, which inherit `constructor`,
 * `toString`, `hasOwnProperty`, `valueOf` and `__proto__` from
 * Object.prototype. Reading `table[name]` or testing `name in table` with
 * such a name finds the inherited function: a node named `constructor`
 * once made every route look like a website and stopped the route table of
 * the whole cluster. Every lookup by a user's name goes through `own` or
 * `hasKey`, which see own properties only; tables built in memory use
 * `dict()` (no prototype) or a Map. Writing into an ordinary object is safe
 * for every name but `__proto__`, which a `dict()` also stores as a key.
 */

/** A table with no prototype: `constructor`, `__proto__` and friends are plain keys in it. */
export function dict<T>(entries?: Iterable<readonly [string, T]>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  if (entries) for (const [k, v] of entries) out[k] = v;
  return out;
}

/** The value stored under `key` itself, never one inherited from Object.prototype. */
export function own<T>(table: Readonly<Record<string, T>> | null | undefined, key: string): T | undefined {
  return table != null && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** `key in table`, own keys only. */
export function hasKey(table: object | null | undefined, key: string): boolean {
  return table != null && Object.hasOwn(table, key);
}

/** Names that must never be taken as data keys where a JSON body parser is involved. */
export const PROTO_KEY = '__proto__';

/**
 * Which certificate a TLS server name gets: the most specific one that
 * covers it. A certificate whose names include the exact server name wins
 * over one that covers it only through a wildcard (`*.example.com`), as
 * nginx and browsers see it; among equals, the one stored under that very
 * name, then the one valid longest.
 *
 * Pure and small, so every router worker builds its index from the same
 * records and a unit test can check the choice with plain data.
 */

/** What the index needs of a certificate. */
export interface SniEntry {
  /** The name it is stored under (`/certs/pem/<domain>`). */
  domain: string;
  /** DNS names the leaf covers; `*.x` covers exactly one label below `x`. */
  names: readonly string[];
  notBefore: string;
  notAfter: string;
}

export class SniIndex<T extends SniEntry> {
  private readonly exact = new Map<string, T>();
  /** `*.example.com` stored as `example.com`. */
  private readonly wildcard = new Map<string, T>();

  constructor(entries: readonly T[]) {
    for (const e of entries) {
      for (const raw of new Set([...e.names, e.domain])) {
        const name = raw.toLowerCase();
        if (name.startsWith('*.')) put(this.wildcard, name.slice(2), e, name);
        else put(this.exact, name, e, name);
      }
    }
  }

  /** The certificate for a server name (case-insensitive, one trailing dot allowed), or undefined. */
  lookup(serverName: string | undefined): T | undefined {
    if (!serverName) return undefined;
    let name = serverName.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = this.exact.get(name);
    if (exact) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined;
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }
}

function put<T extends SniEntry>(map: Map<string, T>, key: string, e: T, name: string): void {
  const old = map.get(key);
  if (!old || better(e, old, name)) map.set(key, e);
}

/** `a` beats `b` for `name`: stored under that name, else valid longer. */
function better(a: SniEntry, b: SniEntry, name: string): boolean {
  const aOwn = a.domain.toLowerCase() === name;
  const bOwn = b.domain.toLowerCase() === name;
  if (aOwn !== bOwn) return aOwn;
  return Date.parse(a.notAfter) > Date.parse(b.notAfter);
}

/** A certificate serves now (not before its start, not after its end). */
export function currentlyValid(e: Pick<SniEntry, 'notBefore' | 'notAfter'>, now = Date.now()): boolean {
  return Date.parse(e.notBefore) <= now && now < Date.parse(e.notAfter);
}

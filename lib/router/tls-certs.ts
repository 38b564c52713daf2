/**
 * The certificates one router worker serves: SecureContexts chosen by SNI
 * (lib/certs/sni.ts: exact name before wildcard), swapped in one assignment
 * when the host process sends a new set, so a certificate changes without
 * a restart and a handshake in flight keeps the context it started with.
 *
 * A context is built once per certificate (by fingerprint and key) and kept
 * across sets; building one parses the key, which costs about a millisecond.
 * A certificate that does not load (a bad record) is left out and logged,
 * and never takes the others with it.
 */
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { SniIndex, currentlyValid, type SniEntry } from '../certs/sni.js';
import { normaliseHost } from './route-table.js';

/** What a worker gets of a CertRecord over IPC (the key included: it stays on this machine). */
export interface CertBundle extends SniEntry {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

interface Loaded extends SniEntry {
  context: tls.SecureContext;
  id: string;
}

const DNS_NAME = /^[a-z0-9.-]{1,253}$/;

const bundleId = (b: CertBundle): string => `${b.fingerprint}/${createHash('sha256').update(b.keyPem).digest('hex')}`;

export class TlsCertificates {
  private index = new SniIndex<Loaded>([]);
  private byId = new Map<string, Loaded>();
  /** Names checked by `covers`, cleared with each new set (a hostile client could send many names: bounded). */
  private coverCache = new Map<string, boolean>();
  /** When a certificate of the set starts or stops being valid: the cache is dropped then. */
  private nextChange = Infinity;

  constructor(private readonly log?: (msg: string) => void) {}

  /** Serves exactly these certificates from now on. */
  apply(bundles: readonly CertBundle[]): void {
    const next = new Map<string, Loaded>();
    for (const b of bundles) {
      const id = bundleId(b);
      const known = this.byId.get(id);
      if (known) {
        next.set(id, { ...known, domain: b.domain, names: b.names, notBefore: b.notBefore, notAfter: b.notAfter });
        continue;
      }
      try {
        const context = tls.createSecureContext({ cert: b.certPem, key: b.keyPem });
        next.set(id, { domain: b.domain, names: b.names, notBefore: b.notBefore, notAfter: b.notAfter, context, id });
      } catch (err) {
        // Never the key: the message of a failed load names the domain only.
        this.log?.(`router: certificate for ${b.domain} cannot be loaded; left out (${(err as Error).message.split('\n')[0]})`);
      }
    }
    this.byId = next;
    this.index = new SniIndex([...next.values()]);
    this.recheck();
  }

  /** The context for a server name, or undefined (the handshake then fails at once). */
  contextFor(serverName: string | undefined): tls.SecureContext | undefined {
    return this.index.lookup(serverName)?.context;
  }

  /**
   * A certificate valid now covers this Host header: plain HTTP for it is
   * redirected to HTTPS. Cheap on the hot path: nothing when there are no
   * certificates, one Map read for a name seen before.
   */
  covers(hostHeader: string): boolean {
    if (this.index.size === 0 || !hostHeader) return false;
    if (this.nextChange !== Infinity && Date.now() >= this.nextChange) this.recheck();
    const hit = this.coverCache.get(hostHeader);
    if (hit !== undefined) return hit;
    const host = normaliseHost(hostHeader);
    // Only a plain DNS name ever goes into a redirect's Location (no '@', '#', '/': nothing that moves the target).
    const e = DNS_NAME.test(host) ? this.index.lookup(host) : undefined;
    const yes = e !== undefined && currentlyValid(e);
    if (this.coverCache.size > 10_000) this.coverCache.clear();
    this.coverCache.set(hostHeader, yes);
    return yes;
  }

  get size(): number {
    return this.byId.size;
  }

  /** A certificate expired or became valid: answers cached before no longer hold. */
  private recheck(): void {
    this.coverCache = new Map();
    const now = Date.now();
    this.nextChange = Infinity;
    for (const e of this.byId.values()) {
      for (const t of [Date.parse(e.notBefore), Date.parse(e.notAfter)]) if (t > now && t < this.nextChange) this.nextChange = t;
    }
  }
}

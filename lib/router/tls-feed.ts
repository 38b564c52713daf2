/**
 * Where a router's certificates come from: the host process watches
 * `/certs/pem/` (custom certificates and those the ACME issuer stored) and
 * hands every router server the whole set, read at one revision, whenever
 * it changed. As with the routes (feed.ts), an event only wakes the loop and
 * the loop re-reads the whole prefix, also every CERT_RESYNC_MS in case a
 * watch went quiet, so a certificate changes on every router within
 * seconds and without a restart.
 *
 * Records that do not have the CertRecord shape are left out and logged by
 * key (never by content: they hold a private key).
 */
import { createHash } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { WakeLoop } from '../control/wake-loop.js';
import { readRecords, watchPrefix, type PrefixWatch } from '../store/client.js';
import { certPemPrefix } from '../store/keys.js';
import type { CertRecord } from '../certs/record.js';
import type { CertBundle } from './tls-certs.js';

/** Also the route feed's period: a lost watch event costs at most this long. */
export const CERT_RESYNC_MS = 5000;

export interface CertFeedOptions {
  client: Etcd3;
  resyncMs?: number;
  log?: (msg: string) => void;
  /** The set changed (and once at start, possibly empty). */
  onCertificates: (certs: CertBundle[]) => void;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The fields a router needs of a stored record, or null when it is not usable. */
export function bundleOf(value: unknown): CertBundle | null {
  const r = value as Partial<CertRecord> | null;
  if (!r || typeof r !== 'object') return null;
  if (!isString(r.domain) || !isString(r.certPem) || !isString(r.keyPem) || !isString(r.notBefore) || !isString(r.notAfter)) return null;
  if (!Array.isArray(r.names) || !r.names.every(isString)) return null;
  return { domain: r.domain, names: r.names, notBefore: r.notBefore, notAfter: r.notAfter, certPem: r.certPem, keyPem: r.keyPem, fingerprint: isString(r.fingerprint) ? r.fingerprint : '' };
}

export class CertFeed {
  private watch: PrefixWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSignature: string | undefined;
  private lastBad = '';
  latest: CertBundle[] | undefined;
  private readonly loop = new WakeLoop(
    async () => {
      const read = await readRecords(this.o.client, certPemPrefix);
      const certs: CertBundle[] = [];
      const bad: string[] = [];
      for (const e of read.entries) {
        const b = bundleOf(e.value);
        if (b) certs.push(b);
        else bad.push(e.key);
      }
      const badText = bad.join(', ');
      if (badText !== this.lastBad) {
        this.lastBad = badText;
        if (bad.length > 0) this.o.log?.(`router: certificate records left out (not a certificate record): ${badText}`);
      }
      const signature = createHash('sha256').update(JSON.stringify(certs)).digest('hex');
      if (signature === this.lastSignature) return;
      this.lastSignature = signature;
      this.latest = certs;
      this.o.onCertificates(certs);
    },
    (err) => this.o.log?.(`router: reading certificates failed: ${err.message}`),
  );

  constructor(private readonly o: CertFeedOptions) {}

  start(): void {
    this.watch = watchPrefix(this.o.client, certPemPrefix, () => this.loop.wake());
    this.timer = setInterval(() => this.loop.wake(), this.o.resyncMs ?? CERT_RESYNC_MS);
    this.loop.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.watch?.cancel();
    await this.loop.stop();
  }
}

/**
 * The ACME issuer: on the one host that holds the issuer lease
 * (issuer-lease.ts), a level-triggered loop orders a certificate over
 * HTTP-01 for every domain in `/domains` that lacks a valid one, renews each
 * when due, and backs off after failures (acme-schedule.ts holds the rules).
 * The ACME protocol itself is acme-client's.
 *
 * HTTP-01: the key authorization goes to `/acme-challenge/<token>` under the
 * issuer's lease, and every router answers it from there
 * (lib/router/acme-challenges.ts), so whichever router the CA's validation
 * reaches answers it. Results go to `/certs/pem/<domain>` (a CertRecord the
 * routers serve) and `/certs/status/<domain>`; every write is fenced on the
 * issuer key. Private keys are written to etcd and nowhere else: never
 * logged, never in an error message.
 */
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import * as acme from 'acme-client';
import { WakeLoop } from '../control/wake-loop.js';
import { readJSON, readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { ACME_ACCOUNT_KEY, ACME_CONFIG_KEY, PREFIX, acmeChallengeKey, certKey, certPemPrefix, certStatusKey, certStatusPrefix } from '../store/keys.js';
import type { CertRecord, CertStatus } from './record.js';
import { readAcmeConfig, type AcmeConfig } from './acme-config.js';
import { IssuerLease } from './issuer-lease.js';
import { DEFAULT_BACKOFF, failedStatus, planDomain, type BackoffPolicy } from './acme-schedule.js';
import { isChallengeToken } from '../router/acme-challenges.js';

export interface AcmeIssuerOptions {
  client: Etcd3;
  hostName: string;
  /** Seconds the issuer role outlives a dead issuer (default 10). */
  ttlSeconds?: number;
  backoff?: BackoffPolicy;
  /** Full re-read this often even without events (default 60 s). */
  resyncMs?: number;
  /** This host's router (`http://addr:port`), to see a challenge served before asking the CA to validate. */
  routerUrl?: () => string | undefined;
  log?: (msg: string) => void;
}

/** `/certs/acme/account`: the ACME account of the cluster for one directory and contact. The key is secret. */
interface AcmeAccount {
  directoryUrl: string;
  email: string;
  keyPem: string;
  url?: string;
}

/** A domain as it may be ordered: lowercase DNS labels, an optional leading `*.`. */
const DOMAIN = /^(\*\.)?(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The longest one order may take before it counts as failed. */
const ORDER_TIMEOUT_MS = 180_000;

export class AcmeIssuer {
  private readonly role: IssuerLease;
  private watches: PrefixWatch[] = [];
  private resync: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly loop: WakeLoop;
  /** Orders done by this host (for tests and status). */
  issued = 0;

  constructor(private readonly o: AcmeIssuerOptions) {
    this.loop = new WakeLoop(
      () => this.pass(),
      (err) => this.o.log?.(`acme: ${err.message}`),
      2000,
    );
    this.role = new IssuerLease({
      client: o.client,
      hostName: o.hostName,
      ...(o.ttlSeconds !== undefined ? { ttlSeconds: o.ttlSeconds } : {}),
      onElected: () => this.elected(),
      onLost: () => this.lost(),
      ...(o.log ? { log: o.log } : {}),
    });
  }

  get isIssuer(): boolean {
    return this.role.held;
  }

  start(): void {
    this.role.start();
  }

  /**
   * Gives the role back. An order in flight is not awaited past 2 s (it may
   * take minutes): its writes are fenced, so once the key is gone they fail.
   */
  async stop(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.stopLoop(), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await this.role.stop();
  }

  private elected(): void {
    for (const prefix of [PREFIX.domains, ACME_CONFIG_KEY, certPemPrefix]) this.watches.push(watchPrefix(this.o.client, prefix, () => this.loop.wake()));
    this.resync = setInterval(() => this.loop.wake(), this.o.resyncMs ?? 60_000);
    this.loop.start();
  }

  private lost(): void {
    void this.stopLoop();
  }

  private async stopLoop(): Promise<void> {
    clearInterval(this.resync);
    clearTimeout(this.wakeTimer);
    const watches = this.watches;
    this.watches = [];
    await Promise.all(watches.map((w) => w.cancel().catch(() => {})));
    await this.loop.stop();
  }

  /** One pass: read everything, then act on each domain that needs it, one order at a time. */
  private async pass(): Promise<void> {
    if (!this.role.held) return;
    const config = await readAcmeConfig(this.o.client);
    if (!config) return;
    const [domains, records, statuses] = await Promise.all([
      readPrefix<unknown>(this.o.client, PREFIX.domains),
      readPrefix<CertRecord>(this.o.client, certPemPrefix),
      readPrefix<CertStatus>(this.o.client, certStatusPrefix),
    ]);
    const recordOf = new Map(records.entries.filter((e) => e.value).map((e) => [e.key.slice(certPemPrefix.length), e.value!]));
    const statusOf = new Map(statuses.entries.filter((e) => e.value).map((e) => [e.key.slice(certStatusPrefix.length), e.value!]));
    const customNames = [...recordOf.values()].filter((r) => r.source !== 'acme').flatMap((r) => (Array.isArray(r.names) ? r.names : [r.domain]));
    let nextWake = Infinity;
    for (const entry of domains.entries) {
      const domain = entry.key.slice(PREFIX.domains.length);
      if (!DOMAIN.test(domain)) continue;
      if (!this.role.held) return;
      const status = statusOf.get(domain) ?? null;
      const plan = planDomain(domain, recordOf.get(domain) ?? null, status, Date.now(), customNames);
      if (plan.kind === 'wait') {
        if (plan.wakeAt !== null) nextWake = Math.min(nextWake, plan.wakeAt);
      } else if (plan.kind === 'clear') {
        await this.fenced([this.o.client.delete().key(certStatusKey(domain))]);
      } else if (plan.kind === 'fail') {
        await this.writeStatus({ domain, state: 'failed', lastError: plan.error, updatedAt: new Date().toISOString() });
        this.o.log?.(`acme: ${domain}: ${plan.error}`);
      } else {
        const next = await this.order(config, domain, plan.renewal, status);
        nextWake = Math.min(nextWake, next);
      }
    }
    clearTimeout(this.wakeTimer);
    if (Number.isFinite(nextWake)) {
      // setTimeout holds at most ~24.8 days; the resync covers anything later.
      const ms = Math.min(Math.max(nextWake - Date.now(), 250), this.o.resyncMs ?? 60_000);
      this.wakeTimer = setTimeout(() => this.loop.wake(), ms);
    }
  }

  /** Orders one certificate; returns when this domain wants attention next. */
  private async order(config: AcmeConfig, domain: string, renewal: boolean, previous: CertStatus | null): Promise<number> {
    const started = Date.now();
    await this.writeStatus({ domain, state: renewal ? 'renewing' : 'pending', ...(previous?.failures ? { failures: previous.failures } : {}), updatedAt: new Date().toISOString() });
    this.o.log?.(`acme: ordering a certificate for ${domain}${renewal ? ' (renewal)' : ''} from ${config.directoryUrl}`);
    try {
      const record = await withTimeout(this.obtain(config, domain), ORDER_TIMEOUT_MS, `the order took longer than ${ORDER_TIMEOUT_MS / 1000} s`);
      const status: CertStatus = { domain, state: 'valid', updatedAt: new Date().toISOString() };
      const ok = await this.fenced([
        this.o.client.put(certKey(domain)).value(JSON.stringify(record)),
        this.o.client.put(certStatusKey(domain)).value(JSON.stringify(status)),
      ]);
      if (!ok) throw new Error('this host lost the issuer role during the order; the new issuer orders again');
      this.issued++;
      this.o.log?.(`acme: ${domain}: certificate issued by ${record.issuer}, valid until ${record.notAfter} (${Date.now() - started} ms)`);
      return Date.now() + 250;
    } catch (err) {
      const message = describeAcmeError(err);
      const status = failedStatus(domain, previous, message, Date.now(), this.o.backoff ?? DEFAULT_BACKOFF);
      await this.writeStatus(status).catch(() => {});
      this.o.log?.(`acme: ${domain}: order failed (${status.failures} in a row; next try ${status.nextTryAt}): ${message}`);
      return Date.parse(status.nextTryAt!);
    }
  }

  /** The ACME exchange: account, order, HTTP-01 through etcd, certificate. */
  private async obtain(config: AcmeConfig, domain: string): Promise<CertRecord> {
    const account = await this.account(config);
    const client = new acme.Client({ directoryUrl: config.directoryUrl, accountKey: account.keyPem, ...(account.url ? { accountUrl: account.url } : {}) });
    const [keyPem, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey());
    const chain = await client.auto({
      csr,
      email: config.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client's own check resolves the name itself; ours asks this host's router instead (served()).
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        if (challenge.type !== 'http-01') throw new Error(`the CA offered ${challenge.type}; viking answers http-01 only`);
        const token = (challenge as { token?: string }).token ?? '';
        if (!isChallengeToken(token)) throw new Error('the CA sent a challenge token that is not base64url');
        const ok = await this.fenced([this.o.client.put(acmeChallengeKey(token)).value(keyAuthorization).lease(this.role.id)]);
        if (!ok) throw new Error('this host lost the issuer role');
        await this.served(token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        const token = (challenge as { token?: string }).token ?? '';
        if (isChallengeToken(token)) await this.o.client.delete().key(acmeChallengeKey(token));
      },
    });
    if (account.url === undefined) {
      const url = client.getAccountUrl();
      await this.fenced([this.o.client.put(ACME_ACCOUNT_KEY).value(JSON.stringify({ ...account, url } satisfies AcmeAccount))]);
    }
    return certRecord(domain, chain, keyPem.toString());
  }

  /** The cluster's account for this directory and contact, made (and stored, fenced) the first time. */
  private async account(config: AcmeConfig): Promise<AcmeAccount> {
    const stored = await readJSON<AcmeAccount>(this.o.client, ACME_ACCOUNT_KEY);
    if (stored && stored.directoryUrl === config.directoryUrl && stored.email === config.email && typeof stored.keyPem === 'string') return stored;
    const made: AcmeAccount = { directoryUrl: config.directoryUrl, email: config.email, keyPem: (await acme.crypto.createPrivateEcdsaKey()).toString() };
    if (!(await this.fenced([this.o.client.put(ACME_ACCOUNT_KEY).value(JSON.stringify(made))]))) throw new Error('this host lost the issuer role');
    return made;
  }

  /**
   * Waits (up to 5 s) until this host's router answers the challenge, so the
   * CA is asked to validate only once the watch carried the answer to the
   * routers. Routers of other hosts watch the same key; a router that has
   * not seen it yet makes the CA's check fail and the order is tried again.
   */
  private async served(token: string, keyAuthorization: string): Promise<void> {
    const base = this.o.routerUrl?.();
    if (!base) return;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if ((await getText(`${base}/.well-known/acme-challenge/${token}`).catch(() => '')) === keyAuthorization) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.o.log?.(`acme: this host's router did not answer the challenge within 5 s; asking the CA anyway`);
  }

  private async writeStatus(status: CertStatus): Promise<void> {
    await this.fenced([this.o.client.put(certStatusKey(status.domain)).value(JSON.stringify(status))]);
  }

  /** Runs the puts in one transaction that applies only while this host holds the issuer key. */
  private async fenced(ops: Parameters<ReturnType<Etcd3['if']>['then']>): Promise<boolean> {
    if (!this.role.held) return false;
    const res = await this.o.client.if(...this.role.fence()).then(...ops).commit();
    return res.succeeded;
  }
}

/** A CertRecord from the chain the CA returned and the key made for it. */
export function certRecord(domain: string, chainPem: string, keyPem: string): CertRecord {
  const [leafPem] = acme.crypto.splitPemChain(chainPem);
  if (!leafPem) throw new Error('the CA returned no certificate');
  const leaf = new X509Certificate(leafPem);
  const names = (leaf.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  const issuerLine = leaf.issuer.split('\n');
  const cn = issuerLine.find((l) => l.startsWith('CN='))?.slice(3);
  const org = issuerLine.find((l) => l.startsWith('O='))?.slice(2);
  return {
    domain,
    names: names.length > 0 ? names : [domain],
    source: 'acme',
    issuer: cn ?? org ?? leaf.issuer,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    certPem: chainPem,
    keyPem,
    fingerprint: leaf.fingerprint256,
    updatedAt: new Date().toISOString(),
  };
}

/** The CA's problem detail when there is one (never anything of ours that is secret), in one line. */
function describeAcmeError(err: unknown): string {
  const e = err as { message?: string; response?: { data?: { detail?: string; type?: string } } };
  const detail = e.response?.data?.detail;
  const text = detail ? `${detail}${e.response?.data?.type ? ` (${e.response.data.type})` : ''}` : (e.message ?? String(err));
  return text.replace(/-----BEGIN[^]*?-----END[^-]*-----/g, '[pem]').replace(/\s+/g, ' ').slice(0, 500);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.length + body.length > 4096 ? '' : d));
      res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

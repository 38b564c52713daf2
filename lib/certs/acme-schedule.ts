/**
 * When the ACME issuer acts on a domain, as pure functions of plain data and
 * a clock, so the rules are tested without an ACME server: what a domain
 * needs now (nothing, an order, a renewal, a failure to report), when a
 * certificate is due for renewal, and how long to wait after a failure.
 */
import type { CertRecord, CertStatus } from './record.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Renew this long before expiry (Let's Encrypt's own advice for 90-day certificates). */
export const RENEW_BEFORE_MS = 30 * DAY_MS;

export interface BackoffPolicy {
  /** Wait after the first failure; doubles with each further one. */
  baseMs: number;
  /** The longest wait between two tries. */
  maxMs: number;
}

/**
 * 5 minutes, doubling to 1 day at most: a domain whose DNS does not point at
 * the cluster yet is tried again soon after it is fixed, without eating
 * Let's Encrypt's failed-validation limit (5 per hour per account and name).
 */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5 * 60 * 1000, maxMs: DAY_MS };

/**
 * When a certificate is due: 30 days before it expires, or at two thirds of
 * its lifetime when it lives less than 90 days (short-lived certificates,
 * test CAs), whichever comes first.
 */
export function renewAt(notBefore: string, notAfter: string): number {
  const from = Date.parse(notBefore);
  const to = Date.parse(notAfter);
  const lifetime = Math.max(0, to - from);
  return to - Math.min(RENEW_BEFORE_MS, lifetime / 3);
}

/** Wait before the next try after `failures` failures in a row (1 = the first). */
export function backoffMs(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const n = Math.max(1, Math.min(failures, 40));
  return Math.min(policy.maxMs, policy.baseMs * 2 ** (n - 1));
}

/** Whether a certificate name (`a.example.com` or `*.example.com`) covers a domain; a wildcard covers one label. */
export function nameCovers(name: string, domain: string): boolean {
  const n = name.toLowerCase();
  const d = domain.toLowerCase();
  if (n === d) return true;
  if (!n.startsWith('*.') || d.startsWith('*.')) return false;
  const dot = d.indexOf('.');
  return dot > 0 && d.slice(dot + 1) === n.slice(2);
}

export const isWildcard = (domain: string): boolean => domain.startsWith('*.');

/** What the user reads for a wildcard domain: HTTP-01 cannot prove it, an operator's certificate can. */
export const wildcardError = (domain: string): string =>
  `${domain} is a wildcard: ACME HTTP-01 cannot validate wildcard names. Add a certificate for it: viking certs add '${domain}' --cert FILE --key FILE`;

export type DomainPlan =
  /** Nothing to do now; look again at `wakeAt` (ms since epoch) or on a change. */
  | { kind: 'wait'; wakeAt: number | null }
  /** Order a certificate: the first one (`renewal` false) or a new one for an expiring one. */
  | { kind: 'order'; renewal: boolean }
  /** Record that this domain cannot be served by ACME (once). */
  | { kind: 'fail'; error: string }
  /** An operator's certificate took over: the issuer's old status (a failure, say) would mislead; remove it. */
  | { kind: 'clear' };

/**
 * What the issuer does for one domain now. A custom certificate (any record
 * whose source is not 'acme') is the operator's: ACME never replaces it.
 * After a failure, nothing happens before `nextTryAt`.
 */
export function planDomain(domain: string, record: CertRecord | null, status: CertStatus | null, now: number, customNames: readonly string[] = []): DomainPlan {
  // An operator's certificate for it, or one that covers it (a wildcard, say): SNI would prefer an ACME one, so none is ordered.
  if ((record && record.source !== 'acme') || (!record && customNames.some((n) => nameCovers(n, domain)))) {
    return status ? { kind: 'clear' } : { kind: 'wait', wakeAt: null };
  }
  if (isWildcard(domain)) {
    const error = wildcardError(domain);
    return status?.state === 'failed' && status.lastError === error ? { kind: 'wait', wakeAt: null } : { kind: 'fail', error };
  }
  const retryAt = status?.nextTryAt ? Date.parse(status.nextTryAt) : NaN;
  if (status?.state === 'failed' && Number.isFinite(retryAt) && retryAt > now) return { kind: 'wait', wakeAt: retryAt };
  if (!record) return { kind: 'order', renewal: false };
  const due = renewAt(record.notBefore, record.notAfter);
  if (due <= now) return { kind: 'order', renewal: true };
  return { kind: 'wait', wakeAt: due };
}

/** The status after a failed order: one more failure, and when to try again. */
export function failedStatus(domain: string, previous: CertStatus | null, error: string, now: number, policy: BackoffPolicy = DEFAULT_BACKOFF): CertStatus {
  const failures = (previous?.failures ?? 0) + 1;
  return {
    domain,
    state: 'failed',
    lastError: error,
    failures,
    nextTryAt: new Date(now + backoffMs(failures, policy)).toISOString(),
    updatedAt: new Date(now).toISOString(),
  };
}

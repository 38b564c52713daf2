/**
 * What the cluster keeps about a TLS certificate, in etcd under `/certs/`.
 * Two writers share this shape: custom certificates added by an operator
 * (`viking certs add`) and certificates ordered over ACME by the elected
 * issuer. Every router reads the same records and serves them by SNI, so a
 * certificate issued through one router is served by all of them.
 *
 * The private key lives only in `CertRecord.keyPem`; it must never reach a
 * log line, a `/v1` answer or the CLI. Answers use `CertSummary`.
 */

/** Where a certificate came from. */
export type CertSource = 'acme' | 'custom';

/** `/certs/pem/<domain>`: a certificate and its key, ready for a TLS server. */
export interface CertRecord {
  /** The name it is stored under: `app.example.com` or a wildcard `*.example.com`. */
  domain: string;
  /** Every DNS name the leaf certificate covers (its subjectAltNames). */
  names: string[];
  source: CertSource;
  /** The issuer's common name or organisation, as shown to users. */
  issuer: string;
  /** ISO 8601 times from the leaf certificate. */
  notBefore: string;
  notAfter: string;
  /** The leaf first, then its chain, PEM. */
  certPem: string;
  /** The private key, PEM. Secret. */
  keyPem: string;
  /** SHA-256 fingerprint of the leaf, hex with colons, as node:crypto's X509Certificate prints it. */
  fingerprint: string;
  updatedAt: string;
}

/** The state of a domain's certificate, as users see it. */
export type CertState = 'pending' | 'valid' | 'renewing' | 'failed' | 'custom' | 'expired';

/** `/certs/status/<domain>`: what the issuer last did for a domain (ACME only; custom certificates have none). */
export interface CertStatus {
  domain: string;
  state: CertState;
  lastError?: string;
  /** When the issuer tries again after a failure (ISO 8601). */
  nextTryAt?: string;
  /** Failures in a row, for the backoff. */
  failures?: number;
  updatedAt: string;
}

/** A certificate as `/v1/certs` and `viking certs` show it: never the key. */
export interface CertSummary {
  domain: string;
  names: string[];
  source: CertSource | 'none';
  issuer: string | null;
  notAfter: string | null;
  state: CertState;
  lastError: string | null;
}

/** Drops the secret parts of a record. */
export function summarize(record: CertRecord | null, status: CertStatus | null, domain: string): CertSummary {
  const expired = record !== null && Date.parse(record.notAfter) <= Date.now();
  return {
    domain,
    names: record?.names ?? [],
    source: record?.source ?? 'none',
    issuer: record?.issuer ?? null,
    notAfter: record?.notAfter ?? null,
    state: expired ? 'expired' : (status?.state ?? (record?.source === 'custom' ? 'custom' : record ? 'valid' : 'pending')),
    lastError: status?.lastError ?? null,
  };
}

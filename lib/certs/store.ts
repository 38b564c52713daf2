/**
 * Certificates in etcd as the API sees them: add a custom one, remove one,
 * list them all without their keys. The records are the ones every router
 * watches (lib/router/tls-feed.ts), so a write here reaches every router
 * within seconds.
 */
import type { Etcd3 } from 'etcd3';
import { readRecords } from '../store/client.js';
import { certKey, certPemPrefix, certStatusPrefix } from '../store/keys.js';
import { VikingError } from '../errors.js';
import { checkCertDomain, checkCertificate } from './custom.js';
import { summarize, type CertRecord, type CertStatus, type CertSummary } from './record.js';

/** Checks and stores a custom certificate for `domain` (replacing what was there). */
export async function addCustomCertificate(client: Etcd3, domain: string, certPem: string, keyPem: string): Promise<CertSummary> {
  const record = checkCertificate(domain, certPem, keyPem, 'custom');
  await client.put(certKey(record.domain)).value(JSON.stringify(record));
  return summarize(record, null, record.domain);
}

/** Removes the certificate of `domain`; a domain without one is VIKING_E_NOT_FOUND. */
export async function removeCertificate(client: Etcd3, domainRaw: string): Promise<CertSummary> {
  const domain = checkCertDomain(domainRaw);
  const res = await client.delete().key(certKey(domain)).getPrevious();
  const prev = res[0];
  if (!prev) throw new VikingError('VIKING_E_NOT_FOUND', `no certificate is stored for ${domain}; viking certs lists them`);
  return summarize(JSON.parse(prev.value.toString()) as CertRecord, null, domain);
}

/** Every certificate and every domain the ACME issuer tracks, by domain, without keys. */
export async function listCertificates(client: Etcd3): Promise<CertSummary[]> {
  const [pems, statuses] = await Promise.all([readRecords(client, certPemPrefix), readRecords(client, certStatusPrefix)]);
  const records = new Map<string, CertRecord>();
  for (const e of pems.entries) {
    const r = e.value as CertRecord | undefined;
    if (r && typeof r === 'object' && typeof r.notAfter === 'string') records.set(e.key.slice(certPemPrefix.length), r);
  }
  const status = new Map<string, CertStatus>();
  for (const e of statuses.entries) {
    const s = e.value as CertStatus | undefined;
    if (s && typeof s === 'object' && typeof s.state === 'string') status.set(e.key.slice(certStatusPrefix.length), s);
  }
  const domains = [...new Set([...records.keys(), ...status.keys()])].sort();
  return domains.map((d) => summarize(records.get(d) ?? null, status.get(d) ?? null, d));
}

/**
 * Checks a certificate an operator brings (`viking certs add DOMAIN --cert
 * FILE --key FILE`) and turns it into the CertRecord every router serves.
 *
 * What is refused, each with its own error code: a file without a PEM
 * certificate, a leaf that is expired or not yet valid, a key that is not a
 * readable private key or not the leaf's, a chain whose certificates do not
 * sign each other in order, and names that do not cover the domain. A
 * router would otherwise serve a certificate every client rejects, and only
 * the visitors would find out.
 *
 * The key is checked and stored, never echoed: no message here quotes it.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { VikingError } from '../errors.js';
import type { CertRecord, CertSource } from './record.js';

/** `app.example.com` or `*.example.com`: lowercase DNS labels, a wildcard only as the whole first label. */
const DOMAIN_RE = /^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lowercases a domain and checks it can be a key segment and a TLS name. */
export function checkCertDomain(raw: string): string {
  const domain = raw.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN_RE.test(domain) || !domain.includes('.')) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `${JSON.stringify(raw.slice(0, 80))} is not a domain a certificate can be added for; use a name such as app.example.com or *.example.com`);
  }
  return domain;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file, in file order. */
export function parseChain(certPem: string): X509Certificate[] {
  const blocks = certPem.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) throw new VikingError('VIKING_E_CERT_INVALID', 'the certificate file holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new VikingError('VIKING_E_CERT_INVALID', `certificate ${i + 1} of the certificate file cannot be read: ${(err as Error).message}`);
    }
  });
}

/** DNS names of a certificate's subjectAltName, lowercased. */
export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const out: string[] = [];
  for (const part of san.split(/,\s*/)) if (part.startsWith('DNS:')) out.push(part.slice(4).toLowerCase());
  return out;
}

/** A name of the certificate covers the domain: equal, or a wildcard one label above a plain name. */
export function namesCover(names: readonly string[], domain: string): boolean {
  if (names.includes(domain)) return true;
  if (domain.startsWith('*.')) return false;
  const dot = domain.indexOf('.');
  return dot > 0 && names.includes(`*.${domain.slice(dot + 1)}`);
}

/** The issuer as users know it: its common name, else its organisation. */
export function issuerName(cert: X509Certificate): string {
  const fields = new Map(cert.issuer.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  return fields.get('CN') ?? fields.get('O') ?? cert.issuer.replace(/\n/g, ', ');
}

function readKey(keyPem: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) throw new VikingError('VIKING_E_CERT_KEY_INVALID', 'the key file holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
  try {
    return createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    const why = /passphrase/i.test((err as Error).message) ? 'it is encrypted; store it without a passphrase (openssl pkey -in KEY -out PLAIN)' : 'it cannot be read';
    throw new VikingError('VIKING_E_CERT_KEY_INVALID', `the private key is not usable: ${why}`);
  }
}

/**
 * Checks a certificate and key for `domain` and returns the record to
 * store. `now` is for tests.
 */
export function checkCertificate(domainRaw: string, certPem: string, keyPem: string, source: CertSource = 'custom', now = Date.now()): CertRecord {
  const domain = checkCertDomain(domainRaw);
  const chain = parseChain(certPem);
  const leaf = chain[0]!;
  const key = readKey(keyPem);
  if (!leaf.checkPrivateKey(key)) {
    throw new VikingError('VIKING_E_CERT_KEY_MISMATCH', `the private key does not belong to the certificate for ${leaf.subject.replace(/\n/g, ', ')}; give the key the certificate was made for`);
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new VikingError(
        'VIKING_E_CERT_CHAIN_INVALID',
        `certificate ${i + 1} of the file (${child.subject.replace(/\n/g, ', ')}) was not issued by certificate ${i + 2} (${parent.subject.replace(/\n/g, ', ')}); put the leaf first, then each issuer in order`,
      );
    }
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now) throw new VikingError('VIKING_E_CERT_INVALID', `the certificate expired on ${notAfter.toISOString()}`);
  if (notBefore.getTime() > now) throw new VikingError('VIKING_E_CERT_INVALID', `the certificate is not valid before ${notBefore.toISOString()}`);
  const names = dnsNames(leaf);
  if (!namesCover(names, domain)) {
    throw new VikingError(
      'VIKING_E_CERT_NAME_MISMATCH',
      `the certificate covers ${names.length > 0 ? names.join(', ') : 'no DNS name (it has no subjectAltName)'}, not ${domain}${domain.startsWith('*.') ? '' : ' (a wildcard covers one label only)'}`,
    );
  }
  return {
    domain,
    names,
    source,
    issuer: issuerName(leaf),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    certPem: chain.map((c) => c.toString()).join(''),
    keyPem,
    fingerprint: leaf.fingerprint256,
    updatedAt: new Date(now).toISOString(),
  };
}

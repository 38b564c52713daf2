/**
 * Sealing one secret value: AES-256-GCM under the cluster key, with a fresh
 * random 96-bit nonce per value. The stack and the name are the additional
 * authenticated data, so a sealed value copied to another stack or name in
 * etcd does not open (it fails as VIKING_E_SECRET_UNREADABLE, never as a
 * wrong value). Each sealed value names the fingerprint of the key it was
 * sealed with, so a host with another key says so instead of failing blind.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { VikingError } from '../errors.js';
import type { SealedSecret } from '../store/records.js';

export interface ClusterKey {
  /** 32 bytes. */
  bytes: Buffer;
  /** Fingerprint: 16 hex of sha256 over a label and the key; says which key, reveals nothing of it. */
  id: string;
}

export function keyFromBytes(bytes: Buffer): ClusterKey {
  if (bytes.length !== 32) throw new VikingError('VIKING_E_SECRETS_KEY_MISSING', `the secrets key must be 32 bytes, got ${bytes.length}`);
  return { bytes, id: createHash('sha256').update('viking secrets key v1\0').update(bytes).digest('hex').slice(0, 16) };
}

const aad = (stack: string, name: string): Buffer => Buffer.from(`viking-secret\0${stack}\0${name}`);

export function sealSecret(key: ClusterKey, stack: string, name: string, value: string): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv);
  cipher.setAAD(aad(stack, name));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return { name, iv: iv.toString('base64'), data: data.toString('base64'), tag: cipher.getAuthTag().toString('base64'), key: key.id };
}

export function openSecret(key: ClusterKey, stack: string, sealed: SealedSecret): string {
  if (sealed.key !== key.id) {
    throw new VikingError('VIKING_E_SECRETS_KEY_MISSING', `secret ${sealed.name} of ${stack} was sealed with key ${sealed.key}, this host has key ${key.id}; copy the cluster's secrets.key here`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(aad(stack, sealed.name));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new VikingError('VIKING_E_SECRET_UNREADABLE', `secret ${sealed.name} of ${stack} does not open with the cluster key (altered in etcd?); set it again with viking secrets set`);
  }
}

/**
 * The cluster's ACME settings, kept in etcd at ACME_CONFIG_KEY so every
 * host's issuer uses the same directory and contact: written by
 * `viking host` / `viking up` when started with `--acme-email`, removed with
 * `--acme-email off`. Absent means ACME is off: no certificate is ordered,
 * because the directory's terms need a contact and a wrong directory would
 * burn its rate limits.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readJSON } from '../store/client.js';
import { ACME_CONFIG_KEY } from '../store/keys.js';

/** Let's Encrypt production, the default directory. */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export interface AcmeConfig {
  directoryUrl: string;
  email: string;
  updatedAt: string;
}

/** A plain mailbox: no spaces, no `mailto:`, one `@`, bounded. */
const EMAIL = /^[^\s@:<>,;"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/;

/** Checks the flags; `off` as the email turns ACME off (null). */
export function parseAcmeFlags(email: string, directoryUrl: string = LETS_ENCRYPT_DIRECTORY): Omit<AcmeConfig, 'updatedAt'> | null {
  if (email === 'off') return null;
  if (!EMAIL.test(email)) throw new VikingError('VIKING_E_BAD_REQUEST', `--acme-email: ${JSON.stringify(email)} is not an email address (the ACME directory's contact for expiry notices), or 'off'`);
  let url: URL;
  try {
    url = new URL(directoryUrl);
  } catch {
    throw new VikingError('VIKING_E_BAD_REQUEST', `--acme-directory: ${JSON.stringify(directoryUrl)} is not a URL (e.g. ${LETS_ENCRYPT_DIRECTORY})`);
  }
  if (url.protocol !== 'https:') throw new VikingError('VIKING_E_BAD_REQUEST', `--acme-directory must be an https:// URL (ACME runs over HTTPS), not ${url.protocol}`);
  return { directoryUrl: url.toString(), email };
}

export async function readAcmeConfig(client: Etcd3): Promise<AcmeConfig | null> {
  const c = await readJSON<Partial<AcmeConfig>>(client, ACME_CONFIG_KEY);
  if (!c || typeof c.directoryUrl !== 'string' || typeof c.email !== 'string') return null;
  return { directoryUrl: c.directoryUrl, email: c.email, updatedAt: String(c.updatedAt ?? '') };
}

/** Stores the settings (null: ACME off). Written only when they change, so restarts do not wake every issuer. */
export async function writeAcmeConfig(client: Etcd3, config: Omit<AcmeConfig, 'updatedAt'> | null): Promise<void> {
  if (config === null) {
    await client.delete().key(ACME_CONFIG_KEY);
    return;
  }
  const now = await readAcmeConfig(client);
  if (now && now.directoryUrl === config.directoryUrl && now.email === config.email) return;
  await client.put(ACME_CONFIG_KEY).value(JSON.stringify({ ...config, updatedAt: new Date().toISOString() } satisfies AcmeConfig));
}

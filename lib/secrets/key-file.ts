/**
 * Where the cluster's secrets key lives, and how a host gets it.
 *
 * The key is 32 random bytes in a file, `secrets.key` in the data dir of a
 * master (mode 0600, base64 text), or wherever `viking host --secrets-key`
 * points. The first master that starts with no key anywhere makes one and
 * puts its fingerprint (never the key) at `/secrets-key/id` with a
 * create-only transaction, so two masters starting together cannot both
 * make one. Every other host that should seal or open secrets needs a copy
 * of that file, put there by the operator (scp, a config-management tool):
 * viking never sends the key over the network or through etcd, so someone
 * who reads etcd, or a backup of it, reads only ciphertext. The limits:
 * a host without the key cannot start containers that use secrets (they
 * fail with VIKING_E_SECRETS_KEY_MISSING, visible in viking ps), and root on
 * a host with the key can read every secret.
 */
import { chmod, readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { SECRETS_KEY_ID_KEY } from '../store/keys.js';
import { keyFromBytes, type ClusterKey } from './seal.js';

export const SECRETS_KEY_FILE = 'secrets.key';

let hostKey: ClusterKey | undefined;
let missingWhy = 'this host has no secrets key';

/** The key this process seals and opens with (set by the host at start). */
export function hostSecretsKey(): ClusterKey {
  if (!hostKey) throw new VikingError('VIKING_E_SECRETS_KEY_MISSING', `${missingWhy}; copy secrets.key from a master's data dir and start viking host with --secrets-key FILE`);
  return hostKey;
}

export function setHostSecretsKey(key: ClusterKey | undefined, why?: string): void {
  hostKey = key;
  if (why) missingWhy = why;
}

async function readKeyFile(file: string): Promise<ClusterKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return keyFromBytes(Buffer.from(text.trim(), 'base64'));
}

/**
 * Loads the key for this host: reads `file`; a master (`create`) makes it if
 * neither the file nor a fingerprint in etcd exists. A key whose fingerprint
 * differs from the cluster's is not used. Returns the key or why there is none.
 */
export async function loadSecretsKey(client: Etcd3, file: string, create: boolean): Promise<{ key?: ClusterKey; why: string }> {
  let key = await readKeyFile(file);
  const clusterId = await client.get(SECRETS_KEY_ID_KEY).string();
  if (!key && create && !clusterId) {
    const made = keyFromBytes(randomBytes(32));
    const res = await client.if(SECRETS_KEY_ID_KEY, 'Version', '==', 0).then(client.put(SECRETS_KEY_ID_KEY).value(made.id)).commit();
    if (res.succeeded) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, `${made.bytes.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      await chmod(file, 0o600);
      return { key: made, why: `made the cluster's secrets key in ${file}` };
    }
    return loadSecretsKey(client, file, false);
  }
  if (!key) {
    return { why: `no secrets key at ${file}${clusterId ? ` (the cluster's key is ${clusterId}: copy secrets.key from a master)` : ''}` };
  }
  if (clusterId && clusterId !== key.id) {
    return { why: `the secrets key at ${file} is ${key.id}, not the cluster's ${clusterId}` };
  }
  if (!clusterId) {
    // A key copied in before any master made one: it becomes the cluster's.
    await client.if(SECRETS_KEY_ID_KEY, 'Version', '==', 0).then(client.put(SECRETS_KEY_ID_KEY).value(key.id)).commit();
    key = (await client.get(SECRETS_KEY_ID_KEY).string()) === key.id ? key : undefined;
    if (!key) return loadSecretsKey(client, file, false);
  }
  return { key, why: `secrets key ${key.id} from ${file}` };
}

/**
 * Cluster-wide settings, kept in etcd at `/settings` so every API of the
 * cluster applies the same limits. Unset fields take their defaults; a
 * record that cannot be read counts as all defaults, never as "no limit".
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { SETTINGS_KEY } from './keys.js';
import { DEFAULT_MAX_SCALE } from '../vikingfile/index.js';

export interface ClusterSettings {
  /** Most replicas one node may run (Vikingfile `scale:` and `viking scale`). */
  maxScale: number;
}

/** A cluster can never be set above this: it bounds what one push can ask of etcd and of dispatch. */
export const MAX_SCALE_CEILING = 10_000;

export const DEFAULT_SETTINGS: ClusterSettings = { maxScale: DEFAULT_MAX_SCALE };

export async function readSettings(client: Etcd3): Promise<ClusterSettings> {
  const text = await client.get(SETTINGS_KEY).string();
  if (!text) return { ...DEFAULT_SETTINGS };
  let stored: Partial<ClusterSettings>;
  try {
    stored = JSON.parse(text) as Partial<ClusterSettings>;
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
  const maxScale = stored.maxScale;
  return {
    maxScale: Number.isInteger(maxScale) && maxScale! >= 1 && maxScale! <= MAX_SCALE_CEILING ? maxScale! : DEFAULT_SETTINGS.maxScale,
  };
}

/** Changes some settings; the others keep their values. */
export async function writeSettings(client: Etcd3, patch: Partial<ClusterSettings>): Promise<ClusterSettings> {
  if (patch.maxScale !== undefined && (!Number.isInteger(patch.maxScale) || patch.maxScale < 1 || patch.maxScale > MAX_SCALE_CEILING)) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `max-scale must be a whole number from 1 to ${MAX_SCALE_CEILING}`);
  }
  const next = { ...(await readSettings(client)), ...patch };
  await client.put(SETTINGS_KEY).value(JSON.stringify(next));
  return next;
}

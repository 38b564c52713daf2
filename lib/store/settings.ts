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
  /** Most audit entries kept; the oldest go first (lib/audit/log.ts). */
  auditMaxEntries: number;
  /** Audit entries older than this many days are removed. */
  auditMaxAgeDays: number;
}

/** A cluster can never be set above this: it bounds what one push can ask of etcd and of dispatch. */
export const MAX_SCALE_CEILING = 10_000;

/** Each setting's range: the API schema, the CLI and the reader all use it. */
export const SETTING_RANGES: Readonly<Record<keyof ClusterSettings, { min: number; max: number; flag: string }>> = {
  maxScale: { min: 1, max: MAX_SCALE_CEILING, flag: 'max-scale' },
  auditMaxEntries: { min: 10, max: 1_000_000, flag: 'audit-max-entries' },
  auditMaxAgeDays: { min: 1, max: 3650, flag: 'audit-max-age-days' },
};

export const DEFAULT_SETTINGS: ClusterSettings = { maxScale: DEFAULT_MAX_SCALE, auditMaxEntries: 10_000, auditMaxAgeDays: 90 };

const NAMES = Object.keys(SETTING_RANGES) as Array<keyof ClusterSettings>;

function inRange(name: keyof ClusterSettings, v: unknown): v is number {
  const r = SETTING_RANGES[name];
  return typeof v === 'number' && Number.isInteger(v) && v >= r.min && v <= r.max;
}

export async function readSettings(client: Etcd3): Promise<ClusterSettings> {
  const text = await client.get(SETTINGS_KEY).string();
  if (!text) return { ...DEFAULT_SETTINGS };
  let stored: Partial<Record<keyof ClusterSettings, unknown>>;
  try {
    stored = JSON.parse(text) as Partial<ClusterSettings>;
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
  const out = { ...DEFAULT_SETTINGS };
  for (const name of NAMES) {
    const v = stored?.[name];
    if (inRange(name, v)) out[name] = v;
  }
  return out;
}

/** Changes some settings; the others keep their values. */
export async function writeSettings(client: Etcd3, patch: Partial<ClusterSettings>): Promise<ClusterSettings> {
  for (const name of NAMES) {
    const v = patch[name];
    if (v !== undefined && !inRange(name, v)) {
      const r = SETTING_RANGES[name];
      throw new VikingError('VIKING_E_BAD_REQUEST', `${r.flag} must be a whole number from ${r.min} to ${r.max}`);
    }
  }
  const next = { ...(await readSettings(client)) };
  for (const name of NAMES) if (patch[name] !== undefined) next[name] = patch[name]!;
  await client.put(SETTINGS_KEY).value(JSON.stringify(next));
  return next;
}

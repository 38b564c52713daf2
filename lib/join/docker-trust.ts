/**
 * Docker trusts the cluster registry (plain HTTP on the first server's
 * address) only when daemon.json lists it in "insecure-registries". This
 * adds exactly that one address and keeps every other key and entry as it
 * was; when the address is there already nothing is written, so the caller
 * restarts dockerd only when the file really changed.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';

export interface TrustResult {
  /** The new file text (the old one when unchanged). */
  text: string;
  changed: boolean;
}

/** Pure: daemon.json text (or '' / undefined for no file) with `registry` trusted. */
export function mergeInsecureRegistry(current: string | undefined, registry: string, file = 'daemon.json'): TrustResult {
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(registry)) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `'${registry}' is not a registry address (host:port)`);
  }
  const blank = current === undefined || current.trim() === '';
  let config: Record<string, unknown> = {};
  if (!blank) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(current);
    } catch (err) {
      throw new VikingError('VIKING_E_DOCKER_CONFIG_INVALID', `${file} is not valid JSON (${(err as Error).message}); fix it, then run this again`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new VikingError('VIKING_E_DOCKER_CONFIG_INVALID', `${file} must hold a JSON object`);
    }
    config = parsed as Record<string, unknown>;
  }
  const list = config['insecure-registries'];
  if (list !== undefined && (!Array.isArray(list) || list.some((e) => typeof e !== 'string'))) {
    throw new VikingError('VIKING_E_DOCKER_CONFIG_INVALID', `${file}: "insecure-registries" must be a list of strings`);
  }
  const entries = (list as string[] | undefined) ?? [];
  if (entries.includes(registry)) return { text: current ?? '', changed: false };
  const next = { ...config, 'insecure-registries': [...entries, registry] };
  return { text: `${JSON.stringify(next, null, 2)}\n`, changed: true };
}

/** Reads, merges and (only when changed) atomically rewrites the file. */
export async function trustRegistryFile(file: string, registry: string): Promise<{ changed: boolean }> {
  const current = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const merged = mergeInsecureRegistry(current, registry, file);
  if (!merged.changed) return { changed: false };
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.viking-${process.pid}.tmp`;
  await writeFile(tmp, merged.text, { mode: 0o644 });
  await rename(tmp, file);
  return { changed: true };
}

/**
 * The CLI's config file: which API to talk to and with which token, so
 * neither has to be typed on every command.
 *
 *   ~/.config/viking/config.json   (or $XDG_CONFIG_HOME/viking, or $VIKING_CONFIG)
 *   {"api": "http://10.0.0.1:8791", "token": "vkt_..."}
 *
 * It holds a secret, so it is written 0600 in a 0700 directory. Each
 * setting is taken from, in order: the command's flag (--api, --token), the
 * environment (VIKING_API, VIKING_TOKEN), this file, the default.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VikingError } from '../errors.js';

export const DEFAULT_API = 'http://127.0.0.1:8791';

export interface CliConfig {
  api?: string;
  token?: string;
}

export interface Target {
  api: string;
  token: string | undefined;
  /** Where each came from, for `viking configure` and error hints. */
  from: { api: 'flag' | 'env' | 'config' | 'default'; token: 'flag' | 'env' | 'config' | 'none' };
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIKING_CONFIG) return path.resolve(env.VIKING_CONFIG);
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'viking', 'config.json');
}

export async function readConfig(file = configPath()): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new VikingError('VIKING_E_CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VikingError('VIKING_E_CONFIG_INVALID', `${file} is not valid JSON (${(err as Error).message}); fix it or run viking configure again`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VikingError('VIKING_E_CONFIG_INVALID', `${file} must hold an object like {"api": "http://...", "token": "vkt_..."}`);
  }
  const v = value as Record<string, unknown>;
  for (const k of ['api', 'token']) {
    if (v[k] !== undefined && typeof v[k] !== 'string') throw new VikingError('VIKING_E_CONFIG_INVALID', `${file}: "${k}" must be a string`);
  }
  return { ...(typeof v.api === 'string' ? { api: v.api } : {}), ...(typeof v.token === 'string' ? { token: v.token } : {}) };
}

/** Merges `patch` into the file and writes it atomically, readable only by its owner. */
export async function writeConfig(patch: CliConfig, file = configPath()): Promise<CliConfig> {
  const current = await readConfig(file).catch(() => ({}));
  const next: CliConfig = { ...current, ...patch };
  if (next.api !== undefined) next.api = normaliseApi(next.api);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return next;
}

export function normaliseApi(url: string): string {
  const trimmed = url.trim().replace(/\/+$/, '');
  const withScheme = /^https?:\/\//.test(trimmed) ? trimmed : `http://${trimmed}`;
  try {
    new URL(withScheme);
  } catch {
    throw new VikingError('VIKING_E_BAD_REQUEST', `'${url}' is not an API URL; e.g. http://10.0.0.1:8791`);
  }
  return withScheme;
}

/** The API and token a command uses: flag, then environment, then the config file, then the default. */
export async function resolveTarget(flags: { api?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const needFile = flags.api === undefined || flags.token === undefined;
  const file = needFile && !(env.VIKING_API && env.VIKING_TOKEN) ? await readConfig(configPath(env)) : {};
  const api =
    flags.api !== undefined ? { v: flags.api, from: 'flag' as const }
    : env.VIKING_API ? { v: env.VIKING_API, from: 'env' as const }
    : file.api ? { v: file.api, from: 'config' as const }
    : { v: DEFAULT_API, from: 'default' as const };
  const token =
    flags.token !== undefined ? { v: flags.token, from: 'flag' as const }
    : env.VIKING_TOKEN ? { v: env.VIKING_TOKEN, from: 'env' as const }
    : file.token ? { v: file.token, from: 'config' as const }
    : { v: undefined, from: 'none' as const };
  return { api: normaliseApi(api.v), token: token.v, from: { api: api.from, token: token.from } };
}

/** `vkt_1a2b3c4d5e6f_…`: enough to tell tokens apart, never the secret. */
export function maskToken(token: string | undefined): string {
  if (!token) return '(none)';
  const m = /^(vkt_[a-f0-9]{12})_/.exec(token);
  return m ? `${m[1]}_…` : `${token.slice(0, 4)}…`;
}

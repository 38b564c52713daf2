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
export function configPath(env = process.env) {
    if (env.VIKING_CONFIG)
        return path.resolve(env.VIKING_CONFIG);
    const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
    return path.join(base, 'viking', 'config.json');
}
export async function readConfig(file = configPath()) {
    let text;
    try {
        text = await readFile(file, 'utf8');
    }
    catch (err) {
        if (err.code === 'ENOENT')
            return {};
        throw new VikingError('VIKING_E_CONFIG_INVALID', `cannot read ${file}: ${err.message}`);
    }
    let value;
    try {
        value = JSON.parse(text);
    }
    catch (err) {
        throw new VikingError('VIKING_E_CONFIG_INVALID', `${file} is not valid JSON (${err.message}); fix it or run viking configure again`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new VikingError('VIKING_E_CONFIG_INVALID', `${file} must hold an object like {"api": "http://...", "token": "vkt_..."}`);
    }
    const v = value;
    for (const k of ['api', 'token']) {
        if (v[k] !== undefined && typeof v[k] !== 'string')
            throw new VikingError('VIKING_E_CONFIG_INVALID', `${file}: "${k}" must be a string`);
    }
    return { ...(typeof v.api === 'string' ? { api: v.api } : {}), ...(typeof v.token === 'string' ? { token: v.token } : {}) };
}
/** Merges `patch` into the file and writes it atomically, readable only by its owner. */
export async function writeConfig(patch, file = configPath()) {
    const current = await readConfig(file).catch(() => ({}));
    const next = { ...current, ...patch };
    if (next.api !== undefined)
        next.api = normaliseApi(next.api);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
    return next;
}
export function normaliseApi(url) {
    const trimmed = url.trim().replace(/\/+$/, '');
    const withScheme = /^https?:\/\//.test(trimmed) ? trimmed : `http://${trimmed}`;
    try {
        new URL(withScheme);
    }
    catch {
        throw new VikingError('VIKING_E_BAD_REQUEST', `'${url}' is not an API URL; e.g. http://10.0.0.1:8791`);
    }
    return withScheme;
}
/** The API and token a command uses: flag, then environment, then the config file, then the default. */
export async function resolveTarget(flags, env = process.env) {
    const needFile = flags.api === undefined || flags.token === undefined;
    const file = needFile && !(env.VIKING_API && env.VIKING_TOKEN) ? await readConfig(configPath(env)) : {};
    const api = flags.api !== undefined ? { v: flags.api, from: 'flag' }
        : env.VIKING_API ? { v: env.VIKING_API, from: 'env' }
            : file.api ? { v: file.api, from: 'config' }
                : { v: DEFAULT_API, from: 'default' };
    const token = flags.token !== undefined ? { v: flags.token, from: 'flag' }
        : env.VIKING_TOKEN ? { v: env.VIKING_TOKEN, from: 'env' }
            : file.token ? { v: file.token, from: 'config' }
                : { v: undefined, from: 'none' };
    return { api: normaliseApi(api.v), token: token.v, from: { api: api.from, token: token.from } };
}
/** `vkt_1a2b3c4d5e6f_…`: enough to tell tokens apart, never the secret. */
export function maskToken(token) {
    if (!token)
        return '(none)';
    const m = /^(vkt_[a-f0-9]{12})_/.exec(token);
    return m ? `${m[1]}_…` : `${token.slice(0, 4)}…`;
}
//# sourceMappingURL=config.js.map
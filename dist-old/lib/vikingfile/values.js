/**
 * The value rules of node fields: hostnames, paths, memory sizes, env names.
 *
 * Each check is a pure function of a string returning the normalised value
 * or a message saying how to fix it, so the rules are easy to test and to
 * reuse (the API may check a domain given on the command line the same way).
 */
import { posix } from 'node:path';
import { show } from './describe.js';
const ok = (value) => ({ ok: true, value });
const fail = (message) => ({ ok: false, message });
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * A hostname the router can match: DNS labels of 1-63 `[a-z0-9-]` not
 * starting or ending with a dash, at most 253 characters, lowercased. A
 * wildcard is only a leftmost `*.` (one level, like TLS certificates).
 */
export function checkDomain(raw) {
    const domain = raw.toLowerCase();
    const hint = `domain '${show(raw)}'`;
    if (domain === '')
        return fail('a domain cannot be empty');
    if (/^[a-z][a-z0-9+.-]*:\/\//.test(domain))
        return fail(`${hint} must be a bare hostname: drop the scheme, e.g. 'example.com'`);
    if (/[:/]/.test(domain))
        return fail(`${hint} must be a bare hostname, without port or path, e.g. 'example.com'`);
    if (domain === '*' || domain === '*.')
        return fail(`${hint} needs a name after '*.', e.g. '*.example.com'`);
    if (domain.endsWith('.'))
        return fail(`${hint} must not end with a dot`);
    if (domain.length > 253)
        return fail(`${hint} is longer than 253 characters`);
    const labels = domain.split('.');
    const rest = labels[0] === '*' ? labels.slice(1) : labels;
    for (const label of rest) {
        if (label.includes('*'))
            return fail(`${hint}: a wildcard is only allowed as the whole leftmost label, e.g. '*.example.com'`);
        if (!LABEL.test(label)) {
            return fail(`${hint} is not a valid hostname: each dot-separated label must be 1-63 letters, digits or dashes, not starting or ending with a dash`);
        }
    }
    return ok(domain);
}
/** An absolute container path (`volume`, `cwd`), normalised; `:` would break Docker's bind syntax. */
export function checkAbsolutePath(raw, what) {
    if (!raw.startsWith('/'))
        return fail(`${what} '${show(raw)}' must be an absolute path inside the container, e.g. '/srv/app'`);
    if (/[\u0000:]/.test(raw))
        return fail(`${what} '${show(raw)}' must not contain ':' or NUL characters`);
    const normalised = posix.normalize(raw).replace(/(.)\/+$/, '$1');
    return ok(normalised);
}
/** `document_root`: relative to the pushed source, normalised (`./help/www/` is `help/www`), never leaving it. */
export function checkDocumentRoot(raw) {
    const hint = `document_root '${show(raw)}'`;
    if (raw.trim() === '')
        return fail(`document_root is empty; give a folder of the source, e.g. './www' (or '.' for the root)`);
    if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) {
        return fail(`${hint} must be relative to the source directory, e.g. './www', not absolute`);
    }
    if (raw.includes('\u0000'))
        return fail(`${hint} must not contain NUL characters`);
    const normalised = posix.normalize(raw).replace(/\/+$/, '');
    if (normalised === '..' || normalised.startsWith('../'))
        return fail(`${hint} leaves the source directory; use a folder inside it`);
    return ok(normalised === '' ? '.' : normalised);
}
/** Names a shell and Docker both accept as environment variables. */
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export function envKeyMessage(key) {
    return `env name '${show(key)}' must be letters, digits and underscores, not starting with a digit, e.g. 'API_URL'`;
}
const UNITS = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
/** Bytes from a number of bytes or a size `512k`, `256m`, `1.5G` (binary units, also `mb`, `MiB`). */
export function parseMemory(value) {
    const usage = "memory must be a number of bytes or a size like '256m' or '1g'";
    if (typeof value === 'number') {
        if (!Number.isInteger(value) || value < 0)
            return fail(`${usage}, got ${show(String(value))}`);
        return ok(value);
    }
    // Sizes are short; the cap keeps the regex linear on hostile input.
    const m = value.length > 32 ? null : /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(value);
    if (m === null)
        return fail(`${usage}, got '${show(value)}'`);
    const bytes = Math.round(Number(m[1]) * (m[2] === undefined ? 1 : (UNITS[m[2].toLowerCase()] ?? 1)));
    if (!Number.isSafeInteger(bytes))
        return fail(`memory '${show(value)}' is too large`);
    return ok(bytes);
}
//# sourceMappingURL=values.js.map
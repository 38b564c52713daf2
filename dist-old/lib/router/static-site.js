/**
 * Serving a `type: website` node's files: GET and HEAD, content types,
 * index.html for directories, strong ETags (a hash of the content, so every
 * router of the cluster gives a file the same one) with If-None-Match -> 304.
 *
 * No request ever reads outside the document root. The path is decoded once
 * and refused outright if any segment is `..` (plain or `%2e%2e`) or holds a
 * NUL; what is left is joined under the root and resolved by the kernel
 * (realpath), and the result must still be inside the root's own realpath,
 * so a symbolic link pointing elsewhere is refused too. Dotfiles (`.git`,
 * `.env`) are not served, except `/.well-known/`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { contentType } from './mime.js';
import { errorPage } from './pages.js';
/** Turns a request target into safe path segments under a root, or says why not. Pure. */
export function checkRequestPath(target) {
    let raw = target;
    if (!raw.startsWith('/')) {
        // Absolute form (`GET http://host/path`): only its path matters here, taken
        // as sent (a URL parser would quietly resolve the '..' we want to refuse).
        const m = /^https?:\/\/[^/?#]*(.*)$/i.exec(raw);
        if (!m)
            return { ok: false, status: 400, reason: 'the request target is not a path' };
        raw = m[1] === '' || m[1].startsWith('?') ? `/${m[1]}` : m[1];
        if (!raw.startsWith('/'))
            return { ok: false, status: 400, reason: 'the request target is not a path' };
    }
    const q = raw.indexOf('?');
    const pathname = q === -1 ? raw : raw.slice(0, q);
    const query = q === -1 ? '' : raw.slice(q);
    let decoded;
    try {
        decoded = decodeURIComponent(pathname);
    }
    catch {
        return { ok: false, status: 400, reason: 'the path has a malformed %-escape' };
    }
    if (decoded.includes('\0'))
        return { ok: false, status: 400, reason: 'the path holds a NUL byte' };
    const parts = decoded.split('/');
    if (parts.some((p) => p === '..'))
        return { ok: false, status: 400, reason: "the path climbs out of the website with '..'" };
    const segments = parts.filter((p) => p !== '' && p !== '.');
    if (segments.some((p, i) => p.startsWith('.') && !(i === 0 && p === '.well-known'))) {
        return { ok: false, status: 404, reason: 'hidden files are not served' };
    }
    return { ok: true, segments, pathname, query };
}
/** True if `child` is `root` or below it (both already resolved). */
export function isInside(child, root) {
    return child === root || child.startsWith(root.endsWith('/') ? root : `${root}/`);
}
/** ETag matching for If-None-Match: weak comparison, `*`, comma lists. */
export function etagMatches(header, etag) {
    if (!header)
        return false;
    for (const part of header.split(',')) {
        const t = part.trim();
        if (t === '*' || t === etag || t === `W/${etag}`)
            return true;
    }
    return false;
}
/** Files up to this size are kept in memory once read. */
const SMALL_FILE = 256 * 1024;
const CACHE_BYTES = 64 * 1024 * 1024;
const CACHE_ENTRIES = 20_000;
export class StaticFiles {
    rootReal = new Map();
    meta = new Map();
    cachedBytes = 0;
    async serve(root, req, res) {
        const method = req.method ?? 'GET';
        if (method !== 'GET' && method !== 'HEAD') {
            res.setHeader('allow', 'GET, HEAD');
            return errorPage(res, 405, 'Method not allowed', 'a static website answers only GET and HEAD');
        }
        const check = checkRequestPath(req.url ?? '/');
        if (!check.ok)
            return check.status === 404 ? this.notFound(root, req, res) : errorPage(res, check.status, 'Refused', check.reason);
        const base = await this.realRoot(root);
        if (!base)
            return errorPage(res, 503, 'Website unavailable', 'the files of this website are missing on this router; they are fetched again shortly');
        let real = await this.resolve(base, check.segments);
        if (real === 'outside')
            return errorPage(res, 403, 'Forbidden', 'the path leads out of the website through a symbolic link');
        if (!real)
            return this.notFound(root, req, res);
        let st = await stat(real).catch(() => undefined);
        if (st?.isDirectory()) {
            if (!check.pathname.endsWith('/')) {
                // Relative links in the index resolve against the directory, as web servers do.
                res.writeHead(301, { location: `${check.pathname}/${check.query}`, 'content-length': 0, 'cache-control': 'no-cache' });
                return void res.end();
            }
            real = await this.resolve(base, [...check.segments, 'index.html']);
            if (real === 'outside')
                return errorPage(res, 403, 'Forbidden', 'the index leads out of the website through a symbolic link');
            st = real ? await stat(real).catch(() => undefined) : undefined;
        }
        if (!real || !st?.isFile())
            return this.notFound(root, req, res);
        return this.send(real, st, 200, req, res);
    }
    /** The file's realpath under `base`, 'outside' if a link leads out, undefined if absent. */
    async resolve(base, segments) {
        let real;
        try {
            real = await realpath(path.join(base, ...segments));
        }
        catch {
            return undefined;
        }
        return isInside(real, base) ? real : 'outside';
    }
    async realRoot(root) {
        const known = this.rootReal.get(root);
        if (known)
            return known;
        const real = await realpath(root).catch(() => undefined);
        if (real)
            this.rootReal.set(root, real);
        return real;
    }
    /** A 404: the site's own 404.html when it has one, else the router's page. */
    async notFound(root, req, res) {
        const base = await this.realRoot(root);
        const page = base ? await this.resolve(base, ['404.html']) : undefined;
        const st = page && page !== 'outside' ? await stat(page).catch(() => undefined) : undefined;
        if (page && page !== 'outside' && st?.isFile())
            return this.send(page, st, 404, req, res);
        errorPage(res, 404, 'Not found', `no file ${(req.url ?? '/').split('?')[0]} on this website`);
    }
    async send(file, st, status, req, res) {
        const meta = await this.fileMeta(file, st);
        const headers = {
            'content-type': contentType(file),
            etag: meta.etag,
            'cache-control': 'no-cache',
            'x-content-type-options': 'nosniff',
        };
        if (status === 200 && etagMatches(req.headers['if-none-match'], meta.etag)) {
            res.writeHead(304, headers);
            return void res.end();
        }
        headers['content-length'] = meta.size;
        res.writeHead(status, headers);
        if (req.method === 'HEAD')
            return void res.end();
        if (meta.body)
            return void res.end(meta.body);
        const stream = createReadStream(file);
        stream.on('error', () => res.destroy());
        stream.pipe(res);
    }
    /** Size and ETag of a file, recomputed when its size, mtime or inode change. */
    async fileMeta(file, st) {
        const known = this.meta.get(file);
        if (known && known.size === st.size && known.mtimeMs === st.mtimeMs && known.ino === st.ino) {
            // Most recently used last, so the oldest go first when the cache is full.
            this.meta.delete(file);
            this.meta.set(file, known);
            return known;
        }
        let meta;
        if (st.size <= SMALL_FILE) {
            const body = await readFile(file);
            meta = { size: body.length, mtimeMs: st.mtimeMs, ino: st.ino, etag: etagOf(createHash('sha1').update(body)), body };
        }
        else {
            const hash = createHash('sha1');
            for await (const chunk of createReadStream(file))
                hash.update(chunk);
            meta = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, etag: etagOf(hash) };
        }
        this.remember(file, meta);
        return meta;
    }
    remember(file, meta) {
        const old = this.meta.get(file);
        if (old) {
            this.cachedBytes -= old.body?.length ?? 0;
            this.meta.delete(file);
        }
        this.meta.set(file, meta);
        this.cachedBytes += meta.body?.length ?? 0;
        for (const [key, m] of this.meta) {
            if (this.cachedBytes <= CACHE_BYTES && this.meta.size <= CACHE_ENTRIES)
                break;
            this.meta.delete(key);
            this.cachedBytes -= m.body?.length ?? 0;
        }
    }
}
function etagOf(hash) {
    return `"${hash.digest('base64url')}"`;
}
//# sourceMappingURL=static-site.js.map
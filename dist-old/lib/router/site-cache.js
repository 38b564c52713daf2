/**
 * Where each website's files are on this host, so every router can serve
 * every website, not only the one on the host that received the push.
 *
 * The host that built a release serves its document root straight from the
 * pushed source. Any other host fetches the document root once, as a tar,
 * from the API of the builder (or, if that host is gone, of any host that
 * already has it: every host's API hands out what it caches), unpacks it
 * with the same checks as an upload, and keeps it under
 * `<dataDir>/websites/<stack>/<node>/<tag>`. Until a new release's files are
 * here the previous release's keep being served, so a website deploy has no
 * gap either.
 */
import { existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { extractUpload } from '../upload/extract.js';
/** The directory a fetched release of a website node lives in. */
export function siteCacheDir(dataDir, stack, node, tag) {
    return path.join(dataDir, 'websites', stack, node, tag);
}
/** The document root of a release built on this host, when its source is here. */
export function localDocumentRoot(source, documentRoot) {
    return path.join(source, documentRoot);
}
export class SiteCache {
    o;
    /** `stack/node/tag` -> directory with its files. */
    ready = new Map();
    /** `stack/node` -> the last release whose files were served. */
    lastGood = new Map();
    fetching = new Set();
    failures = new Map();
    timers = new Set();
    stopped = false;
    constructor(o) {
        this.o = o;
    }
    /** Where to serve a website from right now; starts fetching its files if this host lacks them. */
    resolve(want) {
        const site = `${want.stack}/${want.node}`;
        const key = `${site}/${want.tag}`;
        const root = this.ready.get(key) ?? this.findLocal(want);
        if (root) {
            this.ready.set(key, root);
            this.lastGood.set(site, { tag: want.tag, root });
            return { stack: want.stack, node: want.node, tag: want.tag, root };
        }
        let problem;
        if (want.builtOn === this.o.hostName && existsSync(want.source)) {
            problem = `release ${want.tag} has no directory ${want.documentRoot}`;
        }
        else {
            this.ensureFetch(want, key);
            const failure = this.failures.get(key);
            problem = failure
                ? `the files of release ${want.tag} could not be fetched (${failure.message}); retrying`
                : `the files of release ${want.tag} are being fetched from ${want.builtOn}`;
        }
        const prev = this.lastGood.get(site);
        return prev ? { stack: want.stack, node: want.node, tag: prev.tag, root: prev.root, problem } : { stack: want.stack, node: want.node, tag: null, root: null, problem };
    }
    stop() {
        this.stopped = true;
        for (const t of this.timers)
            clearTimeout(t);
    }
    findLocal(want) {
        if (want.builtOn === this.o.hostName) {
            const dir = localDocumentRoot(want.source, want.documentRoot);
            if (existsSync(dir))
                return dir;
        }
        const cached = siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag);
        return existsSync(cached) ? cached : undefined;
    }
    ensureFetch(want, key) {
        if (this.stopped || this.fetching.has(key))
            return;
        const failure = this.failures.get(key);
        if (failure && Date.now() < failure.retryAt)
            return;
        this.fetching.add(key);
        const started = Date.now();
        this.fetch(want)
            .then((from) => {
            this.failures.delete(key);
            this.o.log?.(`router: fetched website ${key} from ${from} in ${Date.now() - started} ms`);
        }, (err) => {
            const count = (failure?.count ?? 0) + 1;
            const wait = Math.min(1000 * 2 ** (count - 1), 30_000);
            this.failures.set(key, { message: err.message, count, retryAt: Date.now() + wait });
            this.o.log?.(`router: website ${key}: ${err.message}; retrying in ${wait} ms`);
            this.later(wait + 10);
        })
            .finally(() => {
            this.fetching.delete(key);
            if (!this.stopped)
                this.o.onChange();
        });
    }
    later(ms) {
        const t = setTimeout(() => {
            this.timers.delete(t);
            if (!this.stopped)
                this.o.onChange();
        }, ms);
        this.timers.add(t);
    }
    /** Downloads the release's document root from the first host that has it; returns that host. */
    async fetch(want) {
        const hosts = await readPrefix(this.o.client, PREFIX.host);
        const all = hosts.entries.map((e) => e.value).filter((h) => h !== undefined && h.name !== this.o.hostName);
        const ordered = [...all.filter((h) => h.name === want.builtOn), ...all.filter((h) => h.name !== want.builtOn)];
        if (ordered.length === 0)
            throw new Error(`host ${want.builtOn}, which built it, is not in the cluster`);
        const final = siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag);
        const errors = [];
        for (const host of ordered) {
            const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
            let res;
            try {
                const url = `${host.api}/v1/source/${want.stack}/${want.tag}/website/${want.node}`;
                res = await request(url, { headersTimeout: 10_000, bodyTimeout: 60_000 });
                if (res.statusCode !== 200) {
                    const body = (await res.body.json().catch(() => ({})));
                    throw new Error(`HTTP ${res.statusCode}${body.message ? `: ${body.message}` : ''}`);
                }
                await extractUpload(res.body, tmp, { maxBytes: this.o.maxBytes ?? 1024 * 1024 * 1024 });
                await rename(tmp, final).catch(async (err) => {
                    // Another fetch got there first: its copy is as good as ours.
                    if (!existsSync(final))
                        throw err;
                    await rm(tmp, { recursive: true, force: true });
                });
                await this.prune(want);
                return host.name;
            }
            catch (err) {
                res?.body.destroy();
                await rm(tmp, { recursive: true, force: true }).catch(() => { });
                errors.push(`${host.name}: ${err.message}`);
            }
        }
        throw new Error(errors.join('; '));
    }
    /** Keeps the fetched release and the one served before it; older copies go. */
    async prune(want) {
        const dir = path.dirname(siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag));
        const keep = new Set([want.tag, this.lastGood.get(`${want.stack}/${want.node}`)?.tag]);
        for (const name of await readdir(dir).catch(() => [])) {
            if (keep.has(name) || name.includes('.tmp-'))
                continue;
            this.ready.delete(`${want.stack}/${want.node}/${name}`);
            await rm(path.join(dir, name), { recursive: true, force: true }).catch(() => { });
        }
    }
}
//# sourceMappingURL=site-cache.js.map
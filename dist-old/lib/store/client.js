/**
 * The etcd client and the few read/watch shapes viking uses everywhere.
 *
 * etcd3's defaults are tuned for a long-lived service, not for fast
 * failover: watches reconnect with up to 30 s of backoff, and the per-host
 * circuit breaker can stay open on healthy members. viking narrows both so a
 * lost member or a restarted etcd is noticed in about a second.
 */
import { Etcd3, isRecoverableError } from 'etcd3';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry } from 'cockatiel';
/** Accepts `host:port` or full URLs, comma separated; etcd3 needs the `http://`. */
export function normaliseEtcdUrls(urls) {
    const list = (Array.isArray(urls) ? urls : urls.split(','))
        .map((u) => u.trim())
        .filter(Boolean);
    return list.map((u) => (/^https?:\/\//.test(u) ? u : `http://${u}`));
}
export function connectEtcd(urls) {
    return new Etcd3({
        hosts: normaliseEtcdUrls(urls),
        dialTimeout: 3000,
        faultHandling: {
            host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
            global: retry(handleWhen(isRecoverableError), { maxAttempts: 3 }),
            watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
        },
    });
}
function parseJSON(kv) {
    const text = kv.value.toString();
    if (text === '')
        return undefined;
    try {
        return JSON.parse(text);
    }
    catch {
        return undefined;
    }
}
/** Reads every key under a prefix, at one revision when given. Values are JSON; '' and bad JSON read as undefined. */
export async function readPrefix(client, prefix, revision) {
    let range = client.getAll().prefix(prefix);
    if (revision !== undefined)
        range = range.revision(revision);
    const res = await range.exec();
    return {
        revision: res.header.revision,
        entries: res.kvs.map((kv) => ({
            key: kv.key.toString(),
            value: parseJSON(kv),
            createRevision: kv.create_revision,
            modRevision: kv.mod_revision,
        })),
    };
}
/** Reads one JSON key; undefined when absent. */
export async function readJSON(client, key) {
    const text = await client.get(key).string();
    if (text === null || text === '')
        return undefined;
    try {
        return JSON.parse(text);
    }
    catch {
        return undefined;
    }
}
/** Open watches per client, so "each host watches only its own keys" can be checked and shown. */
const openWatches = new WeakMap();
function countWatch(client, prefix, delta) {
    let m = openWatches.get(client);
    if (!m)
        openWatches.set(client, (m = new Map()));
    const n = (m.get(prefix) ?? 0) + delta;
    if (n > 0)
        m.set(prefix, n);
    else
        m.delete(prefix);
}
/** The prefixes this client watches now, one entry per open watch. */
export function watchedPrefixes(client) {
    return [...(openWatches.get(client) ?? new Map()).entries()].flatMap(([p, n]) => Array(n).fill(p)).sort();
}
/**
 * Calls `onChange` after any change under a prefix. The callback only wakes a
 * level-triggered loop: it gets no event detail on purpose. If the watch
 * fails it is recreated, and `onChange` is called so the loop resyncs.
 */
export function watchPrefix(client, prefix, onChange) {
    let watcher;
    let cancelled = false;
    let retry;
    const open = async () => {
        try {
            const w = await client.watch().prefix(prefix).create();
            if (cancelled) {
                await w.cancel();
                return;
            }
            watcher = w;
            countWatch(client, prefix, 1);
            w.on('put', onChange);
            w.on('delete', onChange);
            // After a reconnect etcd3 resumes from the last revision; resync anyway.
            w.on('connected', onChange);
            w.on('error', () => {
                countWatch(client, prefix, -1);
                watcher = undefined;
                void w.cancel().catch(() => { });
                schedule();
            });
        }
        catch {
            schedule();
        }
    };
    const schedule = () => {
        if (cancelled)
            return;
        retry = setTimeout(() => {
            onChange();
            void open();
        }, 500);
    };
    void open();
    return {
        async cancel() {
            cancelled = true;
            if (retry)
                clearTimeout(retry);
            if (watcher) {
                countWatch(client, prefix, -1);
                await watcher.cancel().catch(() => { });
            }
        },
    };
}
//# sourceMappingURL=client.js.map
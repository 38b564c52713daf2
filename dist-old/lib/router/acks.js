import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
/** Routers whose ack is older than `revision`. Pure. */
export function laggingRouters(acks, revision) {
    const target = BigInt(revision);
    return acks.filter((a) => BigInt(a.revision) < target).map((a) => a.host).sort();
}
export async function waitRoutersSeen(client, revision, timeoutMs, pollMs = 25) {
    const start = Date.now();
    let lagging = [];
    for (;;) {
        try {
            const read = await readPrefix(client, PREFIX.routers);
            lagging = laggingRouters(read.entries.map((e) => e.value).filter((v) => v !== undefined), revision);
            if (lagging.length === 0)
                return { ok: true, lagging, waitedMs: Date.now() - start };
        }
        catch {
            /* etcd hiccup: keep waiting until the deadline */
        }
        if (Date.now() - start >= timeoutMs)
            return { ok: false, lagging, waitedMs: Date.now() - start };
        await new Promise((r) => setTimeout(r, pollMs));
    }
}
//# sourceMappingURL=acks.js.map
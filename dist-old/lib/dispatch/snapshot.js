import { readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, jobPath } from '../store/keys.js';
export async function readSnapshot(client) {
    const hostsRead = await readPrefix(client, PREFIX.host);
    const rev = hostsRead.revision;
    const [proc, run, fixed, drain] = await Promise.all([
        readPrefix(client, PREFIX.proc, rev),
        client.getAll().prefix(PREFIX.run).revision(rev).exec(),
        client.getAll().prefix(PREFIX.fixed).revision(rev).exec(),
        client.getAll().prefix(PREFIX.drain).revision(rev).keys(),
    ]);
    // A drain mark (/drain/<host>) outlives the host's lease, so it is kept apart from /host.
    const draining = new Set(drain.map((k) => k.slice(PREFIX.drain.length)));
    const hosts = new Map();
    for (const e of hostsRead.entries)
        if (e.value)
            hosts.set(e.value.name, { ...e.value, draining: e.value.draining || draining.has(e.value.name) });
    const wanted = new Map();
    for (const e of proc.entries) {
        const job = jobFromKey(e.key, PREFIX.proc);
        if (job && e.value)
            wanted.set(jobPath(job), { spec: { ...e.value, ...job }, modRevision: e.modRevision });
    }
    const placed = new Map();
    for (const kv of run.kvs) {
        const job = jobFromKey(kv.key.toString(), PREFIX.run);
        if (job)
            placed.set(jobPath(job), { job, host: kv.value.toString(), modRevision: kv.mod_revision });
    }
    const pins = new Map();
    for (const kv of fixed.kvs)
        pins.set(kv.key.toString().slice(PREFIX.fixed.length), kv.value.toString());
    // A volume node placed before its pin was written (its pin's batch lost a race) is pinned where it runs.
    for (const [path, p] of placed) {
        const spec = wanted.get(path)?.spec;
        const node = `${p.job.stack}/${p.job.node}`;
        if (spec && spec.volumes.length > 0 && !pins.has(node) && hosts.has(p.host))
            pins.set(node, p.host);
    }
    return { revision: rev, hosts, wanted, placed, pins };
}
export function toPlanJob(spec, pins) {
    const pin = spec.volumes.length > 0 ? pins.get(`${spec.stack}/${spec.node}`) : undefined;
    const job = {
        id: jobPath(spec),
        stack: spec.stack,
        node: spec.node,
        memory: spec.memory,
        cpu: spec.cpu,
        tags: spec.tags,
        prefer: spec.prefer,
    };
    if (pin !== undefined)
        job.pinnedTo = pin;
    return job;
}
/** dowding's view of the live hosts with the jobs already placed on them. */
export function toPlanHosts(snap) {
    const byHost = new Map();
    for (const [path, placed] of snap.placed) {
        const wanted = snap.wanted.get(path);
        if (!wanted)
            continue;
        const list = byHost.get(placed.host) ?? [];
        list.push(toPlanJob(wanted.spec, snap.pins));
        byHost.set(placed.host, list);
    }
    return [...snap.hosts.values()].map((h) => ({
        name: h.name,
        tags: h.tags,
        capacity: h.capacity,
        draining: h.draining,
        jobs: byHost.get(h.name) ?? [],
    }));
}
//# sourceMappingURL=snapshot.js.map
import { readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, jobPath, parseDeployKey } from '../store/keys.js';
export async function listJobs(client, stack) {
    const suffix = stack ? `${stack}/` : '';
    const proc = await readPrefix(client, PREFIX.proc + suffix);
    const rev = proc.revision;
    const [run, deploy, ports, stacks, hosts] = await Promise.all([
        client.getAll().prefix(PREFIX.run + suffix).revision(rev).exec(),
        readPrefix(client, PREFIX.deploy, rev),
        readPrefix(client, PREFIX.ports + suffix, rev),
        readPrefix(client, PREFIX.stack, rev),
        readPrefix(client, PREFIX.host, rev),
    ]);
    const placed = new Map();
    for (const kv of run.kvs) {
        const job = jobFromKey(kv.key.toString(), PREFIX.run);
        if (job)
            placed.set(jobPath(job), kv.value.toString());
    }
    const states = new Map();
    for (const e of deploy.entries) {
        const d = parseDeployKey(e.key);
        if (d)
            states.set(`${d.host}|${jobPath(d.job)}`, e.value);
    }
    const endpoints = new Map();
    for (const e of ports.entries) {
        if (!e.value)
            continue;
        const path = jobPath(e.value);
        const list = endpoints.get(path) ?? [];
        list.push(`${e.value.ip}:${e.value.hostPort}->${e.value.port}/${e.value.proto}`);
        endpoints.set(path, list);
    }
    const current = new Map(stacks.entries.filter((e) => e.value).map((e) => [e.value.name, e.value.current]));
    const live = new Set(hosts.entries.filter((e) => e.value).map((e) => e.value.name));
    const rows = [];
    for (const e of proc.entries) {
        const job = jobFromKey(e.key, PREFIX.proc);
        if (!job || !e.value)
            continue;
        const path = jobPath(job);
        const host = placed.get(path) ?? null;
        const st = host ? states.get(`${host}|${path}`) : undefined;
        let state = !host ? 'pending' : !live.has(host) ? 'lost' : st?.state ?? 'placed';
        if (host && !live.has(host) && e.value.volumes.length > 0)
            state = 'waiting-host';
        rows.push({
            ...job,
            host,
            state,
            current: current.get(job.stack) === job.tag,
            container: st?.container?.slice(0, 12) ?? null,
            endpoints: endpoints.get(path) ?? [],
            reason: st?.reason ?? null,
            logs: st?.logs ?? [],
            image: e.value.image,
        });
    }
    return rows;
}
export async function listStacks(client) {
    const stacks = await readPrefix(client, PREFIX.stack);
    return stacks.entries.map((e) => e.value).filter((v) => v !== undefined);
}
//# sourceMappingURL=status.js.map
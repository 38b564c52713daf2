/**
 * The slave's decision, as a pure function: given the jobs `/deploy/<me>`
 * asks for and the containers Docker really runs for this host, what to do.
 * The loop in slave.ts only executes these actions, so the rules are tested
 * here with plain data.
 */
import { jobPath } from '../store/keys.js';
export function planSlave(view) {
    const actions = [];
    const byJob = new Map();
    for (const c of view.actual) {
        const path = jobPath(c.job);
        const list = byJob.get(path) ?? [];
        list.push(c);
        byJob.set(path, list);
    }
    const desiredPaths = new Set();
    for (const d of view.desired) {
        const path = jobPath(d.job);
        desiredPaths.add(path);
        if (view.busy.has(path) || d.spec === undefined)
            continue;
        const containers = byJob.get(path) ?? [];
        const current = containers.find((c) => c.specHash === d.hash);
        const outdated = containers.filter((c) => c !== current);
        if (current) {
            if (!current.running)
                actions.push({ type: 'crashed', spec: d.spec, container: current });
            else if (!view.published.has(current.id))
                actions.push({ type: 'publish', spec: d.spec, container: current });
            // Start new, check health, switch, then stop old: outdated ones go only once the new one serves.
            else
                for (const c of outdated)
                    actions.push({ type: 'remove', container: c, why: 'outdated' });
            continue;
        }
        // No current container: outdated ones keep serving until the new one is healthy.
        if (outdated.every((c) => !c.running))
            for (const c of outdated)
                actions.push({ type: 'remove', container: c, why: 'outdated' });
        const mem = view.memory.get(path);
        if (mem?.failed)
            continue;
        if (mem && view.now < mem.retryAt)
            continue;
        actions.push({ type: 'start', spec: d.spec });
    }
    for (const [path, containers] of byJob) {
        if (desiredPaths.has(path) || view.busy.has(path))
            continue;
        for (const c of containers)
            actions.push({ type: 'remove', container: c, why: 'unwanted' });
    }
    return actions;
}
export const MAX_FAILURES = 5;
export const DEFAULT_BACKOFF = { baseMs: 1000, maxMs: 30_000, maxFailures: MAX_FAILURES };
/** Exponential backoff: 1 s, 2 s, 4 s … capped at 30 s; after maxFailures the job is failed. */
export function afterFailure(prev, now, maxFailures = MAX_FAILURES, policy = DEFAULT_BACKOFF) {
    const failures = (prev?.failures ?? 0) + 1;
    return {
        failures,
        retryAt: now + Math.min(policy.baseMs * 2 ** (failures - 1), policy.maxMs),
        failed: failures >= maxFailures,
    };
}
//# sourceMappingURL=reconcile.js.map
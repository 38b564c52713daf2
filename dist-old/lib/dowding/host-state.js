/**
 * What replicas spread by: one release of one node (the job id without its
 * instance number). Replicas of an older release are about to be retired,
 * so they must not push the new release's replicas onto the same host.
 */
export const nodeKey = (job) => job.id.slice(0, job.id.lastIndexOf('/'));
export function toHostState(host) {
    const state = {
        name: host.name,
        tags: new Set(host.tags),
        capacity: host.capacity,
        draining: host.draining,
        used: { memory: 0, cpu: 0, containers: 0 },
        replicas: new Map(),
    };
    for (const job of host.jobs)
        addJob(state, job);
    return state;
}
export function addJob(state, job) {
    state.used.memory += job.memory;
    state.used.cpu += job.cpu;
    state.used.containers += 1;
    const key = nodeKey(job);
    state.replicas.set(key, (state.replicas.get(key) ?? 0) + 1);
}
//# sourceMappingURL=host-state.js.map
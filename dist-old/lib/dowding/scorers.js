import { nodeKey } from './host-state.js';
/** One replica of a node per host while hosts allow: each sibling already there costs a lot. */
export const spread = (job, host) => (host.replicas.get(nodeKey(job)) ?? 0) * 1000;
/** Preferred tags only nudge: missing all of them costs half of one sibling replica, whatever their number. */
export const preferred = (job, host) => {
    if (job.prefer.length === 0)
        return 0;
    let missing = 0;
    for (const tag of job.prefer)
        if (!host.tags.has(tag))
            missing++;
    return (missing / job.prefer.length) * 500;
};
/**
 * Least loaded first: the fullest dimension of the host (0..1 each) scaled
 * to 0..10, plus a tiny term per container so that hosts with no declared
 * capacity still fill evenly.
 */
export function loadScore(host) {
    const ratio = (used, cap) => (cap > 0 ? used / cap : 0);
    const load = Math.max(ratio(host.used.memory, host.capacity.memory), ratio(host.used.cpu, host.capacity.cpu), ratio(host.used.containers, host.capacity.containers));
    return load * 10 + host.used.containers * 0.001;
}
export const SCORERS = [spread, preferred];
//# sourceMappingURL=scorers.js.map
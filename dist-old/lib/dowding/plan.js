import { FILTERS } from './filters.js';
import { SCORERS, loadScore } from './scorers.js';
import { addJob, toHostState } from './host-state.js';
/** Groups per-host rejections into "N hosts: reason" lines, most common first. */
export function summariseReasons(rejections, hostCount) {
    if (hostCount === 0)
        return ['no hosts are up'];
    const counts = new Map();
    for (const r of rejections)
        counts.set(r, (counts.get(r) ?? 0) + 1);
    return [...counts.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([reason, n]) => `${n} host${n === 1 ? '' : 's'}: ${reason}`);
}
const byLoadThenName = (a, b) => a.load - b.load || (a.host.name < b.host.name ? -1 : a.host.name > b.host.name ? 1 : 0);
/** Moves ranked[i] to its place after its load grew (it can only move right). */
function reposition(ranked, i) {
    const item = ranked[i];
    let j = i;
    while (j + 1 < ranked.length && byLoadThenName(ranked[j + 1], item) < 0) {
        ranked[j] = ranked[j + 1];
        j++;
    }
    ranked[j] = item;
}
function rejection(job, host, filters) {
    for (const filter of filters) {
        const reason = filter(job, host);
        if (reason !== null)
            return reason;
    }
    return null;
}
export function placeJobs(snapshot, jobs, options = {}) {
    const filters = options.filters ?? FILTERS;
    const scorers = options.scorers ?? SCORERS;
    const ranked = snapshot.hosts.map((h) => {
        const host = toHostState(h);
        return { host, load: loadScore(host) };
    });
    ranked.sort(byLoadThenName);
    const plan = { placements: [], unplaced: [] };
    const ordered = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const job of ordered) {
        let best = -1;
        let bestScore = Infinity;
        for (let i = 0; i < ranked.length; i++) {
            const { host, load } = ranked[i];
            if (load >= bestScore)
                break;
            if (rejection(job, host, filters) !== null)
                continue;
            let score = load;
            for (const scorer of scorers)
                score += scorer(job, host);
            if (score < bestScore) {
                bestScore = score;
                best = i;
            }
        }
        if (best >= 0) {
            const chosen = ranked[best];
            addJob(chosen.host, job);
            chosen.load = loadScore(chosen.host);
            reposition(ranked, best);
            plan.placements.push({ job, host: chosen.host.name });
            continue;
        }
        // Nothing fit: every host was looked at, so every rejection is known.
        const rejections = [];
        for (const { host } of ranked) {
            const reason = rejection(job, host, filters);
            if (reason !== null)
                rejections.push(reason);
        }
        plan.unplaced.push({ job, reasons: summariseReasons(rejections, ranked.length) });
    }
    return plan;
}
//# sourceMappingURL=plan.js.map
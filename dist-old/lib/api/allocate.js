import { VikingError } from '../errors.js';
import { placeJobs, FILTERS, SCORERS, loadScore } from '../dowding/index.js';
import { nodeKey, toHostState } from '../dowding/host-state.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';
import { effectiveScale, jobsFromTemplate } from '../schedule/jobs.js';
import { readStack } from '../schedule/stacks.js';
import { jobPath } from '../store/keys.js';
export async function allocate(client, stack, tag, node) {
    const snap = await readSnapshot(client);
    let jobs = [...snap.wanted.values()].map((w) => w.spec).filter((s) => s.stack === stack && s.tag === tag && s.node === node);
    let hypothetical = false;
    if (jobs.length === 0) {
        const record = await readStack(client, stack);
        if (!record)
            throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${stack}; viking stacks lists them`);
        const release = record.releases.find((r) => r.tag === tag);
        if (!release)
            throw new VikingError('VIKING_E_NOT_FOUND', `${stack} has no release ${tag}; viking releases ${stack} lists them`);
        const template = release.nodes?.[node];
        if (!template)
            throw new VikingError('VIKING_E_NOT_FOUND', `release ${tag} of ${stack} has no container node ${node}`);
        jobs = jobsFromTemplate(template, stack, tag, effectiveScale(template, record.scale?.[node], true), record.env ?? {});
        hypothetical = true;
    }
    jobs.sort((a, b) => a.instance - b.instance);
    const planHosts = toPlanHosts(snap);
    const replicas = [];
    const homeless = [];
    for (const job of jobs) {
        const placed = snap.placed.get(jobPath(job));
        const alive = placed ? snap.hosts.has(placed.host) : false;
        if (placed && alive)
            replicas.push({ instance: job.instance, host: placed.host, status: 'placed', reasons: [] });
        else if (placed && job.volumes.length > 0 && snap.pins.get(`${job.stack}/${job.node}`) === placed.host) {
            replicas.push({ instance: job.instance, host: placed.host, status: 'waiting-host', reasons: [`host ${placed.host} is down; the node's volume is pinned there`] });
        }
        else
            homeless.push(job);
    }
    const plan = placeJobs({ hosts: planHosts }, homeless.map((j) => toPlanJob(j, snap.pins)));
    for (const p of plan.placements)
        replicas.push({ instance: instanceOf(p.job.id), host: p.host, status: 'planned', reasons: [] });
    for (const u of plan.unplaced)
        replicas.push({ instance: instanceOf(u.job.id), host: null, status: 'unplaceable', reasons: u.reasons });
    replicas.sort((a, b) => a.instance - b.instance);
    const probe = toPlanJob(jobs[0], snap.pins);
    const hosts = planHosts.map((h) => {
        const state = toHostState(h);
        let reason = null;
        for (const f of FILTERS) {
            reason = f(probe, state);
            if (reason !== null)
                break;
        }
        // The same score dowding ranks by: the host's load plus the job's own penalties.
        const score = reason === null ? SCORERS.reduce((sum, s) => sum + s(probe, state), loadScore(state)) : null;
        return { host: h.name, fits: reason === null, reason, score, replicas: state.replicas.get(nodeKey(probe)) ?? 0 };
    });
    hosts.sort((a, b) => Number(b.fits) - Number(a.fits) || (a.score ?? 0) - (b.score ?? 0) || a.host.localeCompare(b.host));
    return { stack, tag, node, hypothetical, revision: snap.revision, replicas, hosts };
}
function instanceOf(id) {
    return Number(id.split('/').at(-1));
}
//# sourceMappingURL=allocate.js.map
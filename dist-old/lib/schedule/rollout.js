import { VikingError, toVikingError } from '../errors.js';
import { PREFIX, domainKey, jobFromKey, procKey, procStackPrefix, procTagPrefix } from '../store/keys.js';
import { readStack, switchRelease } from './stacks.js';
import { waitForJobs } from './wait.js';
/** Writes jobs to /proc, a hundred per transaction, so a release's jobs appear together. */
export async function writeJobs(client, jobs) {
    for (let i = 0; i < jobs.length; i += 100) {
        const batch = jobs.slice(i, i + 100);
        await client
            .if(procKey(batch[0]), 'Version', '>', -1)
            .then(...batch.map((j) => client.put(procKey(j)).value(JSON.stringify(j))))
            .commit();
    }
}
/** Writes jobs and waits until all are healthy; on failure deletes them again and rethrows. */
export async function deployJobs(client, jobs, o) {
    await writeJobs(client, jobs);
    try {
        await waitForJobs(client, jobs, {
            timeoutMs: o.timeoutMs ?? 120_000,
            onChange: (job, what) => o.emit?.('deploy', `${job.node}/${job.instance}: ${what}`),
        });
    }
    catch (err) {
        await o.withdraw();
        throw toVikingError(err);
    }
}
/** Refuses domains another stack already serves, before anything is started. */
export async function checkDomains(client, stack, domains) {
    for (const list of Object.values(domains)) {
        for (const domain of list) {
            const text = await client.get(domainKey(domain)).string();
            if (!text)
                continue;
            const owner = JSON.parse(text);
            if (owner.stack !== stack) {
                throw new VikingError('VIKING_E_DOMAIN_TAKEN', `domain ${domain} is already served by ${owner.stack}/${owner.node}; remove it there first`);
            }
        }
    }
}
/** Points each domain at its node and drops the domains the stack no longer declares. */
export async function claimDomains(client, stack, domains, websites) {
    const wanted = new Map();
    for (const [node, list] of Object.entries(domains)) {
        for (const d of list)
            wanted.set(d, { stack, node, kind: node in websites ? 'website' : 'container' });
    }
    const before = await readStack(client, stack);
    for (const d of Object.values(before?.domains ?? {}).flat())
        if (!wanted.has(d))
            await client.delete().key(domainKey(d));
    for (const [d, rec] of wanted)
        await client.put(domainKey(d)).value(JSON.stringify(rec));
}
/**
 * Deletes the /proc jobs of releases other than `tag` for the nodes this
 * release started, and for nodes it no longer declares. Declared nodes it did
 * not start (services already running) keep their jobs.
 */
export async function retireOldJobs(client, stack, tag, started, declared) {
    const keys = await client.getAll().prefix(procStackPrefix(stack)).keys();
    let removed = 0;
    for (const key of keys) {
        const job = jobFromKey(key, PREFIX.proc);
        if (!job || job.tag === tag)
            continue;
        if (declared.has(job.node) && !started.has(job.node))
            continue;
        await client.delete().key(key);
        removed++;
    }
    return removed;
}
/** Nodes of the stack that have jobs under /proc, in any release. */
export async function nodesWithJobs(client, stack) {
    const keys = await client.getAll().prefix(procStackPrefix(stack)).keys();
    const nodes = new Set();
    for (const key of keys) {
        const job = jobFromKey(key, PREFIX.proc);
        if (job)
            nodes.add(job.node);
    }
    return nodes;
}
/** Takes a release live: deploy, wait healthy, switch, retire the old. */
export async function rollOut(client, plan, o = {}) {
    const emit = o.emit ?? (() => { });
    const { release, stack } = plan;
    emit('schedule', `${plan.jobs.length} container(s) scheduled`);
    await deployJobs(client, plan.jobs, {
        ...o,
        emit,
        // Dispatch removes the withdrawn jobs' containers; the old release never stopped.
        withdraw: async () => {
            await client.delete().prefix(procTagPrefix(stack, release.tag));
        },
    });
    const domains = release.domains ?? {};
    const websites = release.websites ?? {};
    await claimDomains(client, stack, domains, websites);
    await switchRelease(client, stack, release, {
        domains,
        websites,
        ...(plan.comment !== undefined ? { comment: plan.comment } : {}),
        ...(plan.env !== undefined ? { env: plan.env } : {}),
        ...(plan.scale !== undefined ? { scale: plan.scale } : {}),
    });
    emit('switch', `${stack} now serves release ${release.tag}`);
    const started = new Set(plan.jobs.map((j) => j.node));
    const retired = await retireOldJobs(client, stack, release.tag, started, new Set(plan.declared));
    if (retired > 0)
        emit('cleanup', `${retired} container(s) of older releases retired`);
    return { retired };
}
//# sourceMappingURL=rollout.js.map
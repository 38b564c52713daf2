import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, procKey, procStackPrefix } from '../store/keys.js';
import { isValidName } from '../vikingfile/index.js';
import { jobsFromTemplate } from './jobs.js';
import { withStackLock } from './lock.js';
import { requireStack } from './releases.js';
import { deployJobs, writeJobs } from './rollout.js';
import { updateStack } from './stacks.js';
import { waitForJobsGone } from './wait.js';
export const MAX_REPLICAS = 100;
/** The node's jobs and the release they belong to: the current one, or the older one a service still runs from. */
async function nodeJobs(client, stack, node) {
    const read = await readPrefix(client, procStackPrefix(stack.name));
    const byTag = new Map();
    for (const e of read.entries) {
        const id = jobFromKey(e.key, PREFIX.proc);
        if (!id || !e.value || id.node !== node)
            continue;
        const list = byTag.get(id.tag) ?? [];
        list.push({ ...e.value, ...id });
        byTag.set(id.tag, list);
    }
    const tag = stack.current && (byTag.has(stack.current) || byTag.size === 0) ? stack.current : [...byTag.keys()].sort().at(-1);
    if (!tag)
        throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no live release to scale; push it first`);
    const release = stack.releases.find((r) => r.tag === tag);
    const jobs = (byTag.get(tag) ?? []).sort((a, b) => a.instance - b.instance);
    const template = release?.nodes?.[node] ?? (jobs[0] ? toTemplate(jobs[0]) : undefined);
    if (!template) {
        const nodes = Object.keys(release?.nodes ?? {});
        throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no container node ${node}${nodes.length ? `; its nodes: ${nodes.join(', ')}` : ''}`);
    }
    return { tag, jobs, template };
}
function toTemplate(job) {
    const { stack: _s, tag: _t, instance: _i, ...rest } = job;
    return rest;
}
async function scaleOne(ctx, stack, node, replicas) {
    const emit = ctx.emit ?? (() => { });
    const { tag, jobs, template } = await nodeJobs(ctx.client, stack, node);
    const from = jobs.length;
    if (replicas > from) {
        // New replicas copy the running ones exactly (env overrides included), or the release's spec when none runs.
        const base = jobs[0] ?? jobsFromTemplate(template, stack.name, tag, 1, stack.env ?? {})[0];
        const added = [];
        const top = jobs.at(-1)?.instance ?? 0;
        for (let k = 1; k <= replicas - from; k++)
            added.push({ ...structuredClone(base), instance: top + k, scale: replicas });
        emit('schedule', `${node}: ${added.length} more replica(s) of ${tag} scheduled`);
        await deployJobs(ctx.client, added, {
            ...(ctx.timeoutMs !== undefined ? { timeoutMs: ctx.timeoutMs } : {}),
            emit,
            withdraw: async () => {
                for (const j of added)
                    await ctx.client.delete().key(procKey(j));
            },
        });
        await writeJobs(ctx.client, jobs.map((j) => ({ ...j, scale: replicas })));
    }
    else if (replicas < from) {
        const removed = jobs.slice(replicas);
        const kept = jobs.slice(0, replicas);
        for (const j of [...removed].reverse())
            await ctx.client.delete().key(procKey(j));
        if (kept.length > 0)
            await writeJobs(ctx.client, kept.map((j) => ({ ...j, scale: replicas })));
        emit('schedule', `${node}: ${removed.length} replica(s) of ${tag} withdrawn`);
        await waitForJobsGone(ctx.client, removed, {
            timeoutMs: ctx.timeoutMs ?? 60_000,
            onGone: (job) => emit('deploy', `${job.node}/${job.instance}: stopped taking traffic and released`),
        });
    }
    await updateStack(ctx.client, stack.name, (s) => {
        const scale = { ...(s.scale ?? {}) };
        if (replicas === template.scale)
            delete scale[node];
        else
            scale[node] = { replicas, declared: template.scale };
        return { ...s, scale };
    });
    emit('done', `${stack.name} ${node}: ${from} -> ${replicas} replica(s)${replicas === template.scale ? ' (the Vikingfile\'s scale)' : ''}`);
    return { node, tag, from, to: replicas };
}
/** Scales each named node in turn, under the stack's lock. */
export async function scaleStack(ctx, name, counts) {
    const entries = Object.entries(counts);
    if (entries.length === 0)
        throw new VikingError('VIKING_E_BAD_REQUEST', 'name at least one NODE=N to scale');
    for (const [node, n] of entries) {
        if (!isValidName(node))
            throw new VikingError('VIKING_E_INVALID_NAME', `'${node}' is not a node name (lowercase letters, digits, dashes)`);
        if (!Number.isInteger(n) || n < 0 || n > MAX_REPLICAS) {
            throw new VikingError('VIKING_E_BAD_REQUEST', `${node}=${n}: replicas must be a whole number from 0 to ${MAX_REPLICAS}`);
        }
    }
    await requireStack(ctx.client, name);
    const what = `scale ${entries.map(([n, c]) => `${n}=${c}`).join(' ')}`;
    return withStackLock(ctx.client, name, { what, by: ctx.by, host: ctx.hostName }, async () => {
        const out = [];
        for (const [node, n] of entries)
            out.push(await scaleOne(ctx, await requireStack(ctx.client, name), node, n));
        return out;
    });
}
//# sourceMappingURL=scale.js.map
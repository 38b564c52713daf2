/**
 * `viking scale STACK NODE=N`: more or fewer replicas of a node, in the
 * release that runs it, without a new release.
 *
 * Scaling up writes the new replicas' jobs (copies of replica 1 with a new
 * instance number) and waits until they are healthy; if one fails they are
 * withdrawn and the node stays as it was. Scaling down deletes the highest
 * replicas' jobs and waits until their endpoints left the routers and dispatch
 * freed them. The count is kept as an override in /stack/<stack>, so a later
 * push, rollback or env change keeps it while the Vikingfile's scale for the
 * node is the one it was made against.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, procKey, procStackPrefix } from '../store/keys.js';
import type { JobSpec, NodeTemplate, StackRecord } from '../store/records.js';
import { isValidName } from '../vikingfile/index.js';
import { jobsFromTemplate } from './jobs.js';
import { withStackLock } from './lock.js';
import { requireStack, type ReleaseOpContext } from './releases.js';
import { deleteJobs, deployJobs, writeJobs } from './rollout.js';
import { updateStack } from './stacks.js';
import { MAX_SCALE_CEILING, readSettings } from '../store/settings.js';
import { waitForJobsGone } from './wait.js';
import { dict, own } from '../store/dict.js';

/** What the API schema lets through; the cluster's max-scale setting (default 100) is checked against etcd. */
export const MAX_REPLICAS = MAX_SCALE_CEILING;

export interface NodeScaled {
  node: string;
  tag: string;
  from: number;
  to: number;
}

/** The node's jobs and the release they belong to: the current one, or the older one a service still runs from. */
async function nodeJobs(client: Etcd3, stack: StackRecord, node: string): Promise<{ tag: string; jobs: JobSpec[]; template: NodeTemplate }> {
  const read = await readPrefix<JobSpec>(client, procStackPrefix(stack.name));
  const byTag = new Map<string, JobSpec[]>();
  for (const e of read.entries) {
    const id = jobFromKey(e.key, PREFIX.proc);
    if (!id || !e.value || id.node !== node) continue;
    const list = byTag.get(id.tag) ?? [];
    list.push({ ...e.value, ...id });
    byTag.set(id.tag, list);
  }
  const tag = stack.current && (byTag.has(stack.current) || byTag.size === 0) ? stack.current : [...byTag.keys()].sort().at(-1);
  if (!tag) throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no live release to scale; push it first`);
  const release = stack.releases.find((r) => r.tag === tag);
  const jobs = (byTag.get(tag) ?? []).sort((a, b) => a.instance - b.instance);
  const template = own(release?.nodes, node) ?? (jobs[0] ? toTemplate(jobs[0]) : undefined);
  if (!template) {
    const nodes = Object.keys(release?.nodes ?? {});
    throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no container node ${node}${nodes.length ? `; its nodes: ${nodes.join(', ')}` : ''}`);
  }
  return { tag, jobs, template };
}

function toTemplate(job: JobSpec): NodeTemplate {
  const { stack: _s, tag: _t, instance: _i, ...rest } = job;
  return rest;
}

async function scaleOne(ctx: ReleaseOpContext, stack: StackRecord, node: string, replicas: number): Promise<NodeScaled> {
  const emit = ctx.emit ?? (() => {});
  const { tag, jobs, template } = await nodeJobs(ctx.client, stack, node);
  if (template.cron) throw new VikingError('VIKING_E_CRON_NODE', `${node} is a cron node (schedule: ${template.cron.schedule}): it runs once per tick and has no replicas to scale`);
  const from = jobs.length;
  if (replicas > from) {
    // New replicas copy the running ones exactly (env overrides included), or the release's spec when none runs.
    const base = jobs[0] ?? jobsFromTemplate(template, stack.name, tag, 1, stack.env ?? {})[0]!;
    const added: JobSpec[] = [];
    const top = jobs.at(-1)?.instance ?? 0;
    for (let k = 1; k <= replicas - from; k++) added.push({ ...structuredClone(base), instance: top + k, scale: replicas });
    emit('schedule', `${node}: ${added.length} more replica(s) of ${tag} scheduled`);
    await deployJobs(ctx.client, added, {
      ...(ctx.timeoutMs !== undefined ? { timeoutMs: ctx.timeoutMs } : {}),
      emit,
      withdraw: async () => {
        await deleteJobs(ctx.client, added.map(procKey));
      },
    });
    await writeJobs(ctx.client, jobs.map((j) => ({ ...j, scale: replicas })));
  } else if (replicas < from) {
    const removed = jobs.slice(replicas);
    const kept = jobs.slice(0, replicas);
    await deleteJobs(ctx.client, [...removed].reverse().map(procKey));
    if (kept.length > 0) await writeJobs(ctx.client, kept.map((j) => ({ ...j, scale: replicas })));
    emit('schedule', `${node}: ${removed.length} replica(s) of ${tag} withdrawn`);
    await waitForJobsGone(ctx.client, removed, {
      timeoutMs: ctx.timeoutMs ?? 60_000,
      onGone: (job) => emit('deploy', `${job.node}/${job.instance}: stopped taking traffic and released`),
    });
  }
  await updateStack(ctx.client, stack.name, (s) => {
    const scale = dict(Object.entries(s.scale ?? {}));
    if (replicas === template.scale) delete scale[node];
    else scale[node] = { replicas, declared: template.scale };
    return { ...s, scale };
  });
  emit('done', `${stack.name} ${node}: ${from} -> ${replicas} replica(s)${replicas === template.scale ? ' (the Vikingfile\'s scale)' : ''}`);
  return { node, tag, from, to: replicas };
}

/** Scales each named node in turn, under the stack's lock. */
export async function scaleStack(ctx: ReleaseOpContext, name: string, counts: Record<string, number>): Promise<NodeScaled[]> {
  const entries = Object.entries(counts);
  if (entries.length === 0) throw new VikingError('VIKING_E_BAD_REQUEST', 'name at least one NODE=N to scale');
  for (const [node, n] of entries) {
    if (!isValidName(node)) throw new VikingError('VIKING_E_INVALID_NAME', `'${node}' is not a node name (lowercase letters, digits, dashes)`);
    if (!Number.isInteger(n) || n < 0 || n > MAX_REPLICAS) {
      throw new VikingError('VIKING_E_BAD_REQUEST', `${node}=${n}: replicas must be a whole number from 0 to ${MAX_REPLICAS}`);
    }
  }
  const { maxScale } = await readSettings(ctx.client);
  for (const [node, n] of entries) {
    if (n > maxScale) {
      throw new VikingError('VIKING_E_SCALE_LIMIT', `${node}=${n}: this cluster allows at most ${maxScale} replicas per node (cluster setting max-scale; viking settings max-scale=N changes it)`);
    }
  }
  await requireStack(ctx.client, name);
  const what = `scale ${entries.map(([n, c]) => `${n}=${c}`).join(' ')}`;
  return withStackLock(ctx.client, name, { what, by: ctx.by, host: ctx.hostName }, async () => {
    const out: NodeScaled[] = [];
    for (const [node, n] of entries) out.push(await scaleOne(ctx, await requireStack(ctx.client, name), node, n));
    return out;
  });
}

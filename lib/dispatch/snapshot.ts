/**
 * One consistent view of what dispatch needs, read at a single etcd revision:
 * live hosts, wanted jobs, placed jobs and volume pins. Turned into dowding's
 * plain data here so the planner never sees etcd.
 */
import type { Etcd3 } from 'etcd3';
import { readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, jobPath } from '../store/keys.js';
import type { HostRecord, JobId, JobSpec } from '../store/records.js';
import type { PlanHost, PlanJob } from '../dowding/types.js';

export interface PlacedJob {
  job: JobId;
  host: string;
  /** mod revision of the /run key, compared when it is moved or deleted. */
  modRevision: string;
}

export interface ClusterSnapshot {
  revision: string;
  hosts: Map<string, HostRecord>;
  /** /proc: the jobs wanted, by job path. */
  wanted: Map<string, { spec: JobSpec; modRevision: string }>;
  /** /run: where jobs are, by job path. */
  placed: Map<string, PlacedJob>;
  /** /fixed/<stack>/<node> -> host. */
  pins: Map<string, string>;
}

/** The snapshot; with `stack`, only that stack's wanted and placed jobs (what ps of one stack needs). */
export async function readSnapshot(client: Etcd3, stack?: string): Promise<ClusterSnapshot> {
  const hostsRead = await readPrefix<HostRecord>(client, PREFIX.host);
  const rev = hostsRead.revision;
  const only = stack === undefined ? '' : `${stack}/`;
  const [proc, run, fixed, drain] = await Promise.all([
    readPrefix<JobSpec>(client, PREFIX.proc + only, rev),
    client.getAll().prefix(PREFIX.run + only).revision(rev).exec(),
    client.getAll().prefix(PREFIX.fixed).revision(rev).exec(),
    client.getAll().prefix(PREFIX.drain).revision(rev).keys(),
  ]);
  // A drain mark (/drain/<host>) outlives the host's lease, so it is kept apart from /host.
  const draining = new Set(drain.map((k) => k.slice(PREFIX.drain.length)));
  const hosts = new Map<string, HostRecord>();
  for (const e of hostsRead.entries) if (e.value) hosts.set(e.value.name, { ...e.value, draining: e.value.draining || draining.has(e.value.name) });
  const wanted = new Map<string, { spec: JobSpec; modRevision: string }>();
  for (const e of proc.entries) {
    const job = jobFromKey(e.key, PREFIX.proc);
    if (job && e.value) wanted.set(jobPath(job), { spec: { ...e.value, ...job }, modRevision: e.modRevision });
  }
  const placed = new Map<string, PlacedJob>();
  for (const kv of run.kvs) {
    const job = jobFromKey(kv.key.toString(), PREFIX.run);
    if (job) placed.set(jobPath(job), { job, host: kv.value.toString(), modRevision: kv.mod_revision });
  }
  const pins = new Map<string, string>();
  for (const kv of fixed.kvs) pins.set(kv.key.toString().slice(PREFIX.fixed.length), kv.value.toString());
  // A volume node placed before its pin was written (its pin's batch lost a race) is pinned where it runs.
  for (const [path, p] of placed) {
    const spec = wanted.get(path)?.spec;
    const node = `${p.job.stack}/${p.job.node}`;
    if (spec && spec.volumes.length > 0 && !pins.has(node) && hosts.has(p.host)) pins.set(node, p.host);
  }
  return { revision: rev, hosts, wanted, placed, pins };
}

export function toPlanJob(spec: JobSpec, pins: Map<string, string>): PlanJob {
  const pin = spec.volumes.length > 0 ? pins.get(`${spec.stack}/${spec.node}`) : undefined;
  const job: PlanJob = {
    id: jobPath(spec),
    stack: spec.stack,
    node: spec.node,
    memory: spec.memory,
    cpu: spec.cpu,
    tags: spec.tags,
    prefer: spec.prefer,
  };
  if (pin !== undefined) job.pinnedTo = pin;
  return job;
}

/** dowding's view of the live hosts with the jobs already placed on them. */
export function toPlanHosts(snap: ClusterSnapshot): PlanHost[] {
  const byHost = new Map<string, PlanJob[]>();
  for (const [path, placed] of snap.placed) {
    const wanted = snap.wanted.get(path);
    if (!wanted) continue;
    const list = byHost.get(placed.host) ?? [];
    list.push(toPlanJob(wanted.spec, snap.pins));
    byHost.set(placed.host, list);
  }
  return [...snap.hosts.values()].map((h) => ({
    name: h.name,
    tags: h.tags,
    capacity: h.capacity,
    // A host in its planned-stop grace keeps its jobs (diffDispatch sees it live) but gets no new ones.
    draining: h.draining || h.stopping !== undefined,
    defaultMemory: h.limits?.defaultMemory ?? 0,
    jobs: byHost.get(h.name) ?? [],
  }));
}

/**
 * One consistent view of what dispatch needs, read at a single etcd revision:
 * live hosts, wanted jobs, placed jobs (the lease-free /deploy keys, see
 * lib/store/placements.ts) and volume pins. Turned into dowding's
 * plain data here so the planner never sees etcd.
 */
import type { Etcd3 } from 'etcd3';
import { readKeysOnly, readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, jobPath } from '../store/keys.js';
import { PLACEMENT_LAYOUT, sortPlacements } from '../store/placements.js';
import type { HostRecord, JobId, JobSpec } from '../store/records.js';
import type { PlanHost, PlanJob } from '../dowding/types.js';

export interface PlacedJob {
  job: JobId;
  host: string;
  /** create revision of the job's /deploy key, compared when it is moved or deleted. */
  createRevision: string;
}

export interface ClusterSnapshot {
  revision: string;
  hosts: Map<string, HostRecord>;
  /** /proc: the jobs wanted, by job path. */
  wanted: Map<string, { spec: JobSpec; modRevision: string }>;
  /** /deploy (lease-free keys): where jobs are, by job path. */
  placed: Map<string, PlacedJob>;
  /** A second lease-free /deploy key of a job already placed: dispatch removes it. */
  extra: PlacedJob[];
  /**
   * /run, the old layout's index (job path -> host), kept up to date only
   * while a host of layout 1 lives (`legacy`); emptied once none does.
   */
  run: Map<string, string>;
  /** A live host reads /run (its record has no layout 2): dispatch writes /run as well. */
  legacy: boolean;
  /**
   * What snapshotFingerprint would read at this revision (whole-cluster
   * snapshots only; '' for one stack's): the pass needs no reads of its own
   * to know whether the next resync tick finds something new.
   */
  print: string;
  /** /fixed/<stack>/<node> -> host. */
  pins: Map<string, string>;
}

/** The snapshot; with `stack`, only that stack's wanted and placed jobs (what ps of one stack needs). */
export async function readSnapshot(client: Etcd3, stack?: string): Promise<ClusterSnapshot> {
  const hostsRead = await readPrefix<HostRecord>(client, PREFIX.host);
  const rev = hostsRead.revision;
  const only = stack === undefined ? '' : `${stack}/`;
  const [proc, deploy, run, fixed, drainRead] = await Promise.all([
    readPrefix<JobSpec>(client, PREFIX.proc + only, rev),
    readKeysOnly(client, PREFIX.deploy, rev),
    client.getAll().prefix(PREFIX.run + only).revision(rev).exec(),
    client.getAll().prefix(PREFIX.fixed).revision(rev).exec(),
    client.getAll().prefix(PREFIX.drain).revision(rev).exec(),
  ]);
  // A drain mark (/drain/<host>) outlives the host's lease, so it is kept apart from /host.
  const draining = new Set(drainRead.kvs.map((kv) => kv.key.toString().slice(PREFIX.drain.length)));
  const hosts = new Map<string, HostRecord>();
  for (const e of hostsRead.entries) if (e.value) hosts.set(e.value.name, { ...e.value, draining: e.value.draining || draining.has(e.value.name) });
  const wanted = new Map<string, { spec: JobSpec; modRevision: string }>();
  for (const e of proc.entries) {
    const job = jobFromKey(e.key, PREFIX.proc);
    if (job && e.value) wanted.set(jobPath(job), { spec: { ...e.value, ...job }, modRevision: e.modRevision });
  }
  const placements = sortPlacements(deploy.kvs, rev, stack);
  const strip = (p: { job: JobId; host: string; createRevision: string }): PlacedJob => ({ job: p.job, host: p.host, createRevision: p.createRevision });
  const placed = new Map<string, PlacedJob>([...placements.placed].map(([path, p]) => [path, strip(p)]));
  const extra = placements.extra.map(strip);
  const runIndex = new Map<string, string>();
  for (const kv of run.kvs) {
    const job = jobFromKey(kv.key.toString(), PREFIX.run);
    if (job) runIndex.set(jobPath(job), kv.value.toString());
  }
  const legacy = [...hosts.values()].some((h) => (h.layout ?? 1) < PLACEMENT_LAYOUT);
  const pins = new Map<string, string>();
  for (const kv of fixed.kvs) pins.set(kv.key.toString().slice(PREFIX.fixed.length), kv.value.toString());
  // A volume node placed before its pin was written (its pin's batch lost a race) is pinned where it runs.
  for (const [path, p] of placed) {
    const spec = wanted.get(path)?.spec;
    const node = `${p.job.stack}/${p.job.node}`;
    if (spec && spec.volumes.length > 0 && !pins.has(node) && hosts.has(p.host)) pins.set(node, p.host);
  }
  const print =
    stack !== undefined
      ? ''
      : fingerprintOf([
          hostsRead.entries.map((e) => e.modRevision),
          proc.entries.map((e) => e.modRevision),
          deploy.kvs.map((kv) => kv.create_revision),
          run.kvs.map((kv) => kv.mod_revision),
          fixed.kvs.map((kv) => kv.mod_revision),
          drainRead.kvs.map((kv) => kv.mod_revision),
        ]);
  return { revision: rev, hosts, wanted, placed, extra, run: runIndex, legacy, pins, print };
}

/**
 * The prefixes a snapshot reads, in fingerprint order, with the revision
 * that says each changed: /deploy by its newest created key, since the
 * slaves' status writes rewrite its keys all the time and mean nothing to
 * placement.
 */
export const FINGERPRINT_PREFIXES: ReadonlyArray<readonly [string, 'Mod' | 'Create']> = [
  [PREFIX.host, 'Mod'], [PREFIX.proc, 'Mod'], [PREFIX.deploy, 'Create'], [PREFIX.run, 'Mod'], [PREFIX.fixed, 'Mod'], [PREFIX.drain, 'Mod'],
];

/** Per prefix, `<count>@<newest revision>` (revisions are decimal strings without leading zeros). */
export function fingerprintOf(revisionsPerPrefix: string[][]): string {
  return revisionsPerPrefix
    .map((revs) => `${revs.length}@${revs.reduce((max, r) => (r.length > max.length || (r.length === max.length && r > max) ? r : max), '0')}`)
    .join(' ');
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

/**
 * `GET /v1/allocate/:stack/:tag/:node`: where a node's replicas run, or
 * would run, and why.
 *
 * Dispatch's own reasons live only in the leader's memory, so this asks
 * dowding again on a fresh snapshot read the way dispatch reads it: placed
 * replicas report their host; the others are planned as dispatch would plan
 * them now, with dowding's grouped reasons when no host fits. Every live
 * host is also judged for the node, filter by filter, so an operator sees
 * which host refuses it and why ("missing tag ssd"), or how it scores.
 * A release that no longer runs is planned from its recorded node spec.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { placeJobs, FILTERS, SCORERS, loadScore } from '../dowding/index.js';
import { nodeKey, toHostState } from '../dowding/host-state.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';
import type { JobSpec } from '../store/records.js';
import { effectiveScale, jobsFromTemplate } from '../schedule/jobs.js';
import { readStack } from '../schedule/stacks.js';
import { jobPath } from '../store/keys.js';
import { own } from '../store/dict.js';

export interface ReplicaAllocation {
  instance: number;
  /** Where it runs (placed) or would go (planned); null when no host fits. */
  host: string | null;
  status: 'placed' | 'planned' | 'unplaceable' | 'waiting-host';
  /** dowding's reasons when unplaceable ("2 hosts: not enough memory"). */
  reasons: string[];
}

export interface HostVerdict {
  host: string;
  fits: boolean;
  /** The first filter that refused the node, when it does not fit. */
  reason: string | null;
  /** Lower is better; null when it does not fit. */
  score: number | null;
  /** Replicas of this node already there. */
  replicas: number;
}

export interface Allocation {
  stack: string;
  tag: string;
  node: string;
  /** true when the release has no jobs now and this is what a deploy of it would do. */
  hypothetical: boolean;
  revision: string;
  replicas: ReplicaAllocation[];
  hosts: HostVerdict[];
}

export async function allocate(client: Etcd3, stack: string, tag: string, node: string): Promise<Allocation> {
  const snap = await readSnapshot(client);
  let jobs: JobSpec[] = [...snap.wanted.values()].map((w) => w.spec).filter((s) => s.stack === stack && s.tag === tag && s.node === node);
  let hypothetical = false;
  if (jobs.length === 0) {
    const record = await readStack(client, stack);
    if (!record) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${stack}; viking stacks lists them`);
    const release = record.releases.find((r) => r.tag === tag);
    if (!release) throw new VikingError('VIKING_E_NOT_FOUND', `${stack} has no release ${tag}; viking releases ${stack} lists them`);
    const template = own(release.nodes, node);
    if (!template) throw new VikingError('VIKING_E_NOT_FOUND', `release ${tag} of ${stack} has no container node ${node}`);
    jobs = jobsFromTemplate(template, stack, tag, effectiveScale(template, own(record.scale, node), true), record.env ?? {});
    hypothetical = true;
  }
  jobs.sort((a, b) => a.instance - b.instance);

  const planHosts = toPlanHosts(snap);
  const replicas: ReplicaAllocation[] = [];
  const homeless: JobSpec[] = [];
  for (const job of jobs) {
    const placed = snap.placed.get(jobPath(job));
    const alive = placed ? snap.hosts.has(placed.host) : false;
    if (placed && alive) replicas.push({ instance: job.instance, host: placed.host, status: 'placed', reasons: [] });
    else if (placed && job.volumes.length > 0 && snap.pins.get(`${job.stack}/${job.node}`) === placed.host) {
      replicas.push({ instance: job.instance, host: placed.host, status: 'waiting-host', reasons: [`host ${placed.host} is down; the node's volume is pinned there`] });
    } else homeless.push(job);
  }
  const plan = placeJobs({ hosts: planHosts }, homeless.map((j) => toPlanJob(j, snap.pins)));
  for (const p of plan.placements) replicas.push({ instance: instanceOf(p.job.id), host: p.host, status: 'planned', reasons: [] });
  for (const u of plan.unplaced) replicas.push({ instance: instanceOf(u.job.id), host: null, status: 'unplaceable', reasons: u.reasons });
  replicas.sort((a, b) => a.instance - b.instance);

  const probe = toPlanJob(jobs[0]!, snap.pins);
  const hosts: HostVerdict[] = planHosts.map((h) => {
    const state = toHostState(h);
    let reason: string | null = null;
    for (const f of FILTERS) {
      reason = f(probe, state);
      if (reason !== null) break;
    }
    // The same score dowding ranks by: the host's load plus the job's own penalties.
    const score = reason === null ? SCORERS.reduce((sum, s) => sum + s(probe, state), loadScore(state)) : null;
    return { host: h.name, fits: reason === null, reason, score, replicas: state.replicas.get(nodeKey(probe)) ?? 0 };
  });
  hosts.sort((a, b) => Number(b.fits) - Number(a.fits) || (a.score ?? 0) - (b.score ?? 0) || a.host.localeCompare(b.host));
  return { stack, tag, node, hypothetical, revision: snap.revision, replicas, hosts };
}

function instanceOf(id: string): number {
  return Number(id.split('/').at(-1));
}

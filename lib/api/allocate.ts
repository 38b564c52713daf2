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
import { explainHost, placeJobs } from '../dowding/index.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';
import { jobState } from '../dispatch/reconcile.js';
import type { JobSpec } from '../store/records.js';
import { effectiveScale, jobsFromTemplate } from '../rollout/jobs.js';
import { readStack } from '../rollout/stacks.js';
import { jobPath } from '../store/keys.js';
import { own } from '../store/dict.js';
import type { Allocation, HostVerdict, ReplicaAllocation } from './wire.js';

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
    // Dispatch's own verdict: a job it moves (off a dead or draining host) is planned again here.
    const s = jobState(snap, jobPath(job));
    if (s.state === 'placed') replicas.push({ instance: job.instance, host: s.host, status: 'placed', reasons: [] });
    else if (s.state === 'waiting-host') {
      replicas.push({ instance: job.instance, host: s.host, status: 'waiting-host', reasons: [`host ${s.host} is down; the node's volume is pinned there`] });
    } else homeless.push(job);
  }
  const plan = placeJobs({ hosts: planHosts }, homeless.map((j) => toPlanJob(j, snap.pins)));
  for (const p of plan.placements) replicas.push({ instance: instanceOf(p.job.id), host: p.host, status: 'planned', reasons: [] });
  for (const u of plan.unplaced) replicas.push({ instance: instanceOf(u.job.id), host: null, status: 'unplaceable', reasons: u.reasons });
  replicas.sort((a, b) => a.instance - b.instance);

  const probe = toPlanJob(jobs[0]!, snap.pins);
  const hosts: HostVerdict[] = planHosts.map((h) => {
    const v = explainHost(probe, h);
    return { host: v.host, fits: v.reason === null, reason: v.reason, score: v.score, replicas: v.replicas };
  });
  hosts.sort((a, b) => Number(b.fits) - Number(a.fits) || (a.score ?? 0) - (b.score ?? 0) || a.host.localeCompare(b.host));
  return { stack, tag, node, hypothetical, revision: snap.revision, replicas, hosts };
}

function instanceOf(id: string): number {
  return Number(id.split('/').at(-1));
}

/**
 * The cluster's state as users ask for it: one row per job, joining what is
 * wanted (/proc), where it was placed (/run), what the slave reports
 * (/deploy) and its healthy endpoints (/ports), all read at one revision.
 */
import type { Etcd3 } from 'etcd3';
import { readPrefix, readRecords } from '../store/client.js';
import { PREFIX, jobPath, parseDeployKey } from '../store/keys.js';
import type { DeployState, JobId, PortEndpoint, StackRecord } from '../store/records.js';
import { checkRouteRecords, describeProblem, type RouteProblem } from '../router/route-records.js';
import { readSnapshot } from '../dispatch/snapshot.js';
import { jobState, type JobState } from '../dispatch/reconcile.js';
import { UNROUTABLE, type JobRow, type JobStateName } from './wire.js';

export async function listJobs(client: Etcd3, stack?: string): Promise<JobRow[]> {
  const suffix = stack ? `${stack}/` : '';
  const snap = await readSnapshot(client, stack);
  const rev = snap.revision;
  const [deploy, ports, stacks, domains] = await Promise.all([
    readPrefix<DeployState>(client, PREFIX.deploy, rev),
    readPrefix<PortEndpoint>(client, PREFIX.ports + suffix, rev),
    readPrefix<StackRecord>(client, PREFIX.stack, rev),
    readRecords(client, PREFIX.domains, rev),
  ]);
  // The records the routers leave out, found by the check they run (lib/router/route-records.ts).
  const routing = checkRouteRecords(domains.entries, stacks.entries, ports.entries, { domains: PREFIX.domains }).problems;
  const states = new Map<string, DeployState | undefined>();
  for (const e of deploy.entries) {
    const d = parseDeployKey(e.key);
    if (d) states.set(`${d.host}|${jobPath(d.job)}`, e.value);
  }
  const endpoints = new Map<string, string[]>();
  for (const e of ports.entries) {
    if (!e.value || typeof e.value.ip !== 'string') continue;
    const path = jobPath(e.value);
    const list = endpoints.get(path) ?? [];
    list.push(`${e.value.ip}:${e.value.hostPort}->${e.value.port}/${e.value.proto}`);
    endpoints.set(path, list);
  }
  const current = new Map(stacks.entries.filter((e) => e.value && typeof e.value === 'object').map((e) => [e.value!.name, e.value!.current]));
  const rows: JobRow[] = [];
  for (const [path, wanted] of snap.wanted) {
    const { stack: s, tag, node, instance } = wanted.spec;
    const job: JobId = { stack: s, tag, node, instance };
    const placement = jobState(snap, path);
    const host = placement.state === 'pending' ? null : placement.host;
    const st = host ? states.get(`${host}|${path}`) : undefined;
    rows.push({
      ...job,
      host,
      state: rowState(placement, st),
      current: current.get(job.stack) === job.tag,
      container: st?.container?.slice(0, 12) ?? null,
      endpoints: endpoints.get(path) ?? [],
      reason: withRouting(st?.reason ?? null, routing, job),
      logs: st?.logs ?? [],
      image: wanted.spec.image,
      restarts: st?.restarts ?? st?.failures ?? 0,
      nextTry: st && (st.state === 'backoff' || st.state === 'crash-loop') && st.retryAt ? st.retryAt : null,
    });
  }
  // A problem no job of the listing shows (a stack without jobs, or a record naming no stack) gets a row of its own.
  for (const p of routing) {
    if (stack !== undefined && p.stack !== stack) continue;
    if (rows.some((r) => affects(p, r))) continue;
    rows.push({ stack: p.stack ?? '?', tag: '-', node: p.node ?? '-', instance: 0, host: null, state: UNROUTABLE, current: false, container: null, endpoints: [], reason: describeProblem(p), logs: [], image: '', restarts: 0, nextTry: null });
  }
  return rows;
}

/**
 * A job's state in ps, info and /metrics: dispatch's verdict (jobState) where
 * it is not on a host that keeps it, else what its slave reports.
 */
export function rowState(placement: JobState, st: DeployState | undefined): JobStateName {
  switch (placement.state) {
    case 'pending':
      return 'pending';
    case 'waiting-host':
      return 'waiting-host';
    case 'moving':
      // Off a dead host it is lost until dispatch places it again; a draining host still runs it meanwhile.
      if (placement.hostGone) return 'lost';
      break;
  }
  return st?.state ?? 'placed';
}

const affects = (p: RouteProblem, job: JobId): boolean => p.stack === job.stack && (p.node === null || p.node === job.node);

/** The job's own reason, plus every routing problem of its stack and node. */
function withRouting(reason: string | null, routing: RouteProblem[], job: JobId): string | null {
  const mine = routing.filter((p) => affects(p, job)).map(describeProblem);
  if (mine.length === 0) return reason;
  return [...(reason ? [reason] : []), ...mine].join('; ');
}

export async function listStacks(client: Etcd3): Promise<StackRecord[]> {
  const stacks = await readPrefix<StackRecord>(client, PREFIX.stack);
  return stacks.entries.map((e) => e.value).filter((v): v is StackRecord => v !== undefined);
}

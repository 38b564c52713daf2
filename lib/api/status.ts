/**
 * The cluster's state as users ask for it: one row per job, joining what is
 * wanted (/proc), where it was placed (/run), what the slave reports
 * (/deploy) and its healthy endpoints (/ports), all read at one revision.
 */
import type { Etcd3 } from 'etcd3';
import { readPrefix, readRecords } from '../store/client.js';
import { PREFIX, jobFromKey, jobPath, parseDeployKey } from '../store/keys.js';
import type { DeployState, HostRecord, JobId, JobSpec, PortEndpoint, StackRecord } from '../store/records.js';
import { checkRouteRecords, describeProblem, type RouteProblem } from '../router/route-records.js';

export interface JobRow {
  stack: string;
  tag: string;
  node: string;
  instance: number;
  host: string | null;
  /** pending (no host yet), placed (slave not done), starting, running, backoff, crash-loop, lost (host gone), waiting-host. */
  state: string;
  current: boolean;
  container: string | null;
  endpoints: string[];
  reason: string | null;
  logs: string[];
  image: string;
  /** Failures of the job on its host so far (crashes, failed starts, kills from outside). */
  restarts: number;
  /** When its host tries to start it again (ISO time), while it is in backoff or crash-loop. */
  nextTry: string | null;
}

export async function listJobs(client: Etcd3, stack?: string): Promise<JobRow[]> {
  const suffix = stack ? `${stack}/` : '';
  const proc = await readPrefix<JobSpec>(client, PREFIX.proc + suffix);
  const rev = proc.revision;
  const [run, deploy, ports, stacks, hosts, domains] = await Promise.all([
    client.getAll().prefix(PREFIX.run + suffix).revision(rev).exec(),
    readPrefix<DeployState>(client, PREFIX.deploy, rev),
    readPrefix<PortEndpoint>(client, PREFIX.ports + suffix, rev),
    readPrefix<StackRecord>(client, PREFIX.stack, rev),
    readPrefix<HostRecord>(client, PREFIX.host, rev),
    readRecords(client, PREFIX.domains, rev),
  ]);
  // The records the routers leave out, found by the check they run (lib/router/route-records.ts).
  const routing = checkRouteRecords(domains.entries, stacks.entries, ports.entries, { domains: PREFIX.domains }).problems;
  const placed = new Map<string, string>();
  for (const kv of run.kvs) {
    const job = jobFromKey(kv.key.toString(), PREFIX.run);
    if (job) placed.set(jobPath(job), kv.value.toString());
  }
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
  const live = new Set(hosts.entries.filter((e) => e.value).map((e) => e.value!.name));
  const rows: JobRow[] = [];
  for (const e of proc.entries) {
    const job = jobFromKey(e.key, PREFIX.proc);
    if (!job || !e.value) continue;
    const path = jobPath(job);
    const host = placed.get(path) ?? null;
    const st = host ? states.get(`${host}|${path}`) : undefined;
    let state = !host ? 'pending' : !live.has(host) ? 'lost' : st?.state ?? 'placed';
    if (host && !live.has(host) && e.value.volumes.length > 0) state = 'waiting-host';
    rows.push({
      ...job,
      host,
      state,
      current: current.get(job.stack) === job.tag,
      container: st?.container?.slice(0, 12) ?? null,
      endpoints: endpoints.get(path) ?? [],
      reason: withRouting(st?.reason ?? null, routing, job),
      logs: st?.logs ?? [],
      image: e.value.image,
      restarts: st?.restarts ?? st?.failures ?? 0,
      nextTry: st && (st.state === 'backoff' || st.state === 'crash-loop') && st.retryAt ? st.retryAt : null,
    });
  }
  // A problem no job of the listing shows (a stack without jobs, or a record naming no stack) gets a row of its own.
  for (const p of routing) {
    if (stack !== undefined && p.stack !== stack) continue;
    if (rows.some((r) => affects(p, r))) continue;
    rows.push({ stack: p.stack ?? '?', tag: '-', node: p.node ?? '-', instance: 0, host: null, state: 'unroutable', current: false, container: null, endpoints: [], reason: describeProblem(p), logs: [], image: '', restarts: 0, nextTry: null });
  }
  return rows;
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

/**
 * Where jobs are: read from `/deploy/<host>/<job>` itself.
 *
 * A placement used to be written twice: `/run/<job>` (job -> host, the index
 * dispatch and the API read) and `/deploy/<host>/<job>` (what the host's
 * slave watches). The two always changed together in one transaction, so the
 * index cost one key write per job and bought nothing the deploy keys do not
 * say: bench/schedule measured 4 writes per job (/proc, /run, /deploy, ack).
 * Now the deploy key is the one record of a placement, and /run is written
 * only while a host of the old layout still lives (a rolling upgrade; see
 * PLACEMENT_LAYOUT and Dispatcher).
 *
 * Which deploy keys are placements:
 * - a key without a lease is a placement;
 * - a key under a lease is the copy `viking hosts rebalance` starts before it
 *   hands the replica over (lib/host-admin/rebalance.ts): it is not where the
 *   job is until the switch writes it again without the lease;
 * - two lease-free keys of one job (a state no viking writes, but etcd may
 *   hold after a bug or by hand) are one placement, the oldest, and extras
 *   dispatch removes.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { readKeysOnly } from './client.js';
import { PREFIX, jobPath, parseDeployKey } from './keys.js';
import type { JobId } from './records.js';

/**
 * Layout of placements a host's code reads and writes. 1: `/run` is the
 * index (viking before this file); 2: `/deploy` alone. A host record without
 * the field is layout 1.
 */
export const PLACEMENT_LAYOUT = 2;

export interface Placement {
  job: JobId;
  host: string;
  /** create revision of the deploy key: a move or removal compares it (a slave's status writes change only its mod revision). */
  createRevision: string;
  /** The deploy key's value: '' until the slave writes its DeployState. */
  value: string;
}

export interface PlacementRead {
  revision: string;
  /** By job path: the one placement of each job. */
  placed: Map<string, Placement>;
  /** Further lease-free deploy keys of a job already placed (newer ones): to remove. */
  extra: Placement[];
  /** Deploy keys under a lease: copies a rebalance is starting, by job path. */
  copies: Map<string, Placement[]>;
}

/** Sorts one range answer's deploy keys into placements, extras and copies (one pass, no sort: dispatch reads every key on every pass). */
export function sortPlacements(kvs: IKeyValue[], revision: string, stack?: string): PlacementRead {
  const out: PlacementRead = { revision, placed: new Map(), extra: [], copies: new Map() };
  const stackPart = stack === undefined ? undefined : `/${stack}/`;
  for (const kv of kvs) {
    const key = kv.key.toString();
    if (stackPart !== undefined && !key.includes(stackPart)) continue;
    const parsed = parseDeployKey(key);
    if (!parsed || (stack !== undefined && parsed.job.stack !== stack)) continue;
    const p: Placement = { job: parsed.job, host: parsed.host, createRevision: kv.create_revision, value: kv.value.toString() };
    const path = jobPath(parsed.job);
    if (kv.lease !== '0' && kv.lease !== '') {
      const list = out.copies.get(path);
      if (list) list.push(p);
      else out.copies.set(path, [p]);
      continue;
    }
    const kept = out.placed.get(path);
    if (!kept) out.placed.set(path, p);
    else if (compareRevisions(p.createRevision, kept.createRevision) < 0) {
      // The oldest placement stays; the one it replaces becomes the extra.
      out.placed.set(path, p);
      out.extra.push(kept);
    } else out.extra.push(p);
  }
  return out;
}

function compareRevisions(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Every placement (of one stack with `stack`), at `revision` or the newest. */
export async function readPlacements(client: Etcd3, opts: { stack?: string; revision?: string } = {}): Promise<PlacementRead> {
  let q = client.getAll().prefix(PREFIX.deploy);
  if (opts.revision !== undefined) q = q.revision(opts.revision);
  const res = await q.exec();
  return sortPlacements(res.kvs, res.header.revision, opts.stack);
}

/**
 * Like readPlacements, without the values (every `value` is ''): what a
 * poll needs to find hosts, at a fraction of the bytes when the slaves'
 * reports are long.
 */
export async function readPlacementKeys(client: Etcd3, opts: { stack?: string; revision?: string } = {}): Promise<PlacementRead> {
  const res = await readKeysOnly(client, PREFIX.deploy, opts.revision);
  return sortPlacements(res.kvs, res.revision, opts.stack);
}

/** Where a job is placed (its `value` left ''), or null: one keys-only read of the deploy keys. */
export async function placementOf(client: Etcd3, job: JobId): Promise<Placement | null> {
  return (await readPlacementKeys(client, { stack: job.stack })).placed.get(jobPath(job)) ?? null;
}

/** Jobs placed per host. */
export function jobsPerHost(read: PlacementRead): Map<string, number> {
  const n = new Map<string, number>();
  for (const p of read.placed.values()) n.set(p.host, (n.get(p.host) ?? 0) + 1);
  return n;
}

/** Job path -> host of every placement (of one stack with `stack`): what `viking ps` and the tests ask. */
export async function placedHosts(client: Etcd3, stack?: string): Promise<Map<string, string>> {
  const read = await readPlacements(client, stack === undefined ? {} : { stack });
  return new Map([...read.placed].map(([path, p]) => [path, p.host]));
}

/** The host a job is placed on, or null. */
export async function hostOfJob(client: Etcd3, job: JobId): Promise<string | null> {
  return (await placementOf(client, job))?.host ?? null;
}

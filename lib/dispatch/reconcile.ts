/**
 * What dispatch must change, as plain data: the difference between the jobs
 * wanted (/proc) and where jobs are (/deploy), given the live hosts. Pure, so
 * the rules (remove unwanted, move off dead hosts, keep volume jobs waiting
 * for theirs) are table-tested without etcd.
 */
import type { ClusterSnapshot, PlacedJob } from './snapshot.js';
import type { JobSpec } from '../store/records.js';

export interface DispatchDiff {
  /** Jobs that need a host (new, or their host died and they may move). */
  toPlace: JobSpec[];
  /** Placements to delete: the job is no longer wanted, or it is a second placement of a job. */
  toRemove: PlacedJob[];
  /** Placed on a dead or draining host: delete the placement and place again. */
  toMove: PlacedJob[];
  /** Placed on a dead host but pinned by a volume: they wait for it. */
  waiting: PlacedJob[];
}

/**
 * Where one wanted or placed job stands, as dispatch sees it: the one rule
 * that diffDispatch acts on and that ps, info, allocate and /metrics report.
 * - `pending`: wanted, not placed yet (dispatch places it);
 * - `placed`: on a live host that keeps it (a draining host keeps volume jobs);
 * - `moving`: on a dead or draining host it may leave (dispatch places it again);
 * - `waiting-host`: on a dead host it waits for (its volume is pinned there, or
 *   the host is `held`);
 * - `unwanted`: placed but no longer wanted (dispatch removes it).
 */
export type JobState =
  | { state: 'pending' }
  | { state: 'placed'; host: string }
  | { state: 'moving'; host: string; hostGone: boolean }
  | { state: 'waiting-host'; host: string }
  | { state: 'unwanted'; host: string };

/**
 * The state of the job at `path` (a job path) in `snap`. `held`: hosts
 * absent from the snapshot that get time to come back before their jobs move
 * (see Dispatcher: a leader new to the cluster has never seen them alive, and
 * after etcd lost quorum their keys come back a moment after the leader's).
 */
export function jobState(snap: Pick<ClusterSnapshot, 'hosts' | 'wanted' | 'placed' | 'pins'>, path: string, held: ReadonlySet<string> = new Set()): JobState {
  const placed = snap.placed.get(path);
  const wanted = snap.wanted.get(path);
  if (!placed) return { state: 'pending' };
  if (!wanted) return { state: 'unwanted', host: placed.host };
  const host = snap.hosts.get(placed.host);
  if (host && !host.draining) return { state: 'placed', host: placed.host };
  if (!host && held.has(placed.host)) return { state: 'waiting-host', host: placed.host };
  // Volume jobs stay with their data: on a draining host they stay, on a dead one they
  // wait, unless the operator removed the pin (viking hosts rm) to let them go.
  if (wanted.spec.volumes.length > 0) {
    if (host) return { state: 'placed', host: placed.host };
    if (snap.pins.get(`${wanted.spec.stack}/${wanted.spec.node}`) === placed.host) return { state: 'waiting-host', host: placed.host };
  }
  return { state: 'moving', host: placed.host, hostGone: !host };
}

/** What dispatch does about every job of the snapshot, by jobState (`held` as there). */
export function diffDispatch(snap: ClusterSnapshot, held: ReadonlySet<string> = new Set()): DispatchDiff {
  const diff: DispatchDiff = { toPlace: [], toRemove: [], toMove: [], waiting: [] };
  for (const [path, placed] of snap.placed) {
    const s = jobState(snap, path, held);
    if (s.state === 'unwanted') diff.toRemove.push(placed);
    else if (s.state === 'waiting-host') diff.waiting.push(placed);
    else if (s.state === 'moving') {
      diff.toMove.push(placed);
      diff.toPlace.push(snap.wanted.get(path)!.spec);
    }
  }
  for (const [path, wanted] of snap.wanted) if (!snap.placed.has(path)) diff.toPlace.push(wanted.spec);
  // A job placed twice runs once: the newer placement goes.
  diff.toRemove.push(...snap.extra);
  return diff;
}

/**
 * What dispatch must change, as plain data: the difference between the jobs
 * wanted (/proc) and where jobs are (/run), given the live hosts. Pure, so
 * the rules (remove unwanted, move off dead hosts, keep volume jobs waiting
 * for theirs) are table-tested without etcd.
 */
import type { ClusterSnapshot, PlacedJob } from './snapshot.js';
import type { JobSpec } from '../store/records.js';

export interface DispatchDiff {
  /** Jobs that need a host (new, or their host died and they may move). */
  toPlace: JobSpec[];
  /** /run entries to delete because the job is no longer wanted. */
  toRemove: PlacedJob[];
  /** Placed on a dead or draining host: delete the /run entry and place again. */
  toMove: PlacedJob[];
  /** Placed on a dead host but pinned by a volume: they wait for it. */
  waiting: PlacedJob[];
}

/**
 * `held`: hosts absent from the snapshot that get time to come back before
 * their jobs move (see Dispatcher: a leader new to the cluster has never
 * seen them alive, and after etcd lost quorum their keys come back a moment
 * after the leader's).
 */
export function diffDispatch(snap: ClusterSnapshot, held: ReadonlySet<string> = new Set()): DispatchDiff {
  const diff: DispatchDiff = { toPlace: [], toRemove: [], toMove: [], waiting: [] };
  for (const [path, placed] of snap.placed) {
    const wanted = snap.wanted.get(path);
    if (!wanted) {
      diff.toRemove.push(placed);
      continue;
    }
    const host = snap.hosts.get(placed.host);
    if (host && !host.draining) continue;
    if (!host && held.has(placed.host)) {
      diff.waiting.push(placed);
      continue;
    }
    // Volume jobs stay with their data: on a draining host they stay, on a dead one they
    // wait, unless the operator removed the pin (viking hosts rm) to let them go.
    if (wanted.spec.volumes.length > 0) {
      const pinnedHere = snap.pins.get(`${wanted.spec.stack}/${wanted.spec.node}`) === placed.host;
      if (host) continue;
      if (pinnedHere) {
        diff.waiting.push(placed);
        continue;
      }
    }
    diff.toMove.push(placed);
    diff.toPlace.push(wanted.spec);
  }
  for (const [path, wanted] of snap.wanted) if (!snap.placed.has(path)) diff.toPlace.push(wanted.spec);
  return diff;
}

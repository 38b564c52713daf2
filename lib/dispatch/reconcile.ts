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
  /** Placed on a dead host: delete the /run entry and place again. */
  toMove: PlacedJob[];
  /** Placed on a dead host but pinned by a volume: they wait for it. */
  waiting: PlacedJob[];
}

export function diffDispatch(snap: ClusterSnapshot): DispatchDiff {
  const diff: DispatchDiff = { toPlace: [], toRemove: [], toMove: [], waiting: [] };
  for (const [path, placed] of snap.placed) {
    const wanted = snap.wanted.get(path);
    if (!wanted) {
      diff.toRemove.push(placed);
      continue;
    }
    if (snap.hosts.has(placed.host)) continue;
    if (wanted.spec.volumes.length > 0) diff.waiting.push(placed);
    else {
      diff.toMove.push(placed);
      diff.toPlace.push(wanted.spec);
    }
  }
  for (const [path, wanted] of snap.wanted) if (!snap.placed.has(path)) diff.toPlace.push(wanted.spec);
  return diff;
}

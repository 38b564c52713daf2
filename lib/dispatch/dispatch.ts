/**
 * Dispatch: the leader's level-triggered placement loop.
 *
 * A watch event only wakes the loop. Each pass reads the whole state at one
 * revision, diffs wanted (/proc) against placed (the lease-free
 * `/deploy/<host>/<job>` keys, lib/store/placements.ts), asks dowding where
 * the homeless jobs go, and commits `/deploy/<host>` in batched transactions
 * fenced on the leader key, on the pass's epoch (DISPATCH_EPOCH_KEY) and on
 * every key the plan read. A conflict means the world moved: the pass runs
 * again on fresh data. One key per placement: with the push's /proc and the
 * slave's status write, a job costs 3 key writes.
 */
import type { Etcd3 } from 'etcd3';
import type { IKeyValue, IOperation } from 'etcd3';
import { placeJobs } from '../dowding/plan.js';
import type { Placement, Unplaced } from '../dowding/types.js';
import { watchPrefix, type PrefixWatch } from '../store/client.js';
import { WakeLoop } from '../control/wake-loop.js';
import { tcpReachable } from '../net.js';
import { DISPATCH_EPOCH_KEY, LEADER_KEY, PREFIX, deployKey, fixedKey, jobPath, parseJobPath, runKey } from '../store/keys.js';
import type { Leadership } from '../leader/election.js';
import { FINGERPRINT_PREFIXES, readSnapshot, toPlanHosts, toPlanJob, type ClusterSnapshot } from './snapshot.js';
import { diffDispatch, type DispatchDiff } from './reconcile.js';

/** etcd refuses a transaction with more than 128 compares or 128 operations (--max-txn-ops). */
const MAX_TXN_OPS = 128;

/** Compares every dispatch commit carries: the leader fence and the pass's epoch. */
const FENCE_COMPARES = 2;

/** Packs changes into transactions that stay under etcd's limits; the fences take FENCE_COMPARES compares each. */
export function batchChanges<T extends { compares: unknown[]; ops: unknown[] }>(changes: T[], limit = MAX_TXN_OPS): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let compares = FENCE_COMPARES;
  let ops = 0;
  for (const change of changes) {
    if (current.length > 0 && (compares + change.compares.length > limit || ops + change.ops.length > limit)) {
      batches.push(current);
      current = [];
      compares = FENCE_COMPARES;
      ops = 0;
    }
    current.push(change);
    compares += change.compares.length;
    ops += change.ops.length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

export interface DispatchResult {
  placed: number;
  removed: number;
  moved: number;
  unplaced: Unplaced[];
  conflicts: number;
}

interface Change {
  compares: Array<[string, 'Create' | 'Mod' | 'Version', '==' | '>', string | number]>;
  ops: IOperation[];
}

export interface DispatcherOptions {
  /** Period of the level-triggered resync that backs the watches (DISPATCH_RESYNC_MS). */
  resyncMs?: number;
  /** How long a new dispatcher waits for a host it has never seen alive before moving its jobs (5 s). */
  hostGraceMs?: number;
  /** Whether to hold unseen hosts at all now (default: always within hostGraceMs of the start). */
  holdUnseenHosts?: () => boolean;
  /**
   * When this process last got etcd back after an outage longer than a lease
   * TTL (epoch ms, 0: never): for OUTAGE_GRACE_MS after it, every host whose
   * key is missing is held, seen alive before or not.
   */
  etcdBackAt?: () => number;
  /** How long /run stays written after a host of the old layout was last seen (LEGACY_RUN_GRACE_MS). */
  legacyRunGraceMs?: number;
  /** How long after etcd came back missing hosts are held (OUTAGE_GRACE_MS). */
  outageGraceMs?: number;
  log?: (msg: string) => void;
  /** A commit was refused by the leader fence: the leadership it was fenced on is over. */
  onFenced?: (held: Leadership) => void;
}

/**
 * How often dispatch checks, without a watch event, whether /host, /proc,
 * /run, /fixed or /drain changed since its last full pass. The watches make
 * dispatch fast; this makes it right when a watch event is lost or a stream
 * hangs on a member that gets no news (a pulled cable: gRPC keepalive
 * notices in 5-7 s). 2 s: the promise is work re-placed within 5 s of a
 * host's lease ending. The check is five one-key range reads at one
 * revision (count and newest mod revision of each prefix), not a full pass:
 * a full pass over 10,000 jobs on 100 hosts costs the leader 0.2-0.4 s of
 * CPU (measured on this 2-core machine under load), too much every 2 s.
 * A full pass runs when the fingerprint moved, and at least every
 * DISPATCH_FULL_RESYNC_MS anyway.
 */
export const DISPATCH_RESYNC_MS = 2000;
export const DISPATCH_FULL_RESYNC_MS = 30_000;

/**
 * How long after etcd got its quorum back the leader holds hosts whose keys
 * are missing. Without quorum no lease can be renewed; the new etcd leader
 * extends every lease by its TTL, and a host whose client takes longer than
 * that to reach etcd again (its client's reconnect backoff, a loaded
 * machine) loses its key for a moment before it puts it back under a new
 * lease. A leader that saw the host's key just before (under the extended
 * lease) moved its jobs at once and stopped a healthy container (CI on
 * bc12fc7, test/e2e/etcd-quorum, at a load average of 20: the API answered
 * 4.5 s after quorum came back). 10 s covers that reconnect with room.
 * Only hosts whose API still accepts a TCP connection are held: a server
 * lost during or just before the outage (its packets vanish, or it refuses)
 * moves at once, so a power loss of etcd's own leader, whose election also
 * holds renewals up past a TTL, keeps its promise.
 */
export const OUTAGE_GRACE_MS = 10_000;

/**
 * How long the leader keeps /run written after it last saw a host of the
 * old placement layout (see Dispatcher.keepRun): longer than a host's
 * restart or an etcd outage, so a record missing for a while does not end
 * the index an old host would lead from.
 */
export const LEGACY_RUN_GRACE_MS = 5 * 60_000;

/** How long the leader waits for a missing host's API to accept a connection (after an outage only). */
const HOST_PROBE_MS = 700;

/**
 * What dispatch's snapshot depends on, in a few bytes: per prefix, how many
 * keys and the newest mod (or create) revision, read at one revision. Any
 * put changes a newest mod revision; any delete changes a count or, with a
 * put, a newest revision. A pass takes the same string from its snapshot
 * (ClusterSnapshot.print).
 */
export async function snapshotFingerprint(client: Etcd3): Promise<string> {
  const [[first, by], ...rest] = FINGERPRINT_PREFIXES as [readonly [string, 'Mod' | 'Create'], ...Array<readonly [string, 'Mod' | 'Create']>];
  const head = await client.getAll().prefix(first).sort(by, 'Descend').limit(1).exec();
  const rev = head.header.revision;
  const others = await Promise.all(rest.map(([p, t]) => client.getAll().prefix(p).sort(t, 'Descend').limit(1).revision(rev).exec()));
  const newest = (r: typeof head, t: 'Mod' | 'Create'): string => (t === 'Mod' ? r.kvs[0]?.mod_revision : r.kvs[0]?.create_revision) ?? '0';
  return [head, ...others].map((r, i) => `${r.count}@${newest(r, FINGERPRINT_PREFIXES[i]![1])}`).join(' ');
}

export class Dispatcher {
  private watches: PrefixWatch[] = [];
  private resync: NodeJS.Timeout | undefined;
  /** One pass at a time; a conflict asks for another at once. */
  private readonly loop = new WakeLoop(
    async () => (await this.dispatchOnce()).conflicts > 0,
    (err) => this.options.log?.(`dispatch pass failed: ${err.message}`),
  );
  /** Jobs no host could take in the last pass, with dowding's reasons. */
  lastUnplaced: Unplaced[] = [];
  /** Commits the leader fence refused: this process wrote while no longer the leader. */
  fencedWrites = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly fence: () => Leadership | undefined,
    private readonly options: DispatcherOptions = {},
  ) {}

  start(): void {
    // Not /deploy: dispatch writes it itself, and watching it would bring the leader every status
    // write of every slave (thousands in a large push). What others do there (a rebalance's
    // switch, `viking hosts rm`) needs nothing of dispatch at once; the resync sees it.
    for (const prefix of [PREFIX.proc, PREFIX.host, PREFIX.fixed]) {
      this.watches.push(watchPrefix(this.client, prefix, () => this.wake()));
    }
    this.resync = setInterval(() => void this.resyncTick(), this.options.resyncMs ?? DISPATCH_RESYNC_MS);
    this.loop.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    clearTimeout(this.graceTimer);
    await Promise.all(this.watches.map((w) => w.cancel()));
    this.watches = [];
    await this.loop.stop();
  }

  private readonly startedAt = Date.now();
  private readonly seenAlive = new Set<string>();

  /**
   * Hosts whose jobs do not move yet although their key is missing: a host
   * this dispatcher has never seen alive, while it is younger than the grace
   * (default 5 s). A new leader often starts right after etcd got its quorum
   * back, a moment before the hosts' keys are put again (their old leases
   * ran out while etcd could not be renewed); moving their jobs then would
   * stop healthy containers. A host seen alive that then vanishes died while
   * this leader watched: its jobs move at once. (Nomad gives nodes a
   * heartbeat grace after a leader election for the same reason.)
   */
  private async heldHosts(snap: ClusterSnapshot): Promise<Set<string>> {
    for (const [name, record] of snap.hosts) {
      this.seenAlive.add(name);
      this.lastApi.set(name, record.api);
    }
    const held = new Set<string>();
    const now = Date.now();
    const youngUntil = this.startedAt + (this.options.hostGraceMs ?? 5000);
    const young = now < youngUntil && (!this.options.holdUnseenHosts || this.options.holdUnseenHosts());
    const backAt = this.options.etcdBackAt?.() ?? 0;
    const outageUntil = backAt > 0 ? backAt + (this.options.outageGraceMs ?? OUTAGE_GRACE_MS) : 0;
    const afterOutage = now < outageUntil;
    if (!young && !afterOutage) {
      this.heldLogged.clear();
      return held;
    }
    const missing = new Set<string>();
    for (const placed of snap.placed.values()) if (!snap.hosts.has(placed.host)) missing.add(placed.host);
    const probed: string[] = [];
    for (const host of missing) {
      if (young && !this.seenAlive.has(host)) held.add(host);
      else if (afterOutage && this.lastApi.has(host)) probed.push(host);
    }
    // After a quorum loss, "seen alive" proves nothing: the key seen may have been one whose
    // extended lease was about to end. A host whose API still accepts connections is alive and
    // putting its key back; one that answers nothing (a lost server) moves at once.
    const answers = await Promise.all(probed.map((h) => tcpReachable(this.lastApi.get(h)!, HOST_PROBE_MS)));
    probed.forEach((h, i) => answers[i] && held.add(h));
    for (const host of held) {
      if (this.heldLogged.has(host)) continue;
      this.heldLogged.add(host);
      this.options.log?.(`dispatch: host ${host} has no key; its jobs stay for now (${young && !this.seenAlive.has(host) ? 'this leader just started' : `etcd came back ${Math.round((now - backAt) / 1000)} s ago and its API answers`}): its lease is being renewed`);
    }
    // Look again once the grace is over, whatever wakes the loop meanwhile.
    if (held.size > 0 && !this.graceTimer) {
      const until = Math.max(young ? youngUntil : 0, afterOutage ? outageUntil : 0);
      this.graceTimer = setTimeout(() => {
        this.graceTimer = undefined;
        this.wake();
      }, until - now + 10);
    }
    return held;
  }

  /** Each host's API address as last seen in /host, to ask whether a host whose key went is alive. */
  private readonly lastApi = new Map<string, string>();

  /** Hosts whose hold this leader has logged (once per hold). */
  private readonly heldLogged = new Set<string>();

  private graceTimer: NodeJS.Timeout | undefined;

  /** Coalesces wake-ups: at most one pass runs, and one more follows if woken meanwhile. */
  wake(): void {
    this.loop.wake();
  }

  private lastPassPrint = '';
  private lastPassAt = 0;
  private ticking = false;

  /** The periodic resync: a full pass when the state moved since the last one (or it is old), whatever the watches said. */
  private async resyncTick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const print = await snapshotFingerprint(this.client);
      if (print !== this.lastPassPrint || Date.now() - this.lastPassAt >= DISPATCH_FULL_RESYNC_MS) this.wake();
    } catch {
      this.wake();
    } finally {
      this.ticking = false;
    }
  }

  /** Full passes run so far (a test awaits passes after what it set up). */
  get passes(): number {
    return this.passCount;
  }

  private passCount = 0;

  /**
   * When this dispatcher last had reason to think a host of the old layout
   * (one that reads /run) may be around: one was live, or /run held entries
   * when it started. Undefined: never.
   */
  private legacySeenAt: number | undefined;

  /** One full pass: snapshot, diff, plan, commit. */
  async dispatchOnce(): Promise<DispatchResult> {
    this.passCount++;
    const leadership = this.fence();
    const none = { placed: 0, removed: 0, moved: 0, unplaced: [], conflicts: 0 };
    if (!leadership) return none;
    // A new epoch every pass, then the snapshot: a commit of an earlier pass that lands before
    // the new epoch is in the snapshot; one that lands after it fails its epoch compare. Such a
    // late commit is not only one whose call threw: etcd3 retries a transaction whose try timed
    // out (on another member), so a commit can answer success while its first try is still on
    // its way (review of this change). One transaction a pass.
    const epoch = await this.newEpoch(leadership);
    if (epoch === null) return none;
    const snap = await readSnapshot(this.client);
    const print = snap.print;
    const diff = diffDispatch(snap, await this.heldHosts(snap));
    const plan = placeJobs({ hosts: toPlanHosts(snap) }, diff.toPlace.map((s) => toPlanJob(s, snap.pins)));
    this.lastUnplaced = plan.unplaced;
    const changes = this.changes(snap, diff, plan.placements, this.keepRun(snap));
    let conflicts = 0;
    // Independent batches commit concurrently; each is atomic and fenced on its own.
    const results = await Promise.all(batchChanges(changes).map((batch) => this.commit(leadership, epoch, batch)));
    conflicts = results.filter((ok) => !ok).length;
    if (conflicts === 0) {
      this.lastPassPrint = print;
      this.lastPassAt = Date.now();
    }
    if (changes.length > 0) {
      this.options.log?.(
        `dispatch: placed ${plan.placements.length}, removed ${diff.toRemove.length}, moved ${diff.toMove.length}, unplaced ${plan.unplaced.length}${conflicts ? `, ${conflicts} conflicts` : ''}`,
      );
    }
    return { placed: plan.placements.length, removed: diff.toRemove.length, moved: diff.toMove.length, unplaced: plan.unplaced, conflicts };
  }

  private changes(snap: ClusterSnapshot, diff: DispatchDiff, placements: Placement[], keepRun: boolean): Change[] {
    const out: Change[] = [];
    const c = this.client;
    /** Job paths whose /run entry this pass writes or deletes anyway. */
    const touched = new Set<string>();
    // Deploy keys this pass's placements write: an extra on one of them is not deleted (etcd
    // refuses a put and a delete of one key in a transaction; in two, the delete would undo the put).
    const written = new Set<string>();
    for (const { job, host } of placements) {
      const spec = snap.wanted.get(job.id)?.spec;
      if (spec) written.add(deployKey(host, spec));
    }
    for (const p of diff.toRemove) {
      const path = jobPath(p.job);
      if (written.has(deployKey(p.host, p.job))) continue;
      const change: Change = {
        compares: [[deployKey(p.host, p.job), 'Create', '==', p.createRevision]],
        ops: [c.delete().key(deployKey(p.host, p.job))],
      };
      // The /run entry goes with the job's placement (an extra placement leaves it to the kept one).
      if (snap.placed.get(path)?.createRevision === p.createRevision) {
        if (snap.run.has(path)) change.ops.push(c.delete().key(runKey(p.job)));
        touched.add(path);
      }
      out.push(change);
    }
    const moving = new Map(diff.toMove.map((m) => [jobPath(m.job), m]));
    const pinned = new Set<string>();
    for (const { job, host } of placements) {
      const wanted = snap.wanted.get(job.id);
      if (!wanted) continue;
      const spec = wanted.spec;
      const moved = moving.get(job.id);
      const change: Change = {
        compares: [[`${PREFIX.proc}${job.id}`, 'Mod', '==', wanted.modRevision]],
        ops: [c.put(deployKey(host, spec)).value('')],
      };
      if (moved) {
        change.compares.push([deployKey(moved.host, spec), 'Create', '==', moved.createRevision]);
        change.ops.push(c.delete().key(deployKey(moved.host, spec)));
      }
      if (keepRun) {
        change.ops.push(c.put(runKey(spec)).value(host));
        touched.add(job.id);
      } else if (snap.run.has(job.id)) {
        touched.add(job.id);
      }
      const pinKey = fixedKey(spec.stack, spec.node);
      if (spec.volumes.length > 0 && !snap.pins.has(`${spec.stack}/${spec.node}`) && !pinned.has(pinKey)) {
        pinned.add(pinKey);
        change.compares.push([pinKey, 'Version', '==', 0]);
        change.ops.push(c.put(pinKey).value(host));
      }
      out.push(change);
    }
    out.push(...this.runIndexChanges(snap, touched, keepRun));
    return out;
  }

  /**
   * Whether /run is kept written: while a host of the old layout is live,
   * and for LEGACY_RUN_GRACE_MS after one was last seen (or after this
   * dispatcher started and found /run entries). A host record missing for a
   * moment (a restart, an etcd outage, a leader that started before the
   * hosts registered again) must not end /run: an old-layout host elected
   * leader later would take every job missing from /run for unplaced and
   * place it again.
   */
  private keepRun(snap: ClusterSnapshot): boolean {
    const now = Date.now();
    if (snap.legacy || (this.legacySeenAt === undefined && snap.run.size > 0)) this.legacySeenAt = now;
    return this.legacySeenAt !== undefined && now - this.legacySeenAt < (this.options.legacyRunGraceMs ?? LEGACY_RUN_GRACE_MS);
  }

  /**
   * Keeps /run, the old layout's index, for hosts that still read it: while
   * one lives (a rolling upgrade), every placement's /run entry is made to
   * name its host and entries of jobs placed nowhere go; once none lives, /run
   * is deleted in one operation. Unfenced by compares beyond the pass's own:
   * /run decides nothing for this code.
   */
  private runIndexChanges(snap: ClusterSnapshot, touched: Set<string>, keepRun: boolean): Change[] {
    const c = this.client;
    if (!keepRun) return snap.run.size > 0 ? [{ compares: [], ops: [c.delete().prefix(PREFIX.run)] }] : [];
    const out: Change[] = [];
    for (const [path, p] of snap.placed) {
      if (!touched.has(path) && snap.run.get(path) !== p.host) out.push({ compares: [], ops: [c.put(runKey(p.job)).value(p.host)] });
    }
    for (const path of snap.run.keys()) {
      if (touched.has(path) || snap.placed.has(path)) continue;
      const job = parseJobPath(path);
      if (job) out.push({ compares: [], ops: [c.delete().key(runKey(job))] });
    }
    return out;
  }

  /**
   * Starts a pass's epoch: rewrites DISPATCH_EPOCH_KEY, fenced on the
   * leadership, and returns its new mod revision (null: not the leader).
   */
  private async newEpoch(leadership: Leadership): Promise<string | null> {
    const res = await this.client
      .if(LEADER_KEY, 'Create', '==', leadership.createRevision)
      .then(this.client.put(DISPATCH_EPOCH_KEY).value(`${leadership.createRevision}:${this.passCount}`))
      .else(this.client.get(LEADER_KEY))
      .commit();
    if (res.succeeded) return res.header.revision;
    this.refused(leadership, 'the pass\'s epoch', res.responses[0]?.response_range?.kvs[0]);
    return null;
  }

  /** A write the leader fence refused: counted, logged with who leads now, and reported (the leader steps down). */
  private refused(leadership: Leadership, what: string, leaderKv: IKeyValue | undefined): void {
    const now = leaderKv ? `${leaderKv.value.toString()} leads since revision ${leaderKv.create_revision}` : 'nobody leads';
    this.fencedWrites++;
    this.options.log?.(`dispatch: write of ${what} refused by the leader fence (our leadership is revision ${leadership.createRevision}; ${now}); stepping down`);
    this.options.onFenced?.(leadership);
  }

  /**
   * Commits one batch. A failed commit is either a stale snapshot (another
   * pass follows) or the fence: `/leader` is not ours any more. The else
   * branch reads `/leader`, so the fence is told apart exactly, counted,
   * logged and reported (the leader steps down at once instead of retrying
   * until its lease keepalive notices).
   */
  private async commit(leadership: Leadership, epoch: string, batch: Change[]): Promise<boolean> {
    let txn = this.client.if(LEADER_KEY, 'Create', '==', leadership.createRevision).and(DISPATCH_EPOCH_KEY, 'Mod', '==', epoch);
    for (const change of batch) for (const [key, col, cmp, value] of change.compares) txn = txn.and(key, col, cmp, value);
    const res = await txn
      .then(...batch.flatMap((ch) => ch.ops))
      .else(this.client.get(LEADER_KEY))
      .commit();
    if (res.succeeded) return true;
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (kv?.create_revision !== leadership.createRevision) this.refused(leadership, `${batch.length} change(s)`, kv);
    return false;
  }
}

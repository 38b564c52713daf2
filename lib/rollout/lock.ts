/**
 * One change of a stack at a time. A push, rollback, scale, env change or
 * removal holds `/locks/<stack>` for its whole run, under a short lease of
 * its own: two of them at once would retire each other's jobs, and an API
 * process that dies mid-deploy frees the stack within the lease's TTL.
 * A second operation is refused at once with who holds the stack and since
 * when, rather than queued behind it.
 *
 * The lock is also a fence. Every write an operation makes while holding it
 * (its jobs in /proc, the switch of /stack and /domains, the retirement of
 * old jobs, a withdrawal) is a transaction that compares the lock key's
 * create revision with the one this operation got. An API process that was
 * paused or cut off past the lease's TTL, while another push took the
 * stack, can therefore write nothing more: its next write fails with
 * VIKING_E_STACK_LOCK_LOST, so it can never switch the stack under the
 * newer operation's feet. (Before, the compare was `Version > -1`: always
 * true.) The fence travels in the async context of the locked function
 * (AsyncLocalStorage), so every write helper under a lock is fenced without
 * each caller passing it on, and a new helper cannot forget it.
 *
 * We chose this over moving rollouts into a leader-side controller (as
 * Nomad's deployment watcher): the API host streams the push's progress and
 * owns the build; a fence gives the same safety (one writer per stack,
 * checked by etcd) without a second hand-off. What a dead API host leaves
 * (jobs of a release that never switched, or old jobs not yet retired after
 * a switch) is finished by the next operation of the stack as soon as it
 * takes the lock: see settleAbandoned.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Etcd3, IOperation } from 'etcd3';
import { VikingError } from '../errors.js';
import { PREFIX, jobFromKey, procStackPrefix, stackKey, stackLockKey } from '../store/keys.js';
import type { JobSpec, StackLock, StackRecord } from '../store/records.js';

export interface LockHolder {
  /** What runs, as a user reads it: "push", "rollback to v3", "scale web=3". */
  what: string;
  by: string;
  host: string;
}

/**
 * The lock's lease. An API host that dies (power off, SIGKILL) frees the
 * stack within this TTL plus etcd's lease check (≤ 0.5 s): the promise is
 * 10 s. A keepalive goes every TTL/3 (2 s), so a healthy API survives an
 * etcd leader change (1.5 s) without losing its push; an API cut off for
 * longer loses the lock and its push fails cleanly (fenced).
 */
export const LOCK_TTL_SECONDS = 6;

/** What fences the writes of one locked operation. */
export interface StackFence {
  stack: string;
  key: string;
  createRevision: string;
}

const held = new AsyncLocalStorage<StackFence>();

/** The fence of the locked operation this code runs in, if any. */
export function currentFence(): StackFence | undefined {
  return held.getStore();
}

type Compare = [string, 'Create' | 'Mod' | 'Version' | 'Value', '==' | '>' | '<' | '!=', string | number];

/**
 * Commits `ops` in one transaction that applies only while the current
 * operation still holds its stack's lock (and while `compares` hold).
 * Returns false when a compare of the caller failed; throws
 * VIKING_E_STACK_LOCK_LOST when the lock is what failed. Outside a lock
 * (tests, tools) the write is unfenced.
 */
export async function fencedWrite(client: Etcd3, ops: IOperation[], compares: Compare[] = []): Promise<boolean> {
  const fence = currentFence();
  let txn = fence ? client.if(fence.key, 'Create', '==', fence.createRevision) : client.if(PREFIX.proc, 'Version', '>', -1);
  for (const [key, col, cmp, value] of compares) txn = txn.and(key, col, cmp, value);
  const res = await txn.then(...ops).commit();
  if (res.succeeded) return true;
  await assertLockHeld(client);
  return false;
}

/** Deletes what `op` names in a transaction fenced on the current lock; how many keys went. */
export async function fencedDelete(client: Etcd3, op: IOperation): Promise<number> {
  const fence = currentFence();
  const txn = fence ? client.if(fence.key, 'Create', '==', fence.createRevision) : client.if(PREFIX.proc, 'Version', '>', -1);
  const res = await txn.then(op).commit();
  if (!res.succeeded) {
    await assertLockHeld(client);
    return 0;
  }
  return Number(res.responses[0]?.response_delete_range?.deleted ?? 0);
}

/** Starts a transaction fenced on the current lock, for writers that build their own (the switch). */
export function fencedIf(client: Etcd3, key: string, col: Compare[1], cmp: Compare[2], value: Compare[3]) {
  const fence = currentFence();
  return fence ? client.if(fence.key, 'Create', '==', fence.createRevision).and(key, col, cmp, value) : client.if(key, col, cmp, value);
}

/** Throws VIKING_E_STACK_LOCK_LOST when the current operation no longer holds its stack's lock. */
export async function assertLockHeld(client: Etcd3): Promise<void> {
  const fence = currentFence();
  if (!fence) return;
  const kv = (await client.get(fence.key).exec()).kvs[0];
  if (kv?.create_revision === fence.createRevision) return;
  throw new VikingError(
    'VIKING_E_STACK_LOCK_LOST',
    `this API host lost the lock of ${fence.stack} (it was cut off from etcd or paused for more than ${LOCK_TTL_SECONDS} s)` +
      `${kv ? ' and another change of the stack holds it now' : ''}; nothing more of this change was written: check \`viking ps\` and try again`,
  );
}

/** Runs `fn` holding the stack's lock; VIKING_E_STACK_BUSY when someone else holds it. */
export async function withStackLock<T>(client: Etcd3, stack: string, holder: LockHolder, fn: (fence: StackFence & { settled: SettledRollout }) => Promise<T>): Promise<T> {
  const lease = client.lease(LOCK_TTL_SECONDS, { autoKeepAlive: true });
  // A lost lease means the lock may be taken over: every later write of fn is refused by the fence.
  lease.on('lost', () => {});
  const key = stackLockKey(stack);
  const record: StackLock = { stack, ...holder, since: new Date().toISOString() };
  try {
    const leaseId = await lease.grant();
    const res = await client
      .if(key, 'Version', '==', 0)
      .then(client.put(key).value(JSON.stringify(record)).lease(leaseId))
      .else(client.get(key))
      .commit();
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range?.kvs[0];
      const other = kv ? (JSON.parse(kv.value.toString()) as StackLock) : undefined;
      throw new VikingError(
        'VIKING_E_STACK_BUSY',
        other
          ? `${stack} is busy: ${other.what} by ${other.by} on ${other.host} since ${other.since}; try again when it is done`
          : `${stack} is busy with another change; try again when it is done`,
        other ? { lock: other } : undefined,
      );
    }
    const fence: StackFence = { stack, key, createRevision: res.header.revision };
    return await held.run(fence, async () => {
      const settled = await settleAbandoned(client, stack);
      return fn({ ...fence, settled });
    });
  } finally {
    // Revoking the lease deletes the lock key with it.
    await lease.revoke().catch(() => {});
  }
}

/** What settleAbandoned found and finished. */
export interface SettledRollout {
  /** Jobs deleted from /proc: of releases that never took traffic, or older releases a switch had not retired yet. */
  removed: number;
  /** The releases they belonged to. */
  tags: string[];
}

/**
 * Finishes what an operation that died while holding the lock left (its API
 * host powered off between the build and the switch, or between the switch
 * and the retirement). Holding the lock now, nothing else writes the
 * stack's jobs, so every job of a release other than the current one is
 * left over: a release that never switched (the old release kept serving;
 * the new one is withdrawn, as a failed rollout would have), or an older
 * one not yet retired (the switch happened; its retirement is completed).
 * Services keep their jobs, as retireOldJobs leaves them.
 */
export async function settleAbandoned(client: Etcd3, stack: string): Promise<SettledRollout> {
  const [stackText, proc] = await Promise.all([client.get(stackKey(stack)).string(), client.getAll().prefix(procStackPrefix(stack)).strings()]);
  const current = stackText ? (JSON.parse(stackText) as StackRecord).current : null;
  const stale: string[] = [];
  const tags = new Set<string>();
  for (const [key, text] of Object.entries(proc)) {
    const job = jobFromKey(key, PREFIX.proc);
    if (!job || job.tag === current) continue;
    let spec: Partial<JobSpec> = {};
    try {
      spec = JSON.parse(text) as JobSpec;
    } catch {
      // A record that is not JSON belongs to nothing that can run: settle it too.
    }
    if (spec.service) continue;
    stale.push(key);
    tags.add(job.tag);
  }
  for (let i = 0; i < stale.length; i += 100) {
    await fencedWrite(client, stale.slice(i, i + 100).map((k) => client.delete().key(k)));
  }
  return { removed: stale.length, tags: [...tags].sort() };
}

/** Who holds the stack right now, if anyone. */
export async function readStackLock(client: Etcd3, stack: string): Promise<StackLock | undefined> {
  const text = await client.get(stackLockKey(stack)).string();
  return text ? (JSON.parse(text) as StackLock) : undefined;
}

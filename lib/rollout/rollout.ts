/**
 * The one way a release goes live, shared by push, rollback and env changes:
 *
 *   write the release's jobs to /proc -> wait until every one is healthy ->
 *   claim its domains -> switch /stack current -> retire older jobs.
 *
 * Until the switch the old release keeps all traffic. If a job fails or the
 * wait times out, the new jobs are withdrawn (dispatch removes their
 * containers) and the old release is untouched. `viking scale` uses the
 * first half (write, wait, withdraw on failure) without a switch.
 *
 * Every write here is fenced on the stack's lock (lib/rollout/lock.ts): an
 * API host that lost the lock (paused, cut off) writes nothing more and
 * fails with VIKING_E_STACK_LOCK_LOST. If it died instead, the next
 * operation of the stack settles what it left when it takes the lock.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError, toVikingError } from '../errors.js';
import { PREFIX, domainKey, jobFromKey, procKey, procStackPrefix, procTagPrefix, stackKey } from '../store/keys.js';
import type { DomainRecord, JobSpec, ReleaseRecord, ScaleOverride, StackRecord } from '../store/records.js';
import { emptyStack, switched, type SwitchExtra } from './stacks.js';
import { waitForJobs } from './wait.js';
import { hasKey } from '../store/dict.js';
import { assertLockHeld, fencedIf, fencedWrite } from './lock.js';
import { attachSecrets } from '../secrets/store.js';
import type { RolloutStage } from '../api/wire.js';

export type { RolloutStage };

export interface RolloutEvent {
  stage: RolloutStage;
  message: string;
}

export type Emit = (stage: RolloutStage, message: string) => void;

export interface RolloutPlan {
  stack: string;
  /** The release to make current; its domains and websites are claimed at the switch. */
  release: ReleaseRecord;
  /** Jobs to start (services already running are left out by the caller). */
  jobs: JobSpec[];
  /** Every node the release declares: older jobs of nodes not declared any more are retired too. */
  declared: string[];
  comment?: string;
  /** Stack env overrides to record with the switch. */
  env?: Record<string, string>;
  /** Scale overrides to record with the switch. */
  scale?: Record<string, ScaleOverride>;
}

export interface RolloutOptions {
  timeoutMs?: number;
  emit?: Emit;
}

/**
 * Transactions of writeJobs in flight at once. etcd commits the proposals
 * that arrive together in one raft round and one fsync, so a few in flight
 * cost little more than one: 10,000 jobs went to /proc in 1.2-1.6 s one
 * transaction after another, and in well under half that with 8 in flight
 * (bench/schedule). Each batch is fenced on its own, as before; a release's
 * jobs never appeared in one transaction anyway.
 */
const WRITE_JOBS_IN_FLIGHT = 8;

/** Writes jobs to /proc, a hundred per transaction (fenced on the stack lock), several transactions in flight. */
export async function writeJobs(client: Etcd3, jobs: JobSpec[]): Promise<void> {
  // The stack's secrets go in sealed, as they are now: a secrets change is rolled out as a new release.
  await attachSecrets(client, jobs);
  const batches: JobSpec[][] = [];
  for (let i = 0; i < jobs.length; i += 100) batches.push(jobs.slice(i, i + 100));
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < batches.length) {
      const batch = batches[next++]!;
      try {
        await fencedWrite(client, batch.map((j) => client.put(procKey(j)).value(JSON.stringify(j))));
      } catch (err) {
        failed = true; // the stack lock is lost: the other lanes write no more
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_JOBS_IN_FLIGHT, batches.length) }, lane));
}

/** Deletes jobs from /proc, a hundred per transaction, fenced on the stack lock. */
export async function deleteJobs(client: Etcd3, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 100) {
    await fencedWrite(client, keys.slice(i, i + 100).map((k) => client.delete().key(k)));
  }
}

/** Withdraws every job of one release of the stack (a rollout that did not switch). */
export async function withdrawRelease(client: Etcd3, stack: string, tag: string): Promise<void> {
  await fencedWrite(client, [client.delete().prefix(procTagPrefix(stack, tag))]);
}

/** Writes jobs and waits until all are healthy; on failure deletes them again and rethrows. */
export async function deployJobs(client: Etcd3, jobs: JobSpec[], o: RolloutOptions & { withdraw: () => Promise<void> }): Promise<void> {
  await writeJobs(client, jobs);
  try {
    await waitForJobs(client, jobs, {
      timeoutMs: o.timeoutMs ?? 120_000,
      onChange: (job, what) => o.emit?.('deploy', `${job.node}/${job.instance}: ${what}`),
    });
  } catch (err) {
    await o.withdraw();
    throw toVikingError(err);
  }
}

/** Deletes a domain the stack no longer declares, unless another stack has it by now. */
async function releaseDomain(client: Etcd3, stack: string, domain: string): Promise<void> {
  const kv = (await client.get(domainKey(domain)).exec()).kvs[0];
  if (!kv || (JSON.parse(kv.value.toString()) as DomainRecord).stack !== stack) return;
  await fencedWrite(client, [client.delete().key(domainKey(domain))], [[domainKey(domain), 'Mod', '==', kv.mod_revision]]);
}

/**
 * Claims the release's domains and switches the stack to it in ONE etcd
 * transaction: a domain nobody has is created only if it still does not
 * exist, one the stack has only if unchanged since read, and the stack
 * record only if unchanged. So of two pushes that claim one domain at the
 * same time exactly one wins; the other gets VIKING_E_DOMAIN_TAKEN and
 * nothing of it switched. Domains the stack drops are deleted after the
 * switch, each only if still unchanged (so the transaction stays within
 * etcd's 128 operations: at most MAX_DOMAINS_PER_STACK + 1).
 */
export async function claimAndSwitch(client: Etcd3, stack: string, release: ReleaseRecord, extra: SwitchExtra): Promise<StackRecord> {
  const wanted = new Map<string, DomainRecord>();
  for (const [node, list] of Object.entries(extra.domains)) {
    for (const d of list) wanted.set(d, { stack, node, kind: hasKey(extra.websites, node) ? 'website' : 'container' });
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const stackKv = (await client.get(stackKey(stack)).exec()).kvs[0];
    const current = stackKv ? (JSON.parse(stackKv.value.toString()) as StackRecord) : emptyStack(stack);
    const dropped = Object.values(current.domains ?? {}).flat().filter((d) => !wanted.has(d));
    const txn = stackKv ? fencedIf(client, stackKey(stack), 'Mod', '==', stackKv.mod_revision) : fencedIf(client, stackKey(stack), 'Version', '==', 0);
    const ops: Array<ReturnType<Etcd3['put']>> = [];
    for (const [d, rec] of wanted) {
      const kv = (await client.get(domainKey(d)).exec()).kvs[0];
      const owner = kv ? (JSON.parse(kv.value.toString()) as DomainRecord) : undefined;
      if (owner && owner.stack !== stack) {
        throw new VikingError('VIKING_E_DOMAIN_TAKEN', `domain ${d} is already served by ${owner.stack}/${owner.node}; remove it there first`);
      }
      if (kv) txn.and(domainKey(d), 'Mod', '==', kv.mod_revision);
      else txn.and(domainKey(d), 'Version', '==', 0);
      ops.push(client.put(domainKey(d)).value(JSON.stringify(rec)));
    }
    const next = switched(current, release, extra);
    const res = await txn.then(client.put(stackKey(stack)).value(JSON.stringify(next)), ...ops).commit();
    if (!res.succeeded) {
      // A stack or domain that changed is retried; a lost lock is not.
      await assertLockHeld(client);
      continue;
    }
    for (const d of dropped) await releaseDomain(client, stack, d);
    return next;
  }
  throw new VikingError('VIKING_E_INTERNAL', `stack ${stack} or its domains are changing too fast to switch; try again`);
}

/**
 * Deletes the /proc jobs of releases other than `tag` for the nodes this
 * release started, and for nodes it no longer declares. Declared nodes it did
 * not start (services already running) keep their jobs.
 */
export async function retireOldJobs(client: Etcd3, stack: string, tag: string, started: Set<string>, declared: Set<string>): Promise<number> {
  const keys = await client.getAll().prefix(procStackPrefix(stack)).keys();
  const retired: string[] = [];
  for (const key of keys) {
    const job = jobFromKey(key, PREFIX.proc);
    if (!job || job.tag === tag) continue;
    if (declared.has(job.node) && !started.has(job.node)) continue;
    retired.push(key);
  }
  await deleteJobs(client, retired);
  return retired.length;
}

/** Nodes of the stack that have jobs under /proc, in any release. */
export async function nodesWithJobs(client: Etcd3, stack: string): Promise<Set<string>> {
  const keys = await client.getAll().prefix(procStackPrefix(stack)).keys();
  const nodes = new Set<string>();
  for (const key of keys) {
    const job = jobFromKey(key, PREFIX.proc);
    if (job) nodes.add(job.node);
  }
  return nodes;
}

/** Takes a release live: deploy, wait healthy, switch, retire the old. */
export async function rollOut(client: Etcd3, plan: RolloutPlan, o: RolloutOptions = {}): Promise<{ retired: number }> {
  const emit: Emit = o.emit ?? (() => {});
  const { release, stack } = plan;
  emit('schedule', `${plan.jobs.length} container(s) scheduled`);
  await deployJobs(client, plan.jobs, {
    ...o,
    emit,
    // Dispatch removes the withdrawn jobs' containers; the old release never stopped.
    withdraw: () => withdrawRelease(client, stack, release.tag),
  });
  const domains = release.domains ?? {};
  const websites = release.websites ?? {};
  try {
    await claimAndSwitch(client, stack, release, {
      domains,
      websites,
      ...(plan.comment !== undefined ? { comment: plan.comment } : {}),
      ...(plan.env !== undefined ? { env: plan.env } : {}),
      ...(plan.scale !== undefined ? { scale: plan.scale } : {}),
    });
  } catch (err) {
    // Lost a domain to another stack (or could not switch): the old release keeps serving.
    // With the lock lost the withdrawal is refused too; the lock's next holder settles it.
    await withdrawRelease(client, stack, release.tag).catch(() => {});
    throw toVikingError(err);
  }
  emit('switch', `${stack} now serves release ${release.tag}`);
  const started = new Set(plan.jobs.map((j) => j.node));
  const retired = await retireOldJobs(client, stack, release.tag, started, new Set(plan.declared));
  if (retired > 0) emit('cleanup', `${retired} container(s) of older releases retired`);
  return { retired };
}

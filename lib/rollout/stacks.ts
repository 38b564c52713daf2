/**
 * The stack record (`/stack/<stack>`): release numbers, the release taking
 * traffic, and the history. Every change is a compare-and-swap on the key's
 * mod revision, so two pushes of one stack never get the same release.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { imageKey, stackKey } from '../store/keys.js';
import type { ReleaseRecord, StackRecord } from '../store/records.js';
import { assertLockHeld, fencedIf } from './lock.js';

/** Keep this many releases in the history (rollback targets). */
export const HISTORY = 20;

/** A new stack's record; its incarnation id is made here, once, and goes with `viking rm`. */
export function emptyStack(name: string): StackRecord {
  return { name, current: null, lastRelease: 0, releases: [], domains: {}, websites: {}, incarnation: randomBytes(8).toString('hex') };
}

/** Applies `change` to the stack record atomically, retrying on concurrent writes. */
export async function updateStack(client: Etcd3, name: string, change: (s: StackRecord) => StackRecord): Promise<StackRecord> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const res = await client.get(stackKey(name)).exec();
    const kv = res.kvs[0];
    const current = kv ? (JSON.parse(kv.value.toString()) as StackRecord) : emptyStack(name);
    const next = change(structuredClone(current));
    // Fenced on the stack lock when called under one (lib/rollout/lock.ts).
    const txn = kv ? fencedIf(client, stackKey(name), 'Mod', '==', kv.mod_revision) : fencedIf(client, stackKey(name), 'Version', '==', 0);
    const done = await txn.then(client.put(stackKey(name)).value(JSON.stringify(next))).commit();
    if (done.succeeded) return next;
    await assertLockHeld(client);
  }
  throw new VikingError('VIKING_E_INTERNAL', `stack ${name} is changing too fast to update; try again`);
}

/**
 * Hands out the next release number: v1, v2, … never reused, even for failed
 * pushes. Also says the stack's incarnation (undefined for a stack made
 * before incarnations: its volumes keep their old names).
 */
export async function allocateRelease(client: Etcd3, name: string): Promise<{ tag: string; number: number; incarnation?: string }> {
  const s = await updateStack(client, name, (s) => ({ ...s, lastRelease: s.lastRelease + 1 }));
  return { tag: `v${s.lastRelease}`, number: s.lastRelease, ...(s.incarnation !== undefined ? { incarnation: s.incarnation } : {}) };
}

export async function readStack(client: Etcd3, name: string): Promise<StackRecord | undefined> {
  const text = await client.get(stackKey(name)).string();
  return text ? (JSON.parse(text) as StackRecord) : undefined;
}

/** The Docker reference of an image of another stack's current release. */
export async function currentImageOf(client: Etcd3, stack: string, image: string): Promise<string | undefined> {
  const s = await readStack(client, stack);
  if (!s?.current) return undefined;
  return (await client.get(imageKey(stack, s.current, image)).string()) ?? undefined;
}

export type SwitchExtra = Pick<StackRecord, 'domains' | 'websites'> & Pick<Partial<StackRecord>, 'comment' | 'env' | 'scale'>;

/** The stack record once `release` takes traffic: current, history, domains and what the release changes. */
export function switched(s: StackRecord, release: ReleaseRecord, extra: SwitchExtra): StackRecord {
  const next: StackRecord = {
    ...s,
    current: release.tag,
    releases: [...s.releases.filter((r) => r.tag !== release.tag), release].slice(-HISTORY),
    domains: extra.domains,
    websites: extra.websites,
  };
  // HSTS follows the release taking traffic, so a rollback brings back what that release declared.
  if (release.hsts !== undefined) next.hsts = release.hsts;
  else delete next.hsts;
  if (release.accessLog !== undefined) next.accessLog = release.accessLog;
  else delete next.accessLog;
  if (extra.comment !== undefined) next.comment = extra.comment;
  if (extra.env !== undefined) next.env = extra.env;
  if (extra.scale !== undefined) next.scale = extra.scale;
  return next;
}

/** Makes a healthy release the one taking traffic and records it in the history. */
export async function switchRelease(client: Etcd3, name: string, release: ReleaseRecord, extra: SwitchExtra): Promise<StackRecord> {
  return updateStack(client, name, (s) => switched(s, release, extra));
}

/**
 * Releases made without a push: `viking rollback` and `viking env`.
 *
 * Both derive a new release (a new tag, so history stays linear and tags
 * never repeat) from one already in the history: the same images and node
 * specs, with the stack's env overrides laid over them, deployed through the
 * same rollout as a push. The old release serves until the new one is
 * healthy; if it fails, nothing changed (env overrides included).
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { imageKey } from '../store/keys.js';
import type { JobSpec, ReleaseRecord, StackRecord } from '../store/records.js';
import { effectiveScale, jobsFromTemplate } from './jobs.js';
import { withStackLock } from './lock.js';
import { nodesWithJobs, rollOut, type Emit } from './rollout.js';
import { reserveDomains } from './domain-claims.js';
import { allocateRelease, readStack, updateStack } from './stacks.js';
import { dict, own } from '../store/dict.js';
import { RESERVED_ENV_MESSAGE } from '../vikingfile/values.js';

export interface ReleaseOpContext {
  client: Etcd3;
  by: string;
  hostName: string;
  timeoutMs?: number;
  emit?: Emit;
}

export interface DerivedRelease {
  stack: string;
  tag: string;
  from: string;
  retired: number;
}

/** Env names a user may set: what a shell accepts, minus what viking sets itself. */
export function validateEnvName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
    throw new VikingError('VIKING_E_BAD_REQUEST', `'${name}' is not an environment variable name (letters, digits, _; not starting with a digit)`);
  }
  if (name === '__proto__') throw new VikingError('VIKING_E_BAD_REQUEST', RESERVED_ENV_MESSAGE);
  if (name.startsWith('VIKING_') || name === 'PORT') {
    throw new VikingError('VIKING_E_BAD_REQUEST', `${name} is set by viking for every container and cannot be overridden`);
  }
}

export async function requireStack(client: Etcd3, name: string): Promise<StackRecord> {
  const stack = await readStack(client, name);
  if (!stack) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${name}; viking stacks lists them`);
  return stack;
}

/** The release a rollback goes to: the named one, or the one before the current. */
export function rollbackTarget(stack: StackRecord, named?: string): ReleaseRecord {
  if (named !== undefined) {
    const r = stack.releases.find((x) => x.tag === named);
    if (!r) {
      throw new VikingError('VIKING_E_NOT_FOUND', `${stack.name} has no release ${named} in its history (${stack.releases.map((x) => x.tag).join(', ') || 'none'}); viking releases ${stack.name} lists them`);
    }
    if (r.tag === stack.current) throw new VikingError('VIKING_E_NO_PREVIOUS_RELEASE', `${stack.name} already serves ${named}`);
    return r;
  }
  const i = stack.releases.findIndex((x) => x.tag === stack.current);
  const prev = i > 0 ? stack.releases[i - 1] : undefined;
  if (!prev) {
    throw new VikingError('VIKING_E_NO_PREVIOUS_RELEASE', `${stack.name} has no release before ${stack.current ?? 'the first one'} to roll back to`);
  }
  return prev;
}

/** Deploys `from` again as a new release of the stack, with `env` as the stack's overrides (also used by lib/secrets/store.ts). */
export async function redeploy(
  ctx: ReleaseOpContext,
  stack: StackRecord,
  from: ReleaseRecord,
  kind: 'rollback' | 'env' | 'secrets',
  env: Record<string, string>,
): Promise<DerivedRelease> {
  const emit: Emit = ctx.emit ?? (() => {});
  if (!from.nodes) {
    throw new VikingError('VIKING_E_RELEASE_NOT_REDEPLOYABLE', `release ${from.tag} of ${stack.name} does not record its node specs; push the stack again`);
  }
  // Refused here, before a release number, when another stack has or is taking one of its domains.
  const endClaims = await reserveDomains(ctx.client, stack.name, from.domains ?? {});
  try {
    const { tag, number } = await allocateRelease(ctx.client, stack.name);
    emit('release', `release ${tag} of ${stack.name}: ${kind === 'rollback' ? `rollback to ${from.tag}` : `${kind === 'env' ? 'env' : 'secrets'} change on ${from.tag}`}`);
    for (const [image, ref] of Object.entries(from.images)) await ctx.client.put(imageKey(stack.name, tag, image)).value(ref);

    // A rollback leaves running services alone, as a push does; an env change restarts them too.
    const running = kind === 'rollback' ? await nodesWithJobs(ctx.client, stack.name) : new Set<string>();
    const jobs: JobSpec[] = [];
    for (const t of Object.values(from.nodes)) {
      if (t.service && running.has(t.node)) continue;
      jobs.push(...jobsFromTemplate(t, stack.name, tag, effectiveScale(t, own(stack.scale, t.node), true), env));
    }
    const release: ReleaseRecord = {
      tag,
      number,
      at: new Date().toISOString(),
      by: ctx.by,
      images: from.images,
      source: from.source,
      builtOn: from.builtOn,
      origin: { kind, from: from.tag },
      nodes: from.nodes,
      domains: from.domains ?? {},
      websites: from.websites ?? {},
      env,
    };
    const declared = new Set([...Object.keys(from.nodes), ...Object.keys(from.domains ?? {}), ...Object.keys(from.websites ?? {})]);
    const { retired } = await rollOut(
      ctx.client,
      { stack: stack.name, release, jobs, declared: [...declared], env, ...(stack.comment !== undefined ? { comment: stack.comment } : {}) },
      { timeoutMs: ctx.timeoutMs ?? 120_000, emit },
    );
    emit('done', `${stack.name} ${tag} is live (${kind === 'rollback' ? `the code of ${from.tag}` : kind === 'env' ? 'new environment' : 'new secrets'})`);
    return { stack: stack.name, tag, from: from.tag, retired };
  } finally {
    await endClaims();
  }
}

/** `viking rollback STACK [RELEASE]`. */
export async function rollbackStack(ctx: ReleaseOpContext, name: string, release?: string): Promise<DerivedRelease> {
  const stack = await requireStack(ctx.client, name);
  const target = rollbackTarget(stack, release);
  return withStackLock(ctx.client, name, { what: `rollback to ${target.tag}`, by: ctx.by, host: ctx.hostName }, async () => {
    // Read again under the lock: a push may have finished since.
    const fresh = await requireStack(ctx.client, name);
    return redeploy(ctx, fresh, rollbackTarget(fresh, release ?? target.tag), 'rollback', fresh.env ?? {});
  });
}

export interface EnvChange {
  set?: Record<string, string>;
  unset?: string[];
}

export interface EnvResult {
  stack: string;
  env: Record<string, string>;
  changed: boolean;
  /** The release that now runs with it, when containers were restarted. */
  release?: DerivedRelease;
}

/** `viking env STACK set K=V | unset K`: persists the overrides and rolls every container node onto them. */
export async function changeEnv(ctx: ReleaseOpContext, name: string, change: EnvChange): Promise<EnvResult> {
  for (const k of [...Object.keys(change.set ?? {}), ...(change.unset ?? [])]) validateEnvName(k);
  const what = [...Object.keys(change.set ?? {}).map((k) => `set ${k}`), ...(change.unset ?? []).map((k) => `unset ${k}`)].join(', ');
  await requireStack(ctx.client, name);
  return withStackLock(ctx.client, name, { what: `env ${what}`, by: ctx.by, host: ctx.hostName }, async () => {
    const stack = await requireStack(ctx.client, name);
    const before = stack.env ?? {};
    const env = dict([...Object.entries(before), ...Object.entries(change.set ?? {})]);
    for (const k of change.unset ?? []) delete env[k];
    const changed = JSON.stringify(Object.entries(env).sort()) !== JSON.stringify(Object.entries(before).sort());
    if (!changed) return { stack: name, env, changed: false };
    const current = stack.releases.find((r) => r.tag === stack.current);
    if (!current) {
      // Nothing runs yet: the next push picks the overrides up.
      await updateStack(ctx.client, name, (s) => ({ ...s, env }));
      ctx.emit?.('done', `${name} has no live release; the next push uses the new environment`);
      return { stack: name, env, changed: true };
    }
    const release = await redeploy(ctx, stack, current, 'env', env);
    return { stack: name, env, changed: true, release };
  });
}

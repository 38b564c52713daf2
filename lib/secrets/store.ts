/**
 * The stack's secrets in etcd (`/secrets/<stack>`, sealed values only) and
 * the two ways they reach a container: laid into every job when it is
 * written to /proc (writeJobs, still sealed), and opened by the host that
 * starts the container, into its env. `viking secrets set/unset` changes the
 * record and rolls the stack onto it as a new release, as `viking env` does.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readJSON } from '../store/client.js';
import { secretsKey } from '../store/keys.js';
import type { JobSpec, SealedSecret, SecretsRecord } from '../store/records.js';
import { fencedWrite, withStackLock } from '../rollout/lock.js';
import { redeploy, requireStack, validateEnvName, type DerivedRelease, type ReleaseOpContext } from '../rollout/releases.js';
import { hostSecretsKey } from './key-file.js';
import { sealSecret } from './seal.js';
export { openJobSecrets } from './open.js';

/** Most secrets per stack, and the longest value: an env var, not a file store. */
export const MAX_SECRETS = 100;
export const MAX_SECRET_BYTES = 64 * 1024;

export async function readSecrets(client: Etcd3, stack: string): Promise<SecretsRecord | undefined> {
  const r = await readJSON<SecretsRecord>(client, secretsKey(stack));
  return r && Array.isArray(r.secrets) ? r : undefined;
}

/** Lays the current sealed secrets of each job's stack into the jobs (in place); jobs of stacks without secrets get none. */
export async function attachSecrets(client: Etcd3, jobs: JobSpec[]): Promise<void> {
  const byStack = new Map<string, SealedSecret[] | undefined>();
  for (const stack of new Set(jobs.map((j) => j.stack))) byStack.set(stack, (await readSecrets(client, stack))?.secrets);
  for (const job of jobs) {
    const sealed = byStack.get(job.stack);
    if (sealed && sealed.length > 0) job.secrets = sealed;
    else delete job.secrets;
  }
}

export interface SecretsChange {
  set?: Record<string, string>;
  unset?: string[];
}

export interface SecretsResult {
  stack: string;
  /** Names only, sorted. */
  names: string[];
  changed: boolean;
  release?: DerivedRelease;
}

/** Applies a change to the sealed list: new values sealed, others kept byte for byte (so nothing restarts for them). */
export function changedSecrets(stack: string, before: SealedSecret[], change: SecretsChange, seal: (name: string, value: string) => SealedSecret): SealedSecret[] {
  const byName = new Map(before.map((s) => [s.name, s]));
  for (const name of change.unset ?? []) byName.delete(name);
  for (const [name, value] of Object.entries(change.set ?? {})) byName.set(name, seal(name, value));
  if (byName.size > MAX_SECRETS) throw new VikingError('VIKING_E_BAD_REQUEST', `${stack} would have ${byName.size} secrets; at most ${MAX_SECRETS} per stack`);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** `viking secrets set|unset`: seals, stores, and rolls the live release onto the new secrets. */
export async function changeSecrets(ctx: ReleaseOpContext, name: string, change: SecretsChange): Promise<SecretsResult> {
  for (const k of [...Object.keys(change.set ?? {}), ...(change.unset ?? [])]) validateEnvName(k);
  for (const [k, v] of Object.entries(change.set ?? {})) {
    if (Buffer.byteLength(v) > MAX_SECRET_BYTES) throw new VikingError('VIKING_E_BAD_REQUEST', `secret ${k} is longer than ${MAX_SECRET_BYTES} bytes`);
  }
  const key = hostSecretsKey();
  await requireStack(ctx.client, name);
  const what = [...Object.keys(change.set ?? {}).map((k) => `set ${k}`), ...(change.unset ?? []).map((k) => `unset ${k}`)].join(', ');
  return withStackLock(ctx.client, name, { what: `secrets ${what}`, by: ctx.by, host: ctx.hostName }, async () => {
    const stack = await requireStack(ctx.client, name);
    const old = await readSecrets(ctx.client, name);
    const before = old?.secrets ?? [];
    const after = changedSecrets(name, before, change, (n, v) => sealSecret(key, name, n, v));
    const names = after.map((s) => s.name);
    if (JSON.stringify(after) === JSON.stringify(before)) return { stack: name, names, changed: false };
    const record: SecretsRecord = { stack: name, secrets: after, updatedAt: new Date().toISOString() };
    await fencedWrite(ctx.client, [ctx.client.put(secretsKey(name)).value(JSON.stringify(record))]);
    const current = stack.releases.find((r) => r.tag === stack.current);
    if (!current) {
      ctx.emit?.('done', `${name} has no live release; the next push uses the new secrets`);
      return { stack: name, names, changed: true };
    }
    try {
      const release = await redeploy(ctx, stack, current, 'secrets', stack.env ?? {});
      return { stack: name, names, changed: true, release };
    } catch (err) {
      // The old release keeps serving with the old secrets: keep etcd saying so.
      const restore = old ? ctx.client.put(secretsKey(name)).value(JSON.stringify(old)) : ctx.client.delete().key(secretsKey(name));
      await fencedWrite(ctx.client, [restore]).catch(() => {});
      throw err;
    }
  });
}

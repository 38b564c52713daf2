/**
 * Opening a job's sealed secrets into env, on the host that starts its
 * container (the slave, the cron runner). Kept apart from store.ts so the
 * slave imports nothing of the scheduling code.
 */
import type { JobSpec } from '../store/records.js';
import { hostSecretsKey } from './key-file.js';
import { openSecret } from './seal.js';

/** The env a container gets from its job's secrets, opened with this host's key (throws when it has none). */
export function openJobSecrets(spec: Pick<JobSpec, 'stack' | 'secrets'>): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!spec.secrets?.length) return out;
  const key = hostSecretsKey();
  for (const s of spec.secrets) out[s.name] = openSecret(key, spec.stack, s);
  return out;
}


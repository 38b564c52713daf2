/**
 * Who may read secret values back (`viking secrets ls --reveal`): the one
 * place that decides it. Only a token holding `secrets:reveal`, which only
 * admins have (lib/auth/roles.ts); a deployer may set and unset secrets but
 * never read them, a reader sees names only.
 */
import type { Access } from '../auth/roles.js';

export function mayRevealSecrets(access: Access | undefined): boolean {
  return access !== undefined && access.refusal('secrets:reveal') === undefined;
}

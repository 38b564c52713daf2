/**
 * Who may read secret values back (`viking secrets ls --reveal`). The one
 * place that decides it: today every token is an admin token, so every
 * token may; the roles work (issue 14) tightens this function to admin
 * tokens only, and nothing else has to change.
 */
import type { TokenRecord } from '../store/records.js';

export function mayRevealSecrets(token: Omit<TokenRecord, 'hash'> | undefined): boolean {
  return token !== undefined;
}

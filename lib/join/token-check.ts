/**
 * A joining server shows a token of the cluster before it changes anything
 * in it: the operator's way of saying "this machine is one of ours".
 * It is a check of intent, not a lock: etcd itself has no authentication, so
 * whoever reaches its ports can do anything; the firewall (docs/security.md)
 * is what keeps strangers out.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { verifyToken } from '../auth/tokens.js';

export async function checkJoinToken(client: Etcd3, token: string | undefined, joinUrl: string): Promise<string> {
  if (!token) {
    throw new VikingError(
      'VIKING_E_JOIN_TOKEN_INVALID',
      `joining ${joinUrl} needs an API token of that cluster: --token T or VIKING_TOKEN (on the first server: viking token create NAME)`,
    );
  }
  const record = await verifyToken(client, token);
  if (!record) {
    throw new VikingError(
      'VIKING_E_JOIN_TOKEN_INVALID',
      `the token is not one of the cluster at ${joinUrl} (unknown, revoked or mistyped); make one on the first server with viking token create NAME`,
    );
  }
  return record.name;
}

/**
 * Telling "etcd cannot answer" apart from every other failure, so the API
 * answers 503 VIKING_E_ETCD_UNAVAILABLE with a message a user can act on
 * instead of a 500 with a gRPC status line.
 *
 * Without quorum etcd's calls end in one of a few ways: the call's deadline
 * passes (a member that waits for a leader, or one behind a cut network),
 * the member answers UNAVAILABLE ("etcdserver: request timed out", "no
 * leader"), the connection is refused (a member that is down; gRPC reports UNAVAILABLE), or every
 * member's circuit breaker is open after those.
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { isBrokenCircuitError } from 'cockatiel';
import { VikingError } from '../errors.js';

const SERVER_WITHOUT_QUORUM = /etcdserver: (request timed out|no leader|leader changed|too many requests)|context deadline exceeded/;

/** True when the error means etcd could not serve the call (no quorum, no member reachable). */
export function isEtcdUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err instanceof GRPCDeadlineExceededError ||
    err instanceof GRPCUnavailableError ||
    isBrokenCircuitError(err) ||
    SERVER_WITHOUT_QUORUM.test(err.message)
  );
}

/** The one line a user sees when etcd cannot answer: what it means, what still works, what to check. */
export function etcdUnavailableError(hostName: string, cause: unknown, etcdUrls?: string[]): VikingError {
  const detail = cause instanceof Error ? cause.message.split('\n')[0]!.slice(0, 200) : String(cause);
  return new VikingError(
    'VIKING_E_ETCD_UNAVAILABLE',
    `etcd has no quorum or cannot be reached from host ${hostName}: the cluster's state can be neither read nor changed until a majority of the etcd members answer; running containers and routes keep serving. Check the members: etcdctl --endpoints ${etcdUrls?.join(',') ?? 'URLS'} endpoint health`,
    { cause: detail },
  );
}

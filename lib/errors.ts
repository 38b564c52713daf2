/**
 * The one error registry of viking.
 *
 * Every failure a user can cause or see has a stable code (`VIKING_E_...`),
 * an HTTP status and a message that says what to do about it. The API turns
 * a VikingError into `{statusCode, code, message}`; the CLI prints the code
 * and exits non-zero. Codes are never renamed: scripts match on them.
 */

export interface ErrorDefinition {
  /** HTTP status the API answers with. */
  status: number;
  /** One line for the documentation: when this error happens. */
  summary: string;
}

export const ERROR_CODES = {
  VIKING_E_INTERNAL: { status: 500, summary: 'An unexpected failure inside viking; the message has the detail.' },
  VIKING_E_BAD_REQUEST: { status: 400, summary: 'The request is malformed: a missing or invalid parameter.' },
  VIKING_E_NOT_FOUND: { status: 404, summary: 'The stack, tag, node or host named does not exist.' },
  VIKING_E_INVALID_NAME: { status: 400, summary: 'A name is not made of lowercase letters, digits and dashes.' },
  VIKING_E_VIKINGFILE_INVALID: { status: 400, summary: 'The Vikingfile has errors; each names its line and column.' },
  VIKING_E_VIKINGFILE_MISSING: { status: 400, summary: 'No Vikingfile (Vikingfile, Vikingfile.yml or Vikingfile.yaml) at the root of the pushed directory.' },
  VIKING_E_UPLOAD_INVALID: { status: 400, summary: 'The uploaded source archive is not a valid tar or holds an unsafe entry.' },
  VIKING_E_UPLOAD_TOO_LARGE: { status: 413, summary: 'The uploaded source is larger than the configured cap.' },
  VIKING_E_UPLOAD_TOO_MANY_FILES: { status: 413, summary: 'The uploaded source holds more files, folders and links than the host accepts.' },
  VIKING_E_BUILD_FAILED: { status: 422, summary: 'An image of the build: section failed to build; the output of the failing step is attached.' },
  VIKING_E_IMAGE_MISSING: { status: 422, summary: 'An image a node needs is neither built by the stack nor present on the host.' },
  VIKING_E_DEPLOY_TIMEOUT: { status: 504, summary: 'The new release did not become healthy in time; the old release keeps serving.' },
  VIKING_E_UNHEALTHY: { status: 422, summary: 'A container of the new release failed its health check; the old release keeps serving.' },
  VIKING_E_DOMAIN_TAKEN: { status: 409, summary: 'A domain of the Vikingfile is already served by another stack.' },
  VIKING_E_CERT_INVALID: { status: 400, summary: 'The certificate file holds no readable PEM certificate, or the leaf is expired or not yet valid; the message says which.' },
  VIKING_E_CERT_KEY_INVALID: { status: 400, summary: 'The key file holds no readable, unencrypted PEM private key.' },
  VIKING_E_CERT_KEY_MISMATCH: { status: 400, summary: 'The private key does not belong to the certificate (the first one in the certificate file).' },
  VIKING_E_CERT_CHAIN_INVALID: { status: 400, summary: 'A certificate of the chain was not issued (signed) by the one after it; put the leaf first, then each issuer in order.' },
  VIKING_E_CERT_NAME_MISMATCH: { status: 400, summary: 'The certificate\'s names (subjectAltName) do not cover the domain it is added for; a wildcard covers one label only.' },
  VIKING_E_HOST_ALIVE: { status: 409, summary: 'A host that is still alive cannot be removed; drain and stop it first, or force.' },
  VIKING_E_REGISTRY_UNAVAILABLE: { status: 503, summary: 'The cluster registry cannot be started or reached.' },
  VIKING_E_ETCD_UNAVAILABLE: { status: 503, summary: 'The etcd cluster cannot be reached.' },
  VIKING_E_DOCKER_UNAVAILABLE: { status: 503, summary: 'The Docker Engine cannot be reached.' },
  VIKING_E_API_UNREACHABLE: { status: 503, summary: 'The CLI could not reach the viking API at the configured URL.' },
  VIKING_E_JOIN_TOKEN_INVALID: { status: 401, summary: 'viking up --join was given no token, or one the cluster does not know; nothing was changed in the cluster.' },
  VIKING_E_JOIN_FAILED: { status: 503, summary: 'A server could not join the etcd cluster (member add, start or promotion failed); the message says which step, and the next start resumes it.' },
  VIKING_E_JOIN_REFUSED: { status: 409, summary: 'A server cannot join as asked: its name or address is already taken by an etcd member, or its data dir belongs to another role.' },
  VIKING_E_JOIN_STATE_INVALID: { status: 500, summary: 'The join state file (join.json in the data dir) is unreadable; fix it or remove the data dir to join from scratch.' },
  VIKING_E_SECRETS_KEY_MISSING: { status: 503, summary: "This host has no copy of the cluster's secrets key (secrets.key in a master's data dir), or a different one: it can neither seal nor open secrets. Copy the file from a master (see README, Secrets)." },
  VIKING_E_SECRET_UNREADABLE: { status: 500, summary: 'A sealed secret in etcd does not open with the cluster key (altered, or sealed under another key); set it again.' },
  VIKING_E_CRON_NODE: { status: 409, summary: 'The operation does not apply to a cron node (one with schedule:): it has no replicas to scale.' },
  VIKING_E_NO_VOLUME: { status: 409, summary: 'The node declares no volume at that path (volume: in the Vikingfile); the message lists the paths it has.' },
  VIKING_E_VOLUME_NOT_PLACED: { status: 409, summary: 'The node\'s volume has no host yet (the node was never placed, so its volume was never made); push or scale it first.' },
  VIKING_E_VOLUME_BUSY: { status: 409, summary: 'A restore could not replace the volume: a container other than the node\'s replicas (a one-off viking run, a cron run) still uses it; wait for it to end.' },
  VIKING_E_NOT_RUNNING: { status: 409, summary: 'viking exec needs a running container, and the replica named has none on its host now (starting, crashed, or not placed); viking ps shows why.' },
  VIKING_E_DOCKER_CONFIG_INVALID: { status: 400, summary: 'The Docker daemon config (daemon.json) is not a JSON object, or its insecure-registries is not a list; it was left unchanged.' },
  VIKING_E_ETCD_BINARY_MISSING: { status: 500, summary: 'viking up needs the etcd binary (Debian package etcd-server) on the PATH.' },
  VIKING_E_UNAUTHORIZED: { status: 401, summary: 'The request carries no API token, or one that is unknown or revoked; nothing was changed.' },
  VIKING_E_STACK_BUSY: { status: 409, summary: 'Another push, rollback, scale, env change or removal of the stack is running; wait for it to finish.' },
  VIKING_E_STACK_LOCK_LOST: { status: 409, summary: 'The API host lost the stack lock during the change (it was cut off from etcd or paused for longer than the lock lease); nothing more of the change was written. Check viking ps and try again.' },
  VIKING_E_NO_PREVIOUS_RELEASE: { status: 409, summary: 'There is no earlier release to roll back to, or the one named is already serving.' },
  VIKING_E_RELEASE_NOT_REDEPLOYABLE: { status: 409, summary: 'The release lacks what a redeploy needs (it predates rollback support); push again instead.' },
  VIKING_E_REMOVE_TIMEOUT: { status: 504, summary: 'The stack\'s keys are gone but some of its containers were still stopping when the wait ended.' },
  VIKING_E_CONFIRM_REQUIRED: { status: 400, summary: 'A destructive command needs confirmation: answer the prompt, or pass --yes in scripts.' },
  VIKING_E_UNKNOWN_PROPERTY: { status: 400, summary: 'The JSON body or query names a property the route does not know; the message names it. Nothing is silently dropped.' },
  VIKING_E_BODY_TOO_LARGE: { status: 413, summary: 'The JSON body of the request is larger than the API accepts (1 MiB).' },
  VIKING_E_SCALE_LIMIT: { status: 400, summary: 'More replicas of a node than the cluster allows (the cluster setting max-scale, 100 by default).' },
  VIKING_E_VOLUME_CONFLICT: { status: 409, summary: 'A Docker volume of the name a node needs exists but belongs to another stack, node or incarnation; it is never reused.' },
  VIKING_E_REBALANCE_BUSY: { status: 409, summary: 'Another `viking hosts rebalance` is moving replicas; wait for it to finish.' },
  VIKING_E_MOVE_CONFLICT: { status: 409, summary: 'A replica being rebalanced changed meanwhile (moved, retired) or its target host went away or started draining; that move was skipped and the old copy keeps serving.' },
  VIKING_E_HOST_NAME_TAKEN: { status: 409, summary: 'Another live host of this cluster already has the name; give this host another --name, or stop the other one first.' },
  VIKING_E_FORBIDDEN: { status: 403, summary: 'The token is valid but its role or stack scope lacks the permission the request needs; the message names the permission (viking token list shows roles and scopes). Nothing was changed.' },
  VIKING_E_CSRF: { status: 403, summary: 'A request that changes something was made with the dashboard\'s session cookie but without the matching X-Viking-CSRF header (double-submit token); reload the dashboard, or call the API with Authorization: Bearer. Nothing was changed.' },
  VIKING_E_TOKEN_EXPIRED: { status: 401, summary: 'The API token has expired; an admin can rotate it (viking token rotate ID) or make a new one.' },
  VIKING_E_TOKEN_CHANGED: { status: 409, summary: 'The token was rotated or revoked by someone else while this rotation ran; list the tokens and try again.' },
  VIKING_E_CONFIG_INVALID: { status: 400, summary: 'The CLI config file (~/.config/viking/config.json or $VIKING_CONFIG) is not valid JSON of {api, token}.' },
  VIKING_E_FLAG_CONFLICT: { status: 400, summary: 'Command-line flags that exclude each other were given together, e.g. --no-router with a router flag (--router-port, --https-port, --router-workers, ...); the message names them. Nothing was started.' },
  VIKING_E_NGINX_MISSING: { status: 500, summary: 'The nginx router engine was asked for, and no nginx binary was found: install nginx (Debian: nginx-light) or use the node engine.' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure with a stable code, meant to be shown to a user. */
export class VikingError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra structured detail (build output, problems, reasons). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'VikingError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.details = details;
  }

  /** The JSON shape the API answers with. */
  toJSON(): { statusCode: number; code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { statusCode: this.statusCode, code: this.code, message: this.message }
      : { statusCode: this.statusCode, code: this.code, message: this.message, details: this.details };
  }
}

/** The error table for docs/errors.md: one row per code, generated so the docs never drift. */
export function renderErrorDocs(): string {
  const rows = Object.entries(ERROR_CODES as Record<string, ErrorDefinition>).map(
    ([code, def]) => `| \`${code}\` | ${def.status} | ${def.summary.replace(/\|/g, '\\|')} |`,
  );
  return [
    '# viking error codes',
    '',
    'Every failure the API or the CLI reports carries one of these codes. The API answers',
    '`{statusCode, code, message}` with the HTTP status below; the CLI prints',
    '`error <CODE>: message` and exits with 1. Codes are never renamed: scripts may match on them.',
    '',
    'This file is generated from `lib/errors.ts` by `npm run docs:errors`; a test fails when it is stale.',
    '',
    '| code | HTTP | when |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

export function isVikingError(err: unknown): err is VikingError {
  return err instanceof VikingError;
}

/** Wraps anything thrown into a VikingError, keeping viking's own as they are. */
export function toVikingError(err: unknown): VikingError {
  if (err instanceof VikingError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new VikingError('VIKING_E_INTERNAL', message);
}

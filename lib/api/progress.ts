/**
 * Long operations (push, rollback, scale, env, rm) answer a stream of NDJSON
 * lines, so the CLI shows each stage as it happens:
 *
 *   {"type":"progress","stage":"deploy","message":"web/1: running on h1"}
 *   ...
 *   {"type":"result", ...}   or   {"type":"error","statusCode":..,"code":..,"message":..}
 *
 * The stream starts only with the first progress event. A failure before it
 * (no such stack, the stack is busy, a bad release name) is an ordinary HTTP
 * error with its own status, so scripts can tell "refused" from "failed".
 */
import type { FastifyReply } from 'fastify';
import { toVikingError } from '../errors.js';
import { etcdUnavailableError, isEtcdUnavailable } from '../store/unavailable.js';
import type { Emit, RolloutEvent } from '../rollout/rollout.js';
import { noteAudit } from './audit-route.js';

/** The release a result says was made: a push's or rollback's `tag`, an env change's `release.tag`. */
function releaseOf(result: object): string | undefined {
  const r = result as { tag?: unknown; release?: { tag?: unknown } };
  if (typeof r.tag === 'string') return r.tag;
  return typeof r.release?.tag === 'string' ? r.release.tag : undefined;
}

export type ProgressLine<R> =
  | ({ type: 'progress' } & RolloutEvent)
  | ({ type: 'result' } & R)
  | { type: 'error'; statusCode: number; code: string; message: string; details?: Record<string, unknown> };

/** Who answers: names the host and the etcd members in VIKING_E_ETCD_UNAVAILABLE. */
export interface ProgressContext {
  hostName: string;
  etcdUrls?: string[];
}

export interface ProgressOutcome {
  /** The stream had started when the operation ended. */
  streamed: boolean;
  /** The VIKING_E_ code it failed with, or undefined on success. */
  failed?: string;
}

/**
 * Runs `op`, streaming its progress; resolves once the answer is complete.
 * Throws (for fastify's error handler) only when nothing was streamed yet.
 */
export async function streamProgress<R extends object>(
  reply: FastifyReply,
  op: (emit: Emit) => Promise<R>,
  onError: ((code: string, message: string) => void) | undefined,
  ctx: ProgressContext,
): Promise<ProgressOutcome> {
  const raw = reply.raw;
  let started = false;
  const write = (line: ProgressLine<R>): void => {
    if (!raw.destroyed && !raw.writableEnded) raw.write(`${JSON.stringify(line)}\n`);
  };
  const start = (): void => {
    if (started) return;
    started = true;
    reply.hijack();
    raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  };
  const emit: Emit = (stage, message) => {
    start();
    write({ type: 'progress', stage, message });
  };
  try {
    const result = await op(emit);
    const release = releaseOf(result);
    if (release) noteAudit(reply.request, { release });
    start();
    write({ type: 'result', ...result });
    raw.end();
    return { streamed: true };
  } catch (err) {
    // etcd gone (no quorum, every member's breaker open) is told as such, not as a
    // 500: before the stream starts the API's error handler says so (the original
    // error goes on to it), after it the error line does.
    const unavailable = isEtcdUnavailable(err);
    const e = unavailable ? etcdUnavailableError(ctx.hostName, err, ctx.etcdUrls) : toVikingError(err);
    noteAudit(reply.request, { code: e.code });
    onError?.(e.code, e.message);
    if (!started) throw unavailable ? err : e;
    write({ type: 'error', ...e.toJSON() });
    raw.end();
    return { streamed: true, failed: e.code };
  }
}

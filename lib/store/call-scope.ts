/**
 * Deadlines for the etcd calls an API request makes before it answers.
 *
 * Without quorum etcd does not fail a read or a write: it waits. The
 * client's own deadline (5 s a try, three tries) then holds a user's
 * request for up to 15 s. Inside an API request that has not answered yet,
 * every unary etcd call instead gets one budget (1.2 s) for itself and its
 * retries together (at most half of it a try, so a try stuck on one hung
 * member leaves time to ask another), so a request that needs etcd answers 503
 * VIKING_E_ETCD_UNAVAILABLE within 2 s instead of hanging. The scope rides
 * on AsyncLocalStorage, so no call site has to pass it along; code outside
 * a request (slave, leader, router feed) keeps the client's defaults, and a
 * request that already streams its answer (a push's progress, logs -f) gets
 * them back too: it is not hanging, and a short etcd election should not
 * fail a push half way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The per-call budget of an API request that has not answered yet. */
export const REQUEST_CALL_BUDGET_MS = 1200;
/** A try's deadline outside a request (the etcd client's default). */
export const DEFAULT_CALL_DEADLINE_MS = 5000;

export interface CallScope {
  /** Time one etcd call, retries included, may take. */
  budgetMs: number;
  /** True once the request has begun its answer; calls after that get the default deadline. */
  answered(): boolean;
}

const scopes = new AsyncLocalStorage<CallScope>();

/** Runs `fn` (and everything it starts) under a call budget. */
export function runInCallScope<T>(scope: CallScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

/** The scope the current code runs in, if any. */
export function currentCallScope(): CallScope | undefined {
  return scopes.getStore();
}

/**
 * When each call began, keyed by its request payload: etcd3 hands every try
 * of one call the same payload object, so the tries share one budget.
 */
const firstTry = new WeakMap<object, number>();

/** The absolute deadline for one try of a unary etcd call. */
export function unaryDeadline(params: unknown, now = Date.now()): number {
  const scope = scopes.getStore();
  if (!scope || scope.answered()) return now + DEFAULT_CALL_DEADLINE_MS;
  if (params === null || typeof params !== 'object') return now + scope.budgetMs;
  let began = firstTry.get(params);
  if (began === undefined) firstTry.set(params, (began = now));
  // Half the budget a try: a try stuck on one hung member leaves time for a try on another.
  return Math.min(began + scope.budgetMs, now + scope.budgetMs / 2);
}

/**
 * The etcd client and the few read/watch shapes viking uses everywhere.
 *
 * etcd3's defaults are tuned for a long-lived service, not for fast
 * failover: watches reconnect with up to 30 s of backoff, and the per-host
 * circuit breaker can stay open on healthy members. viking narrows both so a
 * lost member or a restarted etcd is noticed in about a second. A member
 * behind a pulled cable is worse: it answers nothing, not even RST, so
 * every client pings (gRPC keepalive, 5 s + 2 s) and every unary call has a
 * deadline; measured on network-namespace servers (test/e2e/servers.test.ts),
 * a cut worker's replica was never re-placed without them and is re-placed
 * in 9-11 s with them.
 */
import { Etcd3, GRPCDeadlineExceededError, Range, isRecoverableError, type IKeyValue, type Watcher } from 'etcd3';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, retry, type IDefaultPolicyContext, type IPolicy } from 'cockatiel';
import { NOT_JSON } from './records.js';
import { currentCallScope, unaryDeadline } from './call-scope.js';

export type Etcd = Etcd3;

/** Accepts `host:port` or full URLs, comma separated; etcd3 needs the `http://`. */
export function normaliseEtcdUrls(urls: string | string[]): string[] {
  const list = (Array.isArray(urls) ? urls : urls.split(','))
    .map((u) => u.trim())
    .filter(Boolean);
  return list.map((u) => (/^https?:\/\//.test(u) ? u : `http://${u}`));
}

export function connectEtcd(urls: string | string[]): Etcd3 {
  return new Etcd3({
    hosts: normaliseEtcdUrls(urls),
    dialTimeout: 3000,
    // A member behind a pulled cable sends no RST: without pings a stream on it waits forever.
    // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time) while a stream is open.
    grpcOptions: { 'grpc.keepalive_time_ms': 5000, 'grpc.keepalive_timeout_ms': 2000 },
    // 5 s a try; inside an API request that has not answered, 1.5 s for all tries (call-scope.ts).
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: unaryDeadline('params' in ctx ? ctx.params : undefined) }),
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      // Every member's breaker open at once (calls cut short while a member was away) used to fail the
      // call outright ("circuit breaker is open", seen in the servers e2e): it is tried again after a
      // pause, by when the breakers let a call through (half-open after 1 s).
      global: withinCallBudget(retry(handleWhen((err) => isRecoverableError(err) || isBrokenCircuitError(err)), { maxAttempts: 3, backoff: new ExponentialBackoff({ initialDelay: 300, maxDelay: 1200 }) })),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
    },
  });
}

/**
 * Ends a call that runs in an API request's call scope (call-scope.ts) by
 * its budget, whatever it waits for. Deadlines bound each try, but not the
 * wait before one: a member's circuit breaker in half-open state holds
 * every call until its one trial call ends, and that trial may be a slave's
 * call with the 5 s deadline.
 */
function withinCallBudget(inner: IPolicy<IDefaultPolicyContext>): IPolicy<IDefaultPolicyContext> {
  return {
    _altReturn: undefined as never,
    onSuccess: inner.onSuccess,
    onFailure: inner.onFailure,
    execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
      const scope = currentCallScope();
      if (!scope || scope.answered()) return inner.execute(fn, signal);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new GRPCDeadlineExceededError(`etcd did not answer within ${scope.budgetMs} ms`)), scope.budgetMs);
        inner.execute(fn, signal).then(resolve, reject).finally(() => clearTimeout(timer));
      });
    },
  };
}

export interface Entry<T> {
  key: string;
  value: T;
  createRevision: string;
  modRevision: string;
}

export interface PrefixRead<T> {
  /** The store revision this read saw; reads at one revision form a snapshot. */
  revision: string;
  entries: Entry<T>[];
}

function parseJSON<T>(kv: IKeyValue): T | undefined {
  const text = kv.value.toString();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Reads every key under a prefix, at one revision when given. Values are JSON; '' and bad JSON read as undefined. */
export async function readPrefix<T>(client: Etcd3, prefix: string, revision?: string): Promise<PrefixRead<T | undefined>> {
  let range = client.getAll().prefix(prefix);
  if (revision !== undefined) range = range.revision(revision);
  const res = await range.exec();
  return {
    revision: res.header.revision,
    entries: res.kvs.map((kv) => ({
      key: kv.key.toString(),
      value: parseJSON<T>(kv),
      createRevision: kv.create_revision,
      modRevision: kv.mod_revision,
    })),
  };
}

export { NOT_JSON };

/**
 * Every key under a prefix at one revision, without values: keys, create
 * and mod revisions, versions and leases only. Dispatch reads /deploy this
 * way; its values are the slaves' reports (with log lines after a failure),
 * which placement never looks at.
 */
export async function readKeysOnly(client: Etcd3, prefix: string, revision?: string): Promise<{ revision: string; kvs: IKeyValue[] }> {
  const range = Range.prefix(prefix);
  const res = await client.kv.range({ key: range.start, range_end: range.end, keys_only: true, ...(revision !== undefined ? { revision } : {}) });
  return { revision: res.header.revision, kvs: res.kvs };
}

/**
 * Like readPrefix, but tells a value that is not JSON (NOT_JSON) from an
 * empty one (undefined), for readers that must say why they skip a record.
 */
export async function readRecords(client: Etcd3, prefix: string, revision?: string): Promise<PrefixRead<unknown>> {
  let range = client.getAll().prefix(prefix);
  if (revision !== undefined) range = range.revision(revision);
  const res = await range.exec();
  return {
    revision: res.header.revision,
    entries: res.kvs.map((kv) => {
      const text = kv.value.toString();
      let value: unknown;
      if (text !== '') {
        try {
          value = JSON.parse(text);
        } catch {
          value = NOT_JSON;
        }
      }
      return { key: kv.key.toString(), value, createRevision: kv.create_revision, modRevision: kv.mod_revision };
    }),
  };
}

/** Reads one JSON key; undefined when absent. */
export async function readJSON<T>(client: Etcd3, key: string): Promise<T | undefined> {
  const text = await client.get(key).string();
  if (text === null || text === '') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Open watches per client, so "each host watches only its own keys" can be checked and shown. */
const openWatches = new WeakMap<Etcd3, Map<string, number>>();

function countWatch(client: Etcd3, prefix: string, delta: 1 | -1): void {
  let m = openWatches.get(client);
  if (!m) openWatches.set(client, (m = new Map()));
  const n = (m.get(prefix) ?? 0) + delta;
  if (n > 0) m.set(prefix, n);
  else m.delete(prefix);
}

/** The prefixes this client watches now, one entry per open watch. */
export function watchedPrefixes(client: Etcd3): string[] {
  return [...(openWatches.get(client) ?? new Map<string, number>()).entries()].flatMap(([p, n]) => Array<string>(n).fill(p)).sort();
}

export interface PrefixWatch {
  cancel(): Promise<void>;
}

/**
 * Calls `onChange` after any change under a prefix. The callback only wakes a
 * level-triggered loop: it gets no event detail on purpose. If the watch
 * fails it is recreated, and `onChange` is called so the loop resyncs.
 */
export function watchPrefix(client: Etcd3, prefix: string, onChange: () => void): PrefixWatch {
  let watcher: Watcher | undefined;
  let cancelled = false;
  let retry: NodeJS.Timeout | undefined;

  const open = async (): Promise<void> => {
    try {
      const w = await client.watch().prefix(prefix).create();
      if (cancelled) {
        await w.cancel();
        return;
      }
      watcher = w;
      countWatch(client, prefix, 1);
      w.on('put', onChange);
      w.on('delete', onChange);
      // After a reconnect etcd3 resumes from the last revision; resync anyway.
      w.on('connected', onChange);
      w.on('error', () => {
        countWatch(client, prefix, -1);
        watcher = undefined;
        void w.cancel().catch(() => {});
        schedule();
      });
    } catch {
      schedule();
    }
  };
  const schedule = (): void => {
    if (cancelled) return;
    retry = setTimeout(() => {
      onChange();
      void open();
    }, 500);
  };
  void open();
  return {
    async cancel() {
      cancelled = true;
      if (retry) clearTimeout(retry);
      if (watcher) {
        countWatch(client, prefix, -1);
        await watcher.cancel().catch(() => {});
      }
    },
  };
}

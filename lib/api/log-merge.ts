/**
 * Merging the logs of several replicas in time order without holding them.
 *
 * Each replica's log is an async iterator of lines already in time order
 * (Docker writes them so). The merge keeps one line per replica, the head,
 * and always passes on the oldest head, so memory is one line per replica
 * whatever the size of the logs, and a replica is read only as fast as the
 * reader of the merged log reads: a client that stops reading stops every
 * upstream read (Docker's socket, a peer host's HTTP answer) through plain
 * backpressure.
 *
 * Following (`logs -f`), a replica may stay silent for ever; waiting for its
 * next line would stall the others. A replica that has said nothing for
 * `settleMs` is therefore passed over until it speaks again; its late lines
 * come out when they arrive, as with `tail -f` of several files.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Sortable form of Docker's RFC 3339 nano timestamps, whose fractions drop trailing zeros. */
export function timeKey(time: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(time);
  if (!m) return time;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}`;
}

interface Source<T> {
  it: AsyncIterator<T>;
  head?: { value: T; key: string };
  pending?: Promise<void>;
  done: boolean;
  /** When the source was last asked for a line it has not given yet. */
  waitingSince: number;
}

export interface MergeOptions<T> {
  time: (value: T) => string;
  /** Following: pass over a replica silent for this long (ms). Unset: wait for every replica (a finite log). */
  settleMs?: number;
}

/** The lines of every source, oldest first; ties keep source order. */
export async function* mergeLogs<T>(iterators: Array<AsyncIterator<T>>, o: MergeOptions<T>): AsyncGenerator<T> {
  const sources: Array<Source<T>> = iterators.map((it) => ({ it, done: false, waitingSince: 0 }));
  const pull = (s: Source<T>): void => {
    s.waitingSince = performance.now();
    s.pending = s.it.next().then(
      (r) => {
        s.pending = undefined;
        if (r.done) s.done = true;
        else s.head = { value: r.value, key: timeKey(o.time(r.value)) };
      },
      (err: unknown) => {
        s.pending = undefined;
        s.done = true;
        failure ??= err;
      },
    );
  };
  let failure: unknown;
  let lastYield = performance.now();
  try {
    for (;;) {
      for (const s of sources) if (!s.done && !s.head && !s.pending) pull(s);
      const alive = sources.filter((s) => !s.done);
      if (failure !== undefined) throw failure;
      if (alive.length === 0) return;
      const missing = alive.filter((s) => !s.head);
      if (missing.length > 0) {
        const anyHead = alive.some((s) => s.head);
        if (!anyHead || o.settleMs === undefined) {
          await Promise.race(missing.map((s) => s.pending!));
          continue;
        }
        // Following: wait for the silent ones only until they have been silent for settleMs.
        const now = performance.now();
        const deadline = Math.max(...missing.map((s) => s.waitingSince + o.settleMs!));
        if (deadline > now) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - now)));
          await Promise.race([...missing.map((s) => s.pending!), timeout]);
          clearTimeout(timer);
          continue;
        }
      }
      let best: Source<T> | undefined;
      for (const s of alive) if (s.head && (!best || s.head.key < best.head!.key)) best = s;
      const value = best!.head!.value;
      best!.head = undefined;
      yield value;
      // Lines that are all already here resolve in microtasks only: let timers and I/O run.
      if (performance.now() - lastYield > 10) {
        await yieldToLoop();
        lastYield = performance.now();
      }
    }
  } finally {
    // Stop every source (closing its Docker or peer stream). One still waiting for a line is
    // stopped once that wait ends (the caller's abort signal ends it), without holding us here.
    const idle = sources.filter((s) => !s.pending);
    for (const s of sources) if (s.pending) void s.pending.then(() => s.it.return?.()).catch(() => {});
    await Promise.allSettled(idle.map((s) => s.it.return?.()));
  }
}

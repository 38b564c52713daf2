/**
 * The access log of one host's router, in the host process: the lines its
 * workers write (access-log.ts) are kept, the last KEEP of each stack, and
 * passed to whoever follows them (`viking logs STACK --access -f`, through
 * /v1/local/access; lib/api/access-route.ts).
 *
 * Every router serves every domain, so each host keeps only its own router's
 * lines and the API asks every live host for theirs, as for app logs.
 *
 * Memory is bounded everywhere: a ring of KEEP lines per stack, at most
 * MAX_STACKS stacks (the one written least recently goes first), and a queue
 * of QUEUE lines per follower. A follower that reads slower than requests
 * come loses lines instead of growing the host; it is told how many with a
 * `{"dropped": N}` line once it catches up, as it is told of lines a worker
 * had to drop.
 */
import type { AccessBatch } from './access-log.js';

/** Lines kept per stack for `viking logs --access` without -f. */
export const KEEP = 1000;
/** Stacks whose lines are kept. */
const MAX_STACKS = 256;
/** Lines waiting for one follower before new ones are dropped. */
export const QUEUE = 1000;

interface Kept {
  node: string;
  line: string;
}

class Ring {
  private readonly items: Kept[] = [];
  private start = 0;

  push(k: Kept): void {
    if (this.items.length < KEEP) this.items.push(k);
    else {
      this.items[this.start] = k;
      this.start = (this.start + 1) % KEEP;
    }
  }

  /** The last `n` lines (of `node` when given), oldest first. */
  last(n: number, node: string | undefined): string[] {
    const out: string[] = [];
    const len = this.items.length;
    for (let i = len - 1; i >= 0 && out.length < n; i--) {
      const k = this.items[(this.start + i) % len]!;
      if (node === undefined || k.node === node) out.push(k.line);
    }
    return out.reverse();
  }
}

interface Follower {
  stack: string;
  node: string | undefined;
  queue: string[];
  /** Lines the queue may hold. */
  cap: number;
  dropped: number;
  wake: (() => void) | undefined;
}

export class AccessLogHub {
  private readonly rings = new Map<string, Ring>();
  private readonly followers = new Set<Follower>();
  /** Lines the workers dropped, ever (their batches could not leave fast enough). */
  droppedByRouter = 0;

  constructor(readonly hostName: string) {}

  /** A batch from a worker: kept, and passed to the followers of its stacks. */
  add(batch: AccessBatch): void {
    const router = `{"router":${JSON.stringify(this.hostName)},`;
    if (batch.dropped > 0) {
      this.droppedByRouter += batch.dropped;
      const note = droppedLine(this.hostName, batch.dropped, 'router');
      for (const f of this.followers) this.offer(f, note);
    }
    for (const [stack, node, json] of batch.entries) {
      const line = router + json.slice(1);
      let ring = this.rings.get(stack);
      if (ring) this.rings.delete(stack);
      else {
        ring = new Ring();
        if (this.rings.size >= MAX_STACKS) this.rings.delete(this.rings.keys().next().value!);
      }
      // Most recently written last: the first key is the one to let go.
      this.rings.set(stack, ring);
      ring.push({ node, line });
      for (const f of this.followers) if (f.stack === stack && (f.node === undefined || f.node === node)) this.offer(f, line);
    }
  }

  /** The last `n` lines kept of a stack (and node), oldest first. */
  tail(stack: string, node: string | undefined, n: number): string[] {
    return this.rings.get(stack)?.last(Math.min(n, KEEP), node) ?? [];
  }

  /** Followers now (tests, status). */
  get followerCount(): number {
    return this.followers.size;
  }

  /**
   * New lines of a stack (and node) as they come, until `signal` aborts. Lines
   * that did not fit the queue are replaced by one `dropped` line.
   */
  async *follow(stack: string, node: string | undefined, signal: AbortSignal, queue = QUEUE): AsyncGenerator<string> {
    const f: Follower = { stack, node, queue: [], cap: queue, dropped: 0, wake: undefined };
    const stop = (): void => f.wake?.();
    this.followers.add(f);
    signal.addEventListener('abort', stop, { once: true });
    try {
      while (!signal.aborted) {
        if (f.dropped > 0) {
          const n = f.dropped;
          f.dropped = 0;
          yield droppedLine(this.hostName, n, 'reader');
          continue;
        }
        if (f.queue.length === 0) {
          await new Promise<void>((resolve) => (f.wake = resolve));
          f.wake = undefined;
          continue;
        }
        const batch = f.queue;
        f.queue = [];
        for (const line of batch) yield line;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      this.followers.delete(f);
    }
  }

  private offer(f: Follower, line: string): void {
    if (f.queue.length >= f.cap) f.dropped++;
    else f.queue.push(line);
    f.wake?.();
  }
}

/** The line that stands for lines lost: by a worker (`router`) or because the follower read too slowly (`reader`). */
function droppedLine(router: string, n: number, where: 'router' | 'reader'): string {
  return JSON.stringify({ time: new Date().toISOString(), router, dropped: n, where });
}

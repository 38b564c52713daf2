/**
 * What the dashboard's tabs are told about: one etcd watch per API host,
 * fanned out to every open tab (`GET /v1/events`, server-sent events).
 *
 * A tab gets no state, only what changed ("the cluster", "stack shop"), and
 * then reads the /v1 routes it shows, with its own token; an event only
 * wakes it, like the reconcilers' watches (DESIGN.md, principle 2). Changes
 * are coalesced for COALESCE_MS so a rollout's burst of keys costs a tab one
 * read, not hundreds. The watch is opened when the first tab connects and
 * closed when the last leaves, so a host nobody watches through the
 * dashboard watches only its own keys. A watch that fails is opened again
 * and every tab is told to read everything (`all`), as after a reconnect.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { PREFIX } from '../store/keys.js';

export interface LiveChange {
  /** Hosts, leader, drains or placements changed: the cluster page reads again. */
  cluster: boolean;
  /** Stacks whose record, jobs, placements, states or endpoints changed. */
  stacks: string[];
  /** Domains or certificates changed: the stacks list reads again. */
  routes: boolean;
  /** Read everything again (the watch was reopened). */
  all: boolean;
}

export type Listener = (change: LiveChange) => void;

export const COALESCE_MS = 150;

/** Pure: what a changed key means to the dashboard (undefined: nothing it shows). */
export function classifyKey(key: string): { cluster?: true; stack?: string; routes?: true } | undefined {
  const seg = (prefix: string, n: number): string | undefined => key.slice(prefix.length).split('/')[n];
  if (key.startsWith(PREFIX.host) || key.startsWith(PREFIX.drain) || key === '/leader' || key.startsWith('/leader/')) return { cluster: true };
  if (key.startsWith(PREFIX.stack)) return stackOf(seg(PREFIX.stack, 0));
  if (key.startsWith(PREFIX.locks)) return stackOf(seg(PREFIX.locks, 0));
  if (key.startsWith(PREFIX.pushes)) return stackOf(seg(PREFIX.pushes, 0));
  for (const p of [PREFIX.proc, PREFIX.run, PREFIX.ports]) if (key.startsWith(p)) return { cluster: true, ...stackOf(seg(p, 0)) };
  if (key.startsWith(PREFIX.deploy)) return { cluster: true, ...stackOf(seg(PREFIX.deploy, 1)) };
  if (key.startsWith(PREFIX.domains) || key.startsWith(`${PREFIX.certs}status/`) || key.startsWith(`${PREFIX.certs}pem/`)) return { routes: true };
  return undefined;
}

function stackOf(name: string | undefined): { stack?: string } {
  return name && /^[a-z0-9-]{1,63}$/.test(name) ? { stack: name } : {};
}

export class LiveFeed {
  private readonly listeners = new Set<Listener>();
  private watcher: Watcher | undefined;
  private opening: Promise<void> | undefined;
  private pending: LiveChange | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly client: Etcd3, private readonly log?: (msg: string) => void) {}

  /** Tabs listening now. */
  get size(): number {
    return this.listeners.size;
  }

  /** The watch is open (for tests: one per host, however many tabs). */
  get watching(): boolean {
    return this.watcher !== undefined;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (!this.watcher && !this.opening) this.opening = this.open().finally(() => (this.opening = undefined));
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.close();
    };
  }

  private async open(): Promise<void> {
    try {
      const w = await this.client.watch().prefix('/').create();
      if (this.listeners.size === 0) {
        await w.cancel().catch(() => {});
        return;
      }
      this.watcher = w;
      const onKey = (kv: { key: Buffer }): void => this.note(kv.key.toString());
      w.on('put', onKey);
      w.on('delete', onKey);
      w.on('connected', () => this.queue({ all: true }));
      w.on('error', (err: Error) => {
        this.log?.(`live feed: watch failed (${err.message}); opening it again`);
        if (this.watcher === w) this.watcher = undefined;
        void w.cancel().catch(() => {});
        this.reopen();
      });
    } catch (err) {
      this.log?.(`live feed: cannot watch etcd (${(err as Error).message})`);
      this.reopen();
    }
  }

  private reopen(): void {
    if (this.retry || this.listeners.size === 0) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.listeners.size === 0 || this.watcher) return;
      this.queue({ all: true });
      this.opening ??= this.open().finally(() => (this.opening = undefined));
    }, 500);
  }

  private async close(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    if (this.timer) clearTimeout(this.timer);
    this.retry = this.timer = this.pending = undefined;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => {});
  }

  private note(key: string): void {
    const c = classifyKey(key);
    if (!c) return;
    this.queue({ ...(c.cluster ? { cluster: true } : {}), ...(c.routes ? { routes: true } : {}), ...(c.stack ? { stacks: [c.stack] } : {}) });
  }

  private queue(part: Partial<LiveChange>): void {
    const p = (this.pending ??= { cluster: false, stacks: [], routes: false, all: false });
    p.cluster ||= part.cluster ?? false;
    p.routes ||= part.routes ?? false;
    p.all ||= part.all ?? false;
    for (const s of part.stacks ?? []) if (!p.stacks.includes(s)) p.stacks.push(s);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const change = this.pending;
      this.pending = undefined;
      if (change) for (const l of this.listeners) l(change);
    }, COALESCE_MS);
  }

  async stop(): Promise<void> {
    this.listeners.clear();
    await this.close();
  }
}

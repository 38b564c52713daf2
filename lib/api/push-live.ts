/**
 * A push in progress, for everyone else to see (the dashboard, other API
 * hosts): its stages and the tail of its output, in etcd at
 * `/pushes/<stack>/<id>` under a lease of its own.
 *
 * The pushing client gets every line on its own stream (progress.ts); this
 * record is what any tab on any host can read (GET /v1/pushes/:stack) and is
 * woken for (/v1/events names the stack, live-feed.ts). It is bounded: the
 * last OUTPUT_LINES lines of at most LINE_CHARS characters each, and at most
 * one etcd write per WRITE_MS however fast the build prints. The lease is
 * kept alive while the push runs; once it ends the record says how, and the
 * lease is let go, so the record vanishes GRACE_S later, also when the host
 * dies mid-push.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import { PREFIX } from '../store/keys.js';
import { readPrefix } from '../store/client.js';
import type { PushRecord, RolloutStage } from './wire.js';

export type { PushRecord };

export const OUTPUT_LINES = 100;
export const LINE_CHARS = 400;
export const GRACE_S = 60;
const WRITE_MS = 250;

export const pushKey = (stack: string, id: string): string => `${PREFIX.pushes}${stack}/${id}`;

/** The pushes of a stack now in etcd (running, or ended less than GRACE_S ago), newest first. */
export async function readPushes(client: Etcd3, stack: string): Promise<PushRecord[]> {
  const read = await readPrefix<PushRecord>(client, `${PREFIX.pushes}${stack}/`);
  return read.entries.flatMap((e) => (e.value ? [e.value] : [])).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

export class LivePush {
  private record: PushRecord | undefined;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly client: Etcd3,
    private readonly host: string,
    private readonly by: string,
    private readonly log?: (msg: string) => void,
  ) {}

  /** The stack is known (the Vikingfile was read): the record starts. */
  begin(stack: string): void {
    if (this.record) return;
    this.record = { id: `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`, stack, by: this.by, host: this.host, startedAt: new Date().toISOString(), state: 'running', stages: [], output: [] };
    this.lease = this.client.lease(GRACE_S, { autoKeepAlive: true });
    this.lease.on('lost', () => {});
    this.schedule();
  }

  event(stage: RolloutStage, message: string): void {
    const r = this.record;
    if (!r) return;
    const at = new Date().toISOString();
    const text = message.length > LINE_CHARS ? `${message.slice(0, LINE_CHARS)}…` : message;
    const last = r.stages.at(-1);
    if (last?.stage === stage) Object.assign(last, { message: text, at });
    else r.stages.push({ stage, message: text, at });
    for (const line of text.split('\n')) r.output.push(`${stage}: ${line}`);
    if (r.output.length > OUTPUT_LINES) r.output.splice(0, r.output.length - OUTPUT_LINES);
    this.schedule();
  }

  /** The push ended: the last write says how, then the lease runs out GRACE_S later. */
  async end(error?: string): Promise<void> {
    const r = this.record;
    if (!r) return;
    r.state = error ? 'failed' : 'done';
    r.endedAt = new Date().toISOString();
    if (error) r.error = error.slice(0, LINE_CHARS);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = true;
    await this.flush();
    this.lease?.release();
  }

  private schedule(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, WRITE_MS);
  }

  /** One write at a time; the last state wins. A failed write is logged, never fails the push. */
  private flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (!this.dirty || !this.record || !this.lease) return;
      this.dirty = false;
      try {
        await this.lease.put(pushKey(this.record.stack, this.record.id)).value(JSON.stringify(this.record));
      } catch (err) {
        this.log?.(`push record of ${this.record.stack}: ${(err as Error).message}`);
      }
    });
    return this.writing;
  }
}

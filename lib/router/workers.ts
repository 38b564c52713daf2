/**
 * The router's worker processes, seen from the host process (the cluster
 * primary): forks them, feeds each the latest RouteSnapshot, restarts one
 * that dies, and knows which revision all of them serve.
 *
 * One Node process proxies at about half nginx's rate (measured: ~65 µs
 * of CPU per request), so the router runs one worker per core by default and
 * lets node:cluster hand connections out round-robin. Connections stay on
 * the worker that accepted them; a table swap reaches every worker by IPC
 * within a millisecond and restarts nothing.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { RouteSnapshot } from './snapshot.js';
import type { BalanceMode } from './upstreams.js';
import type { RouterTuning } from './server.js';
import type { CertBundle } from './tls-certs.js';
import { emptyDump, sumDumps, type TrafficDump } from './traffic-counters.js';
import type { AccessBatch } from './access-log.js';

export interface WorkerConfig {
  port: number;
  host: string;
  balance: BalanceMode;
  tuning?: RouterTuning;
  /** HTTPS port (already chosen: every worker binds the same); 0 or absent: no HTTPS. */
  httpsPort?: number;
  /** TLS session ticket keys, base64 (48 bytes), the same in every worker. */
  ticketKeys?: string;
  /** false: TLS sessions are never resumed (the bench's full-handshake rows). */
  tlsResumption?: boolean;
  /** false: the workers count no traffic (the bench's baseline). */
  metrics?: boolean;
  /** true: the workers send access log lines (to onAccess). */
  accessLog?: boolean;
}

export type PrimaryMessage =
  | { type: 'snapshot'; snapshot: RouteSnapshot }
  | { type: 'certs'; certs: CertBundle[] }
  /** drainMs: answer with `Connection: close` that long before closing (STOP_DRAIN_MS). */
  | { type: 'stop'; graceMs: number; drainMs?: number }
  /** Asks for the worker's traffic counters (answered with the same id). */
  | { type: 'counters'; id: number }
  /** The whole set of ACME HTTP-01 answers (lib/router/acme-challenges.ts). */
  | { type: 'acme-challenges'; entries: Array<[string, string]> }
  /** The last access log batch was taken: the worker may send the next. */
  | { type: 'access-taken' };

export type WorkerMessage =
  | { type: 'hello' }
  | { type: 'listening'; port: number; revision: string }
  | { type: 'applied'; revision: string }
  | { type: 'log'; message: string }
  | { type: 'counters'; id: number; dump: TrafficDump }
  | { type: 'access'; batch: AccessBatch };

export interface RouterWorkersOptions extends WorkerConfig {
  count: number;
  log?: (msg: string) => void;
  /** A worker applied a snapshot (or started serving): the served revision may have moved. */
  onApplied: () => void;
  /** A worker's access log lines (access-log.ts); it sends no more until this returned. */
  onAccess?: (batch: AccessBatch) => void;
}

interface Slot {
  worker: Worker;
  /** Revision it serves; undefined until it listens. */
  revision: string | undefined;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * Garbage collection on the main thread only. V8's parallel scavenger waits
 * for helper threads, and on a busy machine (the router shares its cores with
 * the apps) those are often not scheduled: pauses stretch into milliseconds.
 * Measured with bench/router: p99 went from ~1.2-2.1x nginx's to ~0.4-1.0x.
 */
const DEFAULT_EXEC_ARGV = ['--single-threaded-gc'];

/** Node flags of the worker processes; `VIKING_ROUTER_WORKER_ARGS` (space separated) replaces the default. */
export function workerExecArgv(env = process.env): string[] {
  const custom = env.VIKING_ROUTER_WORKER_ARGS;
  return custom === undefined ? DEFAULT_EXEC_ARGV : custom.split(/\s+/).filter(Boolean);
}

export class RouterWorkers {
  private readonly slots = new Map<number, Slot>();
  private latest: RouteSnapshot | undefined;
  private challenges: Array<[string, string]> = [];
  private certs: CertBundle[] = [];
  private stopping = false;
  private restarts = 0;
  private askId = 0;
  /** Counter requests waiting for their answers, by id. */
  private readonly asks = new Map<number, (worker: number, dump: TrafficDump) => void>();

  constructor(private readonly o: RouterWorkersOptions) {}

  /** Forks every worker with the first snapshot; resolves when all listen. */
  async start(first: RouteSnapshot): Promise<void> {
    this.latest = first;
    await Promise.all(Array.from({ length: this.o.count }, () => this.fork()));
  }

  /** Sends a new snapshot to every worker. */
  send(snapshot: RouteSnapshot): void {
    this.latest = snapshot;
    for (const slot of this.slots.values()) {
      if (slot.worker.isConnected()) slot.worker.send({ type: 'snapshot', snapshot } satisfies PrimaryMessage);
    }
  }

  /** Sends the ACME HTTP-01 answers to every worker (and to any started later). */
  sendChallenges(entries: Array<[string, string]>): void {
    this.challenges = entries;
    for (const slot of this.slots.values()) {
      if (slot.worker.isConnected()) slot.worker.send({ type: 'acme-challenges', entries } satisfies PrimaryMessage);
    }
  }

  /** Sends the certificate set to every worker (and to any worker started later). */
  sendCertificates(certs: CertBundle[]): void {
    this.certs = certs;
    for (const slot of this.slots.values()) {
      if (slot.worker.isConnected()) slot.worker.send({ type: 'certs', certs } satisfies PrimaryMessage);
    }
  }

  /** The oldest revision any serving worker has applied; undefined if none serves. */
  servedRevision(): string | undefined {
    let min: bigint | undefined;
    for (const slot of this.slots.values()) {
      if (slot.revision === undefined) continue;
      const r = BigInt(slot.revision);
      if (min === undefined || r < min) min = r;
    }
    return min?.toString();
  }

  /**
   * Every worker's traffic counters, summed. A worker that does not answer
   * within `timeoutMs` is left out (its counts come back with the next scrape;
   * a restarted worker starts from zero, as a restarted process does).
   */
  collectCounters(timeoutMs = 1000): Promise<TrafficDump> {
    const id = ++this.askId;
    const live = [...this.slots.values()].filter((s) => s.revision !== undefined && s.worker.isConnected());
    if (live.length === 0) return Promise.resolve(emptyDump());
    return new Promise((resolve) => {
      const got = new Map<number, TrafficDump>();
      const done = (): void => {
        clearTimeout(timer);
        this.asks.delete(id);
        resolve(sumDumps([...got.values()]));
      };
      const timer = setTimeout(done, timeoutMs);
      this.asks.set(id, (worker, dump) => {
        got.set(worker, dump);
        if (got.size === live.length) done();
      });
      for (const s of live) s.worker.send({ type: 'counters', id } satisfies PrimaryMessage);
    });
  }

  get size(): number {
    return this.slots.size;
  }

  /** Process ids of the workers, for status and tests. */
  pids(): number[] {
    return [...this.slots.values()].map((s) => s.worker.process.pid ?? 0);
  }

  /** Process ids of the workers that listen (a restarted one joins once it has its first snapshot). */
  listeningPids(): number[] {
    return [...this.slots.values()].filter((s) => s.revision !== undefined).map((s) => s.worker.process.pid ?? 0);
  }

  async stop(graceMs = 2000, drainMs = 0): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.slots.values()].map(
        (slot) =>
          new Promise<void>((resolve) => {
            const w = slot.worker;
            if (w.isDead()) return resolve();
            const timer = setTimeout(() => w.process.kill('SIGKILL'), drainMs + graceMs + 2000);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (w.isConnected()) w.send({ type: 'stop', graceMs, drainMs } satisfies PrimaryMessage);
            else w.process.kill('SIGTERM');
          }),
      ),
    );
    this.slots.clear();
  }

  private fork(): Promise<void> {
    cluster.setupPrimary({ exec: WORKER_SCRIPT, args: [], execArgv: workerExecArgv(), silent: false });
    const config: WorkerConfig = {
      port: this.o.port,
      host: this.o.host,
      balance: this.o.balance,
      ...(this.o.tuning ? { tuning: this.o.tuning } : {}),
      ...(this.o.httpsPort ? { httpsPort: this.o.httpsPort } : {}),
      ...(this.o.ticketKeys ? { ticketKeys: this.o.ticketKeys } : {}),
      ...(this.o.tlsResumption === false ? { tlsResumption: false } : {}),
      ...(this.o.metrics === false ? { metrics: false } : {}),
      ...(this.o.onAccess ? { accessLog: true } : {}),
    };
    const worker = cluster.fork({ VIKING_ROUTER_WORKER: JSON.stringify(config) });
    const slot: Slot = { worker, revision: undefined };
    this.slots.set(worker.id, slot);
    return new Promise<void>((resolve, reject) => {
      let up = false;
      worker.on('message', (msg: WorkerMessage) => {
        switch (msg.type) {
          case 'hello':
            // Certificates first, so a worker never serves HTTPS without them.
            worker.send({ type: 'certs', certs: this.certs } satisfies PrimaryMessage);
            if (this.challenges.length > 0) worker.send({ type: 'acme-challenges', entries: this.challenges } satisfies PrimaryMessage);
            if (this.latest) worker.send({ type: 'snapshot', snapshot: this.latest } satisfies PrimaryMessage);
            return;
          case 'listening':
            up = true;
            slot.revision = msg.revision;
            this.o.onApplied();
            resolve();
            return;
          case 'applied':
            slot.revision = msg.revision;
            this.o.onApplied();
            return;
          case 'log':
            this.o.log?.(msg.message);
            return;
          case 'counters':
            this.asks.get(msg.id)?.(worker.id, msg.dump);
            return;
          case 'access':
            this.o.onAccess?.(msg.batch);
            if (worker.isConnected()) worker.send({ type: 'access-taken' } satisfies PrimaryMessage);
            return;
        }
      });
      worker.once('exit', (code, signal) => {
        this.slots.delete(worker.id);
        if (!up) reject(new Error(`router worker exited before listening (${signal ?? `code ${code}`})`));
        if (this.stopping) return;
        this.o.onApplied();
        this.restarts++;
        this.o.log?.(`router: worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); starting another`);
        const delay = Math.min(100 * 2 ** Math.min(this.restarts, 6), 5000);
        setTimeout(() => {
          if (!this.stopping) this.fork().catch((err: Error) => this.o.log?.(`router: ${err.message}`));
        }, delay);
      });
    });
  }
}

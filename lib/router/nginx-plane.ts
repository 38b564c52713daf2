/**
 * The nginx data plane: `viking host --router-engine nginx`.
 *
 * Why it exists: the Node router proxies on raw sockets (fast-path.ts) and
 * still spends about twice nginx's CPU per request on keep-alive traffic,
 * and node:tls about 2.8× nginx's per full handshake (bench/RESULTS.md).
 * No change inside Node closes that. So a host can hand the data path to
 * nginx: it listens on the router's ports, terminates TLS and proxies
 * container routes itself, from a configuration rendered from the same
 * route table and certificates (nginx-config.ts); everything else (websites,
 * ACME challenges, routes without a healthy endpoint, unknown domains) it
 * passes to the Node RouterServer on loopback, which answers as on the
 * Node engine.
 *
 * This module runs that nginx: writes the certificates as files (keys 0600
 * in a 0700 directory), renders and checks (`nginx -t`) each configuration,
 * reloads it with SIGHUP one change at a time, and knows the revision nginx
 * serves only once the new workers run and every old one has finished
 * (so router acks keep their promise: nothing sends to a stopped endpoint).
 * nginx runs under a small sh that holds a pipe from this process: if the
 * host process dies, however, nginx is stopped with it. Traffic counters and
 * access log lines come back through nginx's request log (nginx-traffic.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RouteSnapshot } from './snapshot.js';
import { RouteTable, type ContainerRoute } from './route-table.js';
import type { CertBundle } from './tls-certs.js';
import { renderNginxConfig, type NginxCert, type NginxListen, type NginxPlan } from './nginx-config.js';
import { LogFollower, NginxTraffic, ROTATE_BYTES, sizeOf } from './nginx-traffic.js';
import { TrafficCounters } from './traffic-counters.js';
import { AccessLogWriter, type AccessBatch } from './access-log.js';
import { DEFAULT_CLIENT_TIMEOUTS } from './fast-path.js';
import type { BalanceMode } from './upstreams.js';
import { VikingError } from '../errors.js';
import { STOP_DRAIN_MS } from './engine.js';
import type { RouterTuning } from './server.js';
import { DEFAULT_MAX_CONNECTIONS } from './server.js';

export interface NginxPlaneOptions {
  /** nginx's prefix: configuration, pid, logs, certificates. Created if missing. */
  dir: string;
  /** The nginx binary (default `nginx` on PATH). */
  binary?: string;
  listen: NginxListen;
  workers: number;
  /** Loopback ports of the Node fallback servers: plain, and requests nginx took over TLS. */
  fallbackPort: number;
  fallbackTlsPort: number;
  balance: BalanceMode;
  tuning?: RouterTuning;
  /** Count traffic (default true). */
  metrics?: boolean;
  /** TLS session tickets (default true). */
  tlsResumption?: boolean;
  /** Where access log batches of logged routes go; the receiver calls `accessLog.taken()`. */
  accessLog?: (batch: AccessBatch) => void;
  /** The served revision moved (after a reload finished). */
  onServed?: () => void;
  log?: (msg: string) => void;
}

/** How long a reload may take before its new workers show up. */
const RELOAD_START_MS = 10_000;
/** How long a reload may take until every old worker is shutting down (they are within milliseconds, unless one hangs). */
const RELOAD_DRAIN_MS = 35_000;
const POLL_MS = 25;
/** error.log is rotated past this size (a failing app writes a line per request). */
const ERROR_LOG_BYTES = 8 * 1024 * 1024;
/**
 * How long the drain flag is up before a reload (nginx-config.ts, drainLines):
 * long enough for every busy keep-alive connection to get one answer with
 * `Connection: close` and for its client to have sent the next request on a
 * new connection.
 */
const DRAIN_FLAG_MS = 250;
/**
 * How often the request log is read. Often, so each read is small: read once a second, a busy router's
 * 30-40k lines came as one burst of 50-80 ms of CPU in the host process, and nginx's p99 went to 4-7x
 * a plain nginx's beside it (bench/router-engine.ts); every 100 ms, 2-2.7x. An idle read costs a read(2).
 */
const LOG_POLL_MS = 100;

/** Runs nginx and keeps it in step with the route table and certificates. */
export class NginxPlane {
  readonly counters: TrafficCounters | null;
  readonly accessLog: AccessLogWriter | null;
  private readonly traffic: NginxTraffic;
  private follower: LogFollower | null = null;
  private child: ChildProcess | undefined;
  private master = 0;
  private generation = 0;
  private snap: RouteSnapshot | undefined;
  private certs: readonly CertBundle[] = [];
  /** The revision all of nginx's workers serve. */
  revision = '0';
  private dirty = false;
  /** nginx runs and no start or restart is under way: reloads may go. */
  private up = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Log reads and rotations, one at a time (they share the follower's offset). */
  private logQueue: Promise<unknown> = Promise.resolve();
  private logBusy = false;
  private working: Promise<void> | undefined;
  private stopping = false;
  private restarts = 0;
  private validityTimer: NodeJS.Timeout | undefined;
  private logTimer: NodeJS.Timeout | undefined;
  private certFiles = new Set<string>();

  constructor(private readonly o: NginxPlaneOptions) {
    this.counters = o.metrics === false ? null : new TrafficCounters();
    this.accessLog = o.accessLog ? new AccessLogWriter(o.accessLog) : null;
    this.traffic = new NginxTraffic(this.counters);
  }

  private get configFile(): string {
    return path.join(this.o.dir, 'nginx.conf');
  }

  /**
   * What nginx's workers open by path, in a directory of their own under the temp dir (0711:
   * they may enter it, nobody may list it, only this process writes there), not under the data
   * dir, which user `nobody` (the workers, when the host runs as root) may not enter:
   * - the drain flag: while it exists nginx answers with `Connection: close` (nginx-config.ts, drainLines);
   * - the request log and error.log, which every worker reopens by path after a rotation (USR1).
   */
  private runDir: string | undefined;

  private get logFile(): string {
    return path.join(this.runDir!, 'requests.log');
  }

  private get drainFile(): string | null {
    return this.runDir ? path.join(this.runDir, 'draining') : null;
  }

  /** Starts nginx serving `snap` with `certs`; resolves once it accepts connections. */
  async start(snap: RouteSnapshot, certs: readonly CertBundle[]): Promise<void> {
    this.snap = snap;
    this.certs = certs;
    // 0711: nginx's workers (user nobody) reopen their logs by path after a rotation, nobody else lists the files.
    await mkdir(this.o.dir, { recursive: true });
    await chmod(this.o.dir, 0o711);
    await mkdir(path.join(this.o.dir, 'certs'), { recursive: true, mode: 0o700 });
    await chmod(path.join(this.o.dir, 'certs'), 0o700);
    await mkdir(path.join(this.o.dir, 'tmp'), { recursive: true });
    await this.stopOrphan();
    await this.makeRunDir();
    if (this.counters || this.accessLog) this.follower = new LogFollower(this.logFile, (l) => this.traffic.line(l));
    // Logs hold request paths (tokens in query strings): made 0600 before nginx opens them (it keeps an existing file's mode).
    for (const f of [this.logFile, this.errorLog]) await writeFile(f, '', { mode: 0o600, flag: 'a' }).then(() => chmod(f, 0o600));
    const ticketKey = path.join(this.o.dir, 'ticket.key');
    await writeFile(ticketKey, randomBytes(80), { mode: 0o600 });
    await this.launch();
    this.logTimer = setInterval(() => void this.tickLogs(), LOG_POLL_MS).unref();
  }

  /**
   * Renders, checks and starts nginx with the newest state, then marks it
   * up: changes that came meanwhile are reloaded right after. The revision
   * served is the one rendered, never a newer one that came during the start.
   */
  private async launch(): Promise<void> {
    const snap = this.snap!;
    const rendered = await this.render(true);
    await this.check(this.configFile + '.next');
    await rename(this.configFile + '.next', this.configFile);
    this.traffic.register(rendered.generation, rendered.routes);
    await this.spawnNginx();
    if (this.stopping) return;
    this.running = this.pending;
    this.scheduleValidity(rendered.nextChange);
    this.up = true;
    this.served(snap.revision);
    if (this.dirty || this.snap !== snap) this.kick();
  }

  /** Serves this snapshot from the next reload on. */
  apply(snap: RouteSnapshot): void {
    this.snap = snap;
    this.kick();
  }

  applyCertificates(certs: readonly CertBundle[]): void {
    this.certs = certs;
    this.kick();
  }

  /** Reads the request log to its end: the counters then include every request answered so far. */
  async catchUp(): Promise<void> {
    await this.queueLog(async () => {
      await this.follower?.poll();
    });
  }

  private get errorLog(): string {
    return path.join(this.runDir!, 'error.log');
  }

  private queueLog(job: () => Promise<void>): Promise<void> {
    const next = this.logQueue.then(job).catch((err: Error) => this.o.log?.(`router (nginx): request log: ${err.message}`));
    this.logQueue = next;
    return next;
  }

  /** Every LOG_POLL_MS: read the request log, rotate it (and error.log) when large. Skipped while the last tick still runs. */
  private async tickLogs(): Promise<void> {
    if (this.logBusy) return;
    this.logBusy = true;
    try {
      await this.queueLog(async () => {
        if (this.follower) {
          await this.follower.poll();
          if (this.follower.position > ROTATE_BYTES) await this.follower.rotate(() => this.reopenLogs(), 1500);
        }
        if ((await sizeOf(this.errorLog)) > ERROR_LOG_BYTES) {
          // One old file is kept for reading; the next rotation replaces it.
          await rename(this.errorLog, `${this.errorLog}.old`);
          this.reopenLogs();
        }
      });
    } finally {
      this.logBusy = false;
    }
  }

  /** A fresh 0600 file at each log path, then nginx reopens them (USR1; it keeps the mode of a file that exists). */
  private reopenLogs(): void {
    for (const f of [this.logFile, this.errorLog]) {
      try {
        writeFileSync(f, '', { mode: 0o600, flag: 'a' });
      } catch {
        /* nginx creates it */
      }
    }
    signal(this.master, 'SIGUSR1');
  }

  /** nginx's worker process ids. */
  workerPids(): number[] {
    return this.master ? childrenOf(this.master) : [];
  }

  get masterPid(): number {
    return this.master;
  }

  /** Stops nginx gracefully (QUIT: requests in flight finish), then fast after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    // A second stop waits for the first (the child's exit it would wait for again has already happened).
    this.stopped ??= this.stopOnce(graceMs);
    return this.stopped;
  }

  private stopped: Promise<void> | undefined;

  private async stopOnce(graceMs: number): Promise<void> {
    this.stopping = true;
    this.up = false;
    clearTimeout(this.validityTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.restartTimer);
    clearInterval(this.logTimer);
    await this.working?.catch(() => undefined);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // QUIT closes every idle keep-alive connection at once: as before a reload, first let each busy one end
      // after its answer (`Connection: close`), so no client sends its next request into a connection being closed
      // and the next one finds the port closed (refused, safe to send elsewhere) instead of a reset.
      const flag = this.master > 0 ? this.drainFile : null;
      if (flag && (await writeFile(flag, '').then(() => true, () => false))) await new Promise((r) => setTimeout(r, STOP_DRAIN_MS));
      // nginx may have exited during the wait: never signal a pid that may be another process's by now.
      if (child.exitCode === null && child.signalCode === null) signal(this.master, 'SIGQUIT');
      const fast = setTimeout(() => signal(this.master, 'SIGTERM'), graceMs);
      // The whole group (the sh, nginx's master and workers): also when no master pid is known yet (a start under way).
      const kill = setTimeout(() => signal(-child.pid!, 'SIGKILL'), graceMs + 3000);
      await exited;
      clearTimeout(fast);
      clearTimeout(kill);
    }
    child?.stdin?.destroy();
    await this.queueLog(async () => {
      await this.follower?.close();
    });
    if (this.runDir) await rm(this.runDir, { recursive: true, force: true });
  }

  /** A change came: one reload at a time, the newest state wins. */
  private kick(): void {
    this.dirty = true;
    if (this.working || this.stopping || !this.up || this.retryTimer) return;
    this.working = (async () => {
      while (this.dirty && !this.stopping && this.up) {
        this.dirty = false;
        try {
          await this.reload();
          this.failures = 0;
        } catch (err) {
          // The running configuration stays; the change is tried again, later and later (a record that cannot be
          // rendered would otherwise stop this router from following any change at all).
          this.dirty = true;
          const wait = Math.min(30_000, 1000 * 2 ** this.failures++);
          this.o.log?.(`router (nginx): reload failed (${this.failures} in a row), trying again in ${wait} ms: ${(err as Error).message}`);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.kick();
          }, wait).unref();
          break;
        }
      }
    })().finally(() => {
      this.working = undefined;
    });
  }

  private async reload(): Promise<void> {
    const snap = this.snap!;
    const rendered = await this.render();
    if (rendered.unchanged) {
      // Same ids, newer route objects: whether a node's requests are access-logged lives there, not in nginx.
      this.traffic.register(rendered.generation, rendered.routes);
      this.scheduleValidity(rendered.nextChange);
      return this.served(snap.revision);
    }
    await this.check(this.configFile + '.next');
    await rename(this.configFile + '.next', this.configFile);
    this.traffic.register(rendered.generation, rendered.routes);
    const before = new Set(this.workerPids());
    // Old workers close their idle keep-alive connections when the reload reaches them: first let every busy
    // one end after its answer, so no client's next request is sent into a closing connection (drainLines).
    const flag = this.drainFile;
    if (flag) await writeFile(flag, '');
    let drained = false;
    try {
      if (flag) await new Promise((r) => setTimeout(r, DRAIN_FLAG_MS));
      signal(this.master, 'SIGHUP');
      // New workers mean nginx took the configuration; gone old ones mean nothing serves the old one.
      const started = await waitFor(() => this.workerPids().some((p) => !before.has(p)), RELOAD_START_MS);
      if (!started) throw new Error(`nginx started no new workers in ${RELOAD_START_MS / 1000} s: ${await this.errorTail()}`);
      // An old worker that shuts down takes no new connection and no new request (nginx turns keep-alive off
      // in it): like the Node engine's table swap, requests in flight (and websockets) finish where they are.
      drained = await waitFor(() => this.workerPids().every((p) => !before.has(p) || shuttingDown(p)), RELOAD_DRAIN_MS);
    } finally {
      // A worker retitles itself just before it closes its idle connections: a moment more, then keep-alive again.
      if (flag) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        await rm(flag, { force: true });
      }
    }
    if (!drained) this.o.log?.(`router (nginx): old workers still take requests ${RELOAD_DRAIN_MS / 1000} s after a reload`);
    this.running = this.pending;
    await this.removeUnusedCerts();
    this.scheduleValidity(rendered.nextChange);
    this.served(snap.revision);
  }

  private served(revision: string): void {
    if (BigInt(revision) > BigInt(this.revision) || this.revision === '0') {
      this.revision = revision;
      this.o.onServed?.();
    }
  }

  /**
   * Writes the certificate files and the next configuration (`nginx.conf.next`).
   * `unchanged`: the state renders what nginx already runs (most route
   * snapshots change nothing nginx sees, e.g. a stack record's other
   * fields), so no reload is needed and nothing is written.
   */
  private async render(force = false): Promise<{ generation: number; routes: Map<string, ContainerRoute>; nextChange: number; unchanged: boolean }> {
    const certs = await this.writeCerts(this.certs);
    const t = this.o.tuning ?? {};
    const plan: NginxPlan = {
      prefix: this.o.dir,
      listen: this.o.listen,
      workers: this.o.workers,
      fallbackPort: this.o.fallbackPort,
      fallbackTlsPort: this.o.fallbackTlsPort,
      balance: this.o.balance,
      timeouts: { ...DEFAULT_CLIENT_TIMEOUTS, ...t.clientTimeouts },
      maxConnections: t.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      trustedProxies: t.trustedProxies ?? [],
      tlsResumption: this.o.tlsResumption !== false,
      ticketKeyFile: path.join(this.o.dir, 'ticket.key'),
      logFile: this.follower ? this.logFile : null,
      errorLogFile: this.errorLog,
      generation: this.generation,
      drainFile: this.drainFile,
    };
    const table = RouteTable.build(this.snap!, this.counters, this.accessLog);
    // nginx writes the request log only when something reads it: the counters, or a node whose requests are
    // access-logged. With metrics off and no access log, a request costs nginx no write and this process no read.
    if (!this.counters && plan.logFile && ![...renderNginxConfig(plan, table, certs).routes.values()].some((r) => r.access)) plan.logFile = null;
    if (!force && this.running !== undefined) {
      const same = renderNginxConfig(plan, table, certs);
      if (bodyOf(same.text) === this.running) return { generation: this.generation, routes: same.routes, nextChange: same.nextChange, unchanged: true };
    }
    const generation = ++this.generation;
    const out = renderNginxConfig({ ...plan, generation }, table, certs);
    await writeFile(this.configFile + '.next', out.text, { mode: 0o600 });
    this.pending = bodyOf(out.text);
    return { generation, routes: out.routes, nextChange: out.nextChange, unchanged: false };
  }

  /** The configuration nginx runs (without its first line, which names the revision); undefined before the first start. */
  private running: string | undefined;
  /** The one written to nginx.conf.next, until nginx runs it. */
  private pending: string | undefined;

  /** `nginx -t` on a configuration: the running one stays if this one is wrong. */
  private async check(file: string): Promise<void> {
    const bin = this.o.binary ?? 'nginx';
    const { code, output } = await run(bin, ['-t', '-q', '-p', this.o.dir, '-c', file]);
    if (code === -1 && output.includes('ENOENT')) {
      throw new VikingError('VIKING_E_NGINX_MISSING', `--router-engine nginx: no ${bin} binary on PATH (${process.env.PATH ?? ''}). Install it (Debian: apt-get install nginx-light) or start with --router-engine node`);
    }
    if (code !== 0) throw new Error(`nginx rejected the configuration (${file}): ${output.trim().split('\n').slice(-3).join(' | ')}`);
  }

  private async writeCerts(bundles: readonly CertBundle[]): Promise<NginxCert[]> {
    const dir = path.join(this.o.dir, 'certs');
    const out: NginxCert[] = [];
    const used = new Set<string>();
    for (const b of bundles) {
      const id = createHash('sha256').update(b.fingerprint).update('\0').update(b.keyPem).digest('hex').slice(0, 32);
      const certFile = path.join(dir, `${id}.crt`);
      const keyFile = path.join(dir, `${id}.key`);
      if (this.badCerts.has(id)) continue;
      if (!this.certFiles.has(id)) {
        // What the Node engine refuses (tls-certs.ts) nginx refuses too, and then for the whole configuration: left out here.
        try {
          tls.createSecureContext({ cert: b.certPem, key: b.keyPem });
        } catch (err) {
          this.badCerts.add(id);
          this.o.log?.(`router (nginx): certificate ${b.domain} left out: ${(err as Error).message}`);
          continue;
        }
        await writeFile(keyFile, b.keyPem, { mode: 0o600 });
        await writeFile(certFile, b.certPem, { mode: 0o600 });
        this.certFiles.add(id);
      }
      used.add(id);
      out.push({ domain: b.domain, names: b.names, notBefore: b.notBefore, notAfter: b.notAfter, certFile, keyFile });
    }
    this.wantedCerts = used;
    return out;
  }

  private wantedCerts = new Set<string>();
  /** Bundles that make no TLS context (key does not match, unreadable PEM), by id. */
  private readonly badCerts = new Set<string>();

  /** Certificate files no configuration names any more (after a reload, when no worker reads the old one). */
  private async removeUnusedCerts(): Promise<void> {
    const dir = path.join(this.o.dir, 'certs');
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const id = f.replace(/\.(crt|key)$/, '');
      if (this.wantedCerts.has(id)) continue;
      await rm(path.join(dir, f), { force: true });
      this.certFiles.delete(id);
    }
  }

  /** Renders again when a certificate starts or stops being valid (redirects and SNI follow validity). */
  private scheduleValidity(at: number): void {
    clearTimeout(this.validityTimer);
    if (!Number.isFinite(at)) return;
    this.validityTimer = setTimeout(() => this.kick(), Math.min(2 ** 31 - 1, Math.max(0, at - Date.now()) + 50)).unref();
  }

  /**
   * nginx under a sh that holds this process's pipe: when the pipe closes
   * (this process exits, even by SIGKILL), the sh stops nginx. The sh prints
   * nginx's pid first.
   *
   * The pipe is kept as fd 3 for the watcher: a non-interactive sh gives a
   * background command /dev/null as its stdin, so `( cat; kill ) &` read
   * /dev/null, sent its QUIT at once (while nginx still ignored it, as sh
   * starts background commands) and was gone: a SIGKILLed host left its nginx
   * serving, holding the ports (the next host on them failed: bind() ...
   * Address already in use, acme-pebble-nginx.test.ts).
   */
  private async spawnNginx(): Promise<void> {
    const bin = this.o.binary ?? 'nginx';
    // A background job of a non-interactive sh gets /dev/null as stdin: the pipe is kept on fd 3 for the watcher.
    const script = [
      'exec 3<&0',
      '"$0" -p "$1" -c "$2" -g "daemon off;" </dev/null 3<&- &',
      'n=$!',
      'echo "$n"',
      '( cat <&3 >/dev/null; kill -QUIT "$n" 2>/dev/null ) &',
      'exec 3<&-',
      'wait "$n"',
    ].join('\n');
    // Its own process group (detached: setsid): nginx workers outlive a master killed from outside (they keep
    // serving the old configuration and hold the ports, so the restarted nginx cannot bind); exited() stops
    // them through the group.
    const child = spawn('sh', ['-c', script, bin, this.o.dir, this.configFile], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
      for (const l of d.toString().split('\n')) if (l.trim()) this.o.log?.(`router (nginx): ${l.trim()}`);
    });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0]!;
        if (out.includes('\n')) resolve(Number(line));
      });
      child.once('exit', (code) => reject(new Error(`nginx exited (${code}) before it started: ${err.trim()}`)));
    });
    this.master = pid;
    child.once('exit', (code) => this.exited(child, code));
    const up = await waitFor(() => this.workerPids().length >= Math.max(1, this.o.workers), RELOAD_START_MS);
    if (!up) throw new Error(`nginx did not start its workers in ${RELOAD_START_MS / 1000} s: ${await this.errorTail()}`);
  }

  /** nginx died on its own: start it again, backing off, with the newest state. */
  private exited(child: ChildProcess, code: number | null): void {
    child.stdin?.destroy();
    // Workers of a master that died without stopping them (SIGKILL) still run in the sh's process group:
    // QUIT closes their listening sockets now and lets requests in flight finish.
    if (child.pid) {
      try {
        process.kill(-child.pid, 'SIGQUIT');
      } catch {
        /* nothing left in the group */
      }
    }
    if (this.stopping || this.child !== child) return;
    this.child = undefined;
    this.master = 0;
    this.up = false;
    this.restartLater(`nginx exited (${code})`);
  }

  private restartLater(why: string): void {
    // One restart pending at most: a start whose nginx dies reports it twice (its exit, and the start's failure).
    if (this.restartTimer || this.stopping) return;
    const wait = Math.min(30_000, 500 * 2 ** this.restarts++);
    this.o.log?.(`router (nginx): ${why}; starting it again in ${wait} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      void (async () => {
        try {
          await this.launch();
          this.restarts = 0;
        } catch (err) {
          if (!this.child && !this.stopping) this.restartLater(`restart failed: ${(err as Error).message}`);
        }
      })();
    }, wait).unref();
  }

  /**
   * The drain flag's directory, named in `drain-dir` under the data dir so
   * the next start removes the one a SIGKILLed host process left behind.
   */
  private async makeRunDir(): Promise<void> {
    const note = path.join(this.o.dir, 'drain-dir');
    const stale = (await readFile(note, 'utf8').catch(() => '')).trim();
    if (stale.startsWith(path.join(os.tmpdir(), 'viking-nginx-')) && !stale.includes('..')) await rm(stale, { recursive: true, force: true });
    this.runDir = await mkdtemp(path.join(os.tmpdir(), 'viking-nginx-'));
    await chmod(this.runDir, 0o711);
    await writeFile(note, this.runDir, { mode: 0o600 });
  }

  /** An nginx of an earlier host process that did not stop (its pid file names a live nginx of this prefix). */
  private async stopOrphan(): Promise<void> {
    const pid = Number((await readFile(path.join(this.o.dir, 'nginx.pid'), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 1) return;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmd.includes('nginx') || !cmd.includes(this.o.dir)) return;
    this.o.log?.(`router (nginx): stopping the nginx an earlier run left (pid ${pid})`);
    signal(pid, 'SIGQUIT');
    if (!(await waitFor(() => !alive(pid), 5000))) signal(pid, 'SIGKILL');
  }

  private async errorTail(): Promise<string> {
    const text = await readFile(this.errorLog, 'utf8').catch(() => '');
    return text.trim().split('\n').slice(-3).join(' | ') || '(error.log is empty)';
  }
}

/** A process's children (nginx's workers of a master). */
export function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** A configuration without its first line (the comment naming the generation and revision). */
const bodyOf = (text: string): string => text.slice(text.indexOf('\n') + 1);

/** nginx retitles a worker that is on its way out (`nginx: worker process is shutting down`). */
function shuttingDown(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('shutting down');
  } catch {
    return true; // gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends a signal to a process, or to a process group when `pid` is negative; never to 0, 1 or -1. */
function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid === 0 || pid === 1 || pid === -1 || !Number.isInteger(pid)) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}

function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => resolve({ code: -1, output: err.message }));
    child.once('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

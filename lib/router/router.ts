/**
 * The front router that runs on every host: Host header -> node -> healthy
 * endpoints (or a website's files), from a table rebuilt on every change
 * under /domains, /stack and /ports and swapped in memory. Any host's router
 * serves every domain, so DNS or a load balancer can point at all of them.
 *
 * This is the host process's handle on it. The etcd side (RouteFeed) runs
 * here; the HTTP side runs in `workers` worker processes sharing one port
 * (default: one per core), or in this process when `workers` is 0. Once every
 * worker serves a revision, it is written to `/routers/<host>` (see acks.ts)
 * so slaves stop containers only after all routers stopped sending to them.
 */
import os from 'node:os';
import type { Etcd3 } from 'etcd3';
import { freePort } from '../net.js';
import { routerKey } from '../store/keys.js';
import type { RouterAck } from '../store/records.js';
import { RouteFeed } from './feed.js';
import { RouterServer, type RouterTuning } from './server.js';
import { RouterWorkers } from './workers.js';
import { randomBytes } from 'node:crypto';
import { CertFeed } from './tls-feed.js';
import type { CertBundle } from './tls-certs.js';
import type { RouteSnapshot } from './snapshot.js';
import type { RouteTable } from './route-table.js';
import type { BalanceMode } from './upstreams.js';
import { ChallengeFeed } from './challenge-feed.js';
import { emptyDump, sumDumps, type TrafficDump } from './traffic-counters.js';
import { AccessLogHub } from './access-hub.js';
import { NginxPlane } from './nginx-plane.js';
import path from 'node:path';

import { STOP_DRAIN_MS, type RouterEngine } from './engine.js';
export type { RouterEngine } from './engine.js';

/** Puts that vanish with the host (its lease). */
export interface AckWriter {
  put(key: string, value: string): Promise<void>;
}

export interface RouterOptions {
  client: Etcd3;
  hostName: string;
  dataDir: string;
  port: number;
  host?: string;
  /** Worker processes; 0 serves from this process. Default: one per core. */
  workers?: number;
  balance?: BalanceMode;
  /** HTTPS port beside `port`; 0 or absent: no HTTPS; -1: any free port (tests). */
  httpsPort?: number;
  /** Client-facing limits: trusted proxies, head and idle timeouts, connection cap. */
  tuning?: RouterTuning;
  /** Count traffic (default true); false only for the bench's baseline. */
  metrics?: boolean;
  /** TLS session resumption (default true); false only for the bench's full-handshake rows. */
  tlsResumption?: boolean;
  /** Default 'node'. 'nginx': nginx listens and proxies, this process feeds it and serves what it passes on. */
  engine?: RouterEngine;
  /** The nginx binary of the nginx engine (default `nginx` on PATH). */
  nginxBinary?: string;
  log?: (msg: string) => void;
}

export function defaultRouterWorkers(): number {
  const cores = os.availableParallelism();
  return cores > 1 ? cores : 0;
}

export class Router {
  private readonly feed: RouteFeed;
  /** ACME HTTP-01 answers from etcd, handed to the HTTP servers like the routes. */
  private readonly challenges: ChallengeFeed;
  private readonly certFeed: CertFeed | undefined;
  private firstCerts: ((certs: CertBundle[]) => void) | undefined;
  private local: RouterServer | undefined;
  private workers: RouterWorkers | undefined;
  /** The nginx engine's nginx; `local` (plain) and `localTls` (what nginx took over TLS) are then its loopback fallbacks. */
  private plane: NginxPlane | undefined;
  private localTls: RouterServer | undefined;
  private first: ((snap: RouteSnapshot) => void) | undefined;
  private ackWriter: AckWriter | undefined;
  private acked = '0';
  private acking = false;
  private stopped = false;
  /** This host's router's access log lines (nodes with access_log: true), kept and followed here. */
  readonly accessLog: AccessLogHub;
  port = 0;
  /** The HTTPS port served; 0 when HTTPS is off. */
  httpsPort = 0;

  constructor(private readonly o: RouterOptions) {
    this.accessLog = new AccessLogHub(o.hostName);
    this.feed = new RouteFeed({
      client: o.client,
      hostName: o.hostName,
      dataDir: o.dataDir,
      ...(o.log ? { log: o.log } : {}),
      onSnapshot: (snap) => this.onSnapshot(snap),
    });
    this.challenges = new ChallengeFeed({
      client: o.client,
      ...(o.log ? { log: o.log } : {}),
      onChange: (entries) => {
        this.local?.challenges.replace(entries);
        this.workers?.sendChallenges(entries);
      },
    });
    if (o.httpsPort) {
      this.certFeed = new CertFeed({ client: o.client, ...(o.log ? { log: o.log } : {}), onCertificates: (certs) => this.onCertificates(certs) });
    }
  }

  get workerCount(): number {
    return this.o.workers ?? defaultRouterWorkers();
  }

  /** Reads the routes, starts serving them, and resolves with the port. */
  async start(): Promise<number> {
    const firstSnapshot = new Promise<RouteSnapshot>((resolve) => (this.first = resolve));
    const firstCerts = new Promise<CertBundle[]>((resolve) => (this.firstCerts = resolve));
    this.feed.start();
    this.certFeed?.start();
    const snap = await firstSnapshot;
    // HTTPS starts with the certificates etcd has now, never with none.
    const certs = this.certFeed ? await firstCerts : [];
    const host = this.o.host ?? '0.0.0.0';
    const count = this.workerCount;
    if (this.o.engine === 'nginx') {
      await this.startNginx(snap, certs, host);
    } else if (count === 0) {
      this.local = new RouterServer({
        ...this.o.tuning,
        balance: this.o.balance ?? 'least-conn',
        ...(this.o.metrics === false ? { metrics: false } : {}),
        ...(this.o.tlsResumption === false ? { tlsResumption: false } : {}),
        ...(this.o.log ? { log: this.o.log } : {}),
        accessLog: (batch) => {
          this.accessLog.add(batch);
          this.local?.accessLog?.taken();
        },
      });
      this.local.apply(snap);
      this.local.applyCertificates(certs);
      this.port = await this.local.listen(this.o.port, host);
      if (this.o.httpsPort) this.httpsPort = await this.local.listenTls(Math.max(0, this.o.httpsPort), host);
    } else {
      // Workers must all bind the same concrete port, also when a restarted one joins later.
      this.port = this.o.port === 0 ? await freePort(host) : this.o.port;
      if (this.o.httpsPort) this.httpsPort = this.o.httpsPort < 0 ? await freePort(host) : this.o.httpsPort;
      this.workers = new RouterWorkers({
        count,
        port: this.port,
        host,
        balance: this.o.balance ?? 'least-conn',
        ...(this.o.tuning ? { tuning: this.o.tuning } : {}),
        ...(this.o.metrics === false ? { metrics: false } : {}),
        ...(this.o.tlsResumption === false ? { tlsResumption: false } : {}),
        ...(this.httpsPort ? { httpsPort: this.httpsPort, ticketKeys: randomBytes(48).toString('base64') } : {}),
        ...(this.o.log ? { log: this.o.log } : {}),
        onApplied: () => this.ack(),
        onAccess: (batch) => this.accessLog.add(batch),
      });
      this.workers.sendCertificates(certs);
      await this.workers.start(snap);
    }
    // A change that came while the servers were starting.
    const latest = this.feed.latest;
    if (latest && latest !== snap) this.onSnapshot(latest);
    const latestCerts = this.certFeed?.latest;
    if (latestCerts && latestCerts !== certs) this.onCertificates(latestCerts);
    this.challenges.start();
    this.ack();
    return this.port;
  }

  async stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private stopping: Promise<void> | undefined;

  private async stopOnce(): Promise<void> {
    this.stopped = true;
    await this.feed.stop();
    await this.challenges.stop();
    await this.certFeed?.stop();
    await this.plane?.stop();
    // The Node engine's servers close as nginx does (STOP_DRAIN_MS); on the nginx engine they are its fallbacks,
    // whose only client, nginx, has stopped already.
    const drainMs = this.plane ? 0 : STOP_DRAIN_MS;
    await this.workers?.stop(2000, drainMs);
    await this.local?.close(2000, drainMs);
    await this.localTls?.close();
  }

  /**
   * The nginx engine: the Node server listens on a loopback port only, as
   * the fallback for what nginx passes on (websites, challenges, pages), and
   * nginx takes the router's ports with `workerCount` workers (at least 1).
   */
  private async startNginx(snap: RouteSnapshot, certs: CertBundle[], host: string): Promise<void> {
    // Two fallback servers, so what they forward says the scheme the client used; both keep nginx's X-Forwarded-For.
    const fallback = (proto: string): RouterServer => {
      const server: RouterServer = new RouterServer({
        balance: this.o.balance ?? 'least-conn',
        requireHost: false,
        behindNginx: true,
        proto,
        ...(this.o.metrics === false ? { metrics: false } : {}),
        ...(this.o.log ? { log: this.o.log } : {}),
        accessLog: (batch) => {
          this.accessLog.add(batch);
          server.accessLog?.taken();
        },
      });
      server.apply(snap);
      return server;
    };
    this.local = fallback('http');
    this.localTls = fallback('https');
    const fallbackPort = await this.local.listen(0, '127.0.0.1');
    const fallbackTlsPort = await this.localTls.listen(0, '127.0.0.1');
    this.port = this.o.port === 0 ? await freePort(host) : this.o.port;
    if (this.o.httpsPort) this.httpsPort = this.o.httpsPort < 0 ? await freePort(host) : this.o.httpsPort;
    this.plane = new NginxPlane({
      dir: path.join(this.o.dataDir, 'nginx'),
      ...(this.o.nginxBinary ? { binary: this.o.nginxBinary } : {}),
      listen: { host, port: this.port, httpsPort: this.httpsPort },
      workers: Math.max(1, this.workerCount),
      fallbackPort,
      fallbackTlsPort,
      balance: this.o.balance ?? 'least-conn',
      ...(this.o.tuning ? { tuning: this.o.tuning } : {}),
      ...(this.o.metrics === false ? { metrics: false } : {}),
      ...(this.o.tlsResumption === false ? { tlsResumption: false } : {}),
      accessLog: (batch) => {
        this.accessLog.add(batch);
        this.plane?.accessLog?.taken();
      },
      onServed: () => this.ack(),
      ...(this.o.log ? { log: this.o.log } : {}),
    });
    await this.plane.start(snap, certs);
  }

  /** From now on, acknowledge served revisions under this (leased) writer. */
  attachAcks(writer: AckWriter): void {
    this.ackWriter = writer;
    this.reack();
  }

  /** The lease was replaced: put the ack again. */
  reack(): void {
    this.acked = '0';
    this.ack();
  }

  /** The revision every HTTP server of this router serves. */
  get servedRevision(): string | undefined {
    if (this.plane && this.local && this.localTls) {
      return [this.plane.revision, this.local.revision, this.localTls.revision].reduce((a, b) => (BigInt(a) < BigInt(b) ? a : b));
    }
    return this.local ? this.local.revision : this.workers?.servedRevision();
  }

  /** The nginx engine's master process (a reload keeps it, a restart does not); undefined on the Node engine. */
  get nginxMasterPid(): number | undefined {
    return this.plane?.masterPid;
  }

  /** Which engine carries the requests. */
  get engine(): RouterEngine {
    return this.o.engine ?? 'node';
  }

  /** The table of an in-process router (workers: 0), for tests. */
  get routes(): RouteTable | undefined {
    return this.local?.routes;
  }

  /** This router's traffic counters, summed over its worker processes (asked over IPC now). */
  async trafficCounters(): Promise<TrafficDump> {
    if (this.plane) await this.plane.catchUp();
    if (this.plane) return sumDumps([this.local, this.localTls, this.plane].map((x) => x?.counters?.dump() ?? emptyDump()));
    if (this.local) return this.local.counters?.dump() ?? emptyDump();
    return this.workers ? this.workers.collectCounters() : emptyDump();
  }

  get snapshot(): RouteSnapshot | undefined {
    return this.feed.latest;
  }

  /** Worker process ids (empty when serving in-process); `listening`: only those that take connections. */
  workerPids(o: { listening?: boolean } = {}): number[] {
    if (this.plane) return this.plane.workerPids();
    return (o.listening ? this.workers?.listeningPids() : this.workers?.pids()) ?? [];
  }

  private onCertificates(certs: CertBundle[]): void {
    if (this.firstCerts) {
      const first = this.firstCerts;
      this.firstCerts = undefined;
      return first(certs);
    }
    if (this.plane) return this.plane.applyCertificates(certs);
    this.local?.applyCertificates(certs);
    this.workers?.sendCertificates(certs);
  }

  private onSnapshot(snap: RouteSnapshot): void {
    if (this.first) {
      const first = this.first;
      this.first = undefined;
      return first(snap);
    }
    if (this.local) {
      this.local.apply(snap);
      this.localTls?.apply(snap);
      this.plane?.apply(snap);
      this.ack();
    } else this.workers?.send(snap);
  }

  /** Writes the served revision once it moved; one write at a time, the last one wins. */
  private ack(): void {
    if (this.acking || !this.ackWriter || this.stopped) return;
    const served = this.servedRevision;
    if (served === undefined || BigInt(served) <= BigInt(this.acked)) return;
    this.acking = true;
    const record: RouterAck = { host: this.o.hostName, revision: served, workers: this.workerCount, at: new Date().toISOString() };
    this.ackWriter
      .put(routerKey(this.o.hostName), JSON.stringify(record))
      .then(
        () => {
          if (BigInt(served) > BigInt(this.acked)) this.acked = served;
        },
        (err: Error) => this.o.log?.(`router: ack failed: ${err.message}`),
      )
      .finally(() => {
        this.acking = false;
        // Something newer may have been applied meanwhile.
        const now = this.servedRevision;
        if (now !== undefined && BigInt(now) > BigInt(this.acked)) setTimeout(() => this.ack(), this.acked === served ? 0 : 200);
      });
  }
}

/**
 * bench/router: the viking router against nginx, side by side, in one run.
 *
 * Starts a real etcd, N backend processes, nginx (the Debian binary, its own
 * temporary prefix, upstream keepalive) and the viking router (routes and
 * the certificate read from etcd through the real feeds, served by its
 * worker processes), then runs wrk against each in turn, several rounds
 * interleaved so background load hits all alike, and prints the medians:
 * req/s, p50, p99, errors, CPU per request and the ratio to nginx with the
 * same number of workers. The headline is equal workers (`--workers`, one
 * per core by default) for plain HTTP keep-alive, HTTPS keep-alive and new
 * TLS handshakes (every request on a new connection, `Connection: close`),
 * with the same certificate (ECDSA P-256, from a throwaway openssl CA) in
 * both; 1 worker each is measured too (`--single 0` skips it).
 *
 * TLS is measured alike on both sides: both accept TLS 1.2 and 1.3 (node's
 * default; nginx 1.22's default leaves 1.3 out) and negotiate 1.3 with wrk.
 * New handshakes come in two rows: "full", with session resumption off on
 * both (nginx `ssl_session_tickets off; ssl_session_cache off;`, the viking
 * router with `tlsResumption: false`), and "resumed", with both at their
 * defaults (session tickets on). wrk keeps each connection's TLS session
 * and offers it on the next connection, so with tickets on, some or all
 * handshakes are resumed ones; how many is measured, not assumed: before
 * the runs, a short wrk run per new-handshake row counts the negotiated
 * version and the resumed handshakes on the server side (nginx: the same
 * TLS settings in a twin server block that logs `$ssl_protocol` and
 * `$ssl_session_reused`; viking: a TlsListener in this process built with
 * the options the router gives its workers, counting `isSessionReused()`),
 * and the table says what each row was. The cost of
 * the traffic counters (issue 18) is measured in the same run: a second
 * viking router with counting turned off (`metrics: false`) at the headline
 * worker count, interleaved with the others, and the on/off ratios printed
 * at the end (`--metrics-off 0` skips it). `--access-log 1` gives the node
 * access_log: true, so every viking router logs every request (compare
 * with a run without it). Everything it started is stopped and removed at
 * the end.
 *
 *   node dist/bench/router.js [--duration 10] [--runs 5] [--connections 64]
 *                             [--threads 2] [--backends 2] [--workers N] [--single 1] [--metrics-off 1] [--access-log 0] [--nginx-engine 1]
 *                             [--engine-round-robin 0]
 *
 * `--nginx-engine 1` (the default) adds the rows of viking's nginx engine
 * (`viking host --router-engine nginx`): the same Router class with nginx
 * rendered from the same etcd keys carrying the requests, at the headline
 * worker count, against the same hand-written nginx. Its CPU/request counts
 * nginx's master and workers and this process (which feeds nginx and reads
 * its request log for the traffic counters).
 *
 * Scheduling groups. With `kernel.sched_autogroup_enabled` (Debian's
 * default) and everything in the root cgroup (this machine; a systemd
 * service has a cgroup of its own, where autogroups play no part), the
 * kernel shares the CPU fairly between sessions, not processes. The nginx
 * engine's nginx runs in a session of its own (nginx-plane.ts starts it
 * detached, so its process group can be stopped as one). Measured with a
 * peer nginx, wrk and the backends all in this process's session, the same
 * rendered configuration got 0.7-0.8x the throughput and 2-6x the p99 when
 * started in its own session, and matched the peer in this one. So every
 * party runs in a session of its own: wrk (setsid), each backend and the
 * peer nginx (detached), the engine's nginx (its plane), and the Node
 * router in this process's session (its workers are its children). No
 * proxy then shares a scheduling group with the load generator or the
 * backends, and each gets the same share as the other proxies.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { startEtcdMember, type EtcdMember } from '../lib/up/etcd-process.js';
import { freePort } from '../lib/net.js';
import { connectEtcd } from '../lib/store/client.js';
import { certKey, domainKey, portsKey, stackKey } from '../lib/store/keys.js';
import { checkCertificate } from '../lib/certs/custom.js';
import { makeTestCa } from '../test/helpers/test-ca.js';
import type { DomainRecord, PortEndpoint, StackRecord } from '../lib/store/records.js';
import { Router, defaultRouterWorkers } from '../lib/router/router.js';
import { Field, TrafficCounters } from '../lib/router/traffic-counters.js';
import { TlsListener } from '../lib/router/tls-listener.js';
import { TlsCertificates, type CertBundle } from '../lib/router/tls-certs.js';
import { bundleOf } from '../lib/router/tls-feed.js';
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/**
 * What counting adds to one request, measured alone (no I/O, so the load of
 * the machine hardly moves it): the two clock reads and the counter updates
 * an exchange of the fast path does, in ns per request.
 */
export function countingCostNs(iterations = 2_000_000): number {
  const c = new TrafficCounters();
  const slots = [1, 2, 3, 4].map((replica) => c.slot({ stack: 'bench', node: 'web', domain: HOST, replica }));
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const slot = slots[i & 3]!;
      const t0 = performance.now();
      c.add(slot, Field.Active, 1);
      c.add(slot, Field.Active, -1);
      c.answered(slot, 200, false, performance.now() - t0, 120, 480);
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / iterations);
  }
  return best;
}

const run = promisify(execFile);
export const HOST = 'bench.local';

interface Options {
  duration: number;
  runs: number;
  connections: number;
  threads: number;
  backends: number;
  workers: number;
  single: number;
  /** 1: also run the router with its traffic counters off, to measure what counting costs. */
  'metrics-off': number;
  /** 1: the node has access_log: true (every request logged). */
  'access-log': number;
  /** 1: also the viking router with `engine: 'nginx'` (nginx-plane.ts) at the headline worker count. */
  'nginx-engine': number;
  /** 1: also the nginx engine with `balance: 'round-robin'` (plain HTTP), beside its default least-conn. */
  'engine-round-robin': number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { duration: 10, runs: 5, connections: 64, threads: 2, backends: 2, workers: defaultRouterWorkers() || 1, single: 1, 'metrics-off': 1, 'access-log': 0, 'nginx-engine': 1, 'engine-round-robin': 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in o) || !Number.isFinite(value)) throw new Error(`unknown option ${argv[i]} ${argv[i + 1] ?? ''}; see the header of bench/router.ts`);
    o[key] = value;
  }
  return o;
}

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU time of the proxy's processes per request, in µs (user + system). */
  cpuUs?: number;
  /** Of cpuUs, what the viking router's primary (this process: it accepts every connection and hands it to a worker) spent. */
  primaryUs?: number;
}

/** user+system CPU seconds of a process, from /proc (Linux). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** A process and its direct children (nginx's master and worker). */
export async function withChildren(pid: number): Promise<number[]> {
  const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return [pid, ...kids.split(/\s+/).filter(Boolean).map(Number)];
}

/** Milliseconds from wrk's `850.00us`, `2.42ms`, `1.01s`. */
function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0;
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: socketErrors + (non2xx ? Number(non2xx[1]) : 0),
    requests: num(/(\d+) requests in/),
  };
}

type Group = 'http' | 'https keep-alive' | 'https new handshakes (full)' | 'https resumed handshakes';
const newHandshakes = (g: Group): boolean => g === 'https new handshakes (full)' || g === 'https resumed handshakes';

/** What wrk is pointed at: plain or TLS, kept-alive or a new connection per request. */
interface Target {
  name: string;
  /** Rows with the same group and workers are compared (nginx's row is the base). */
  group: Group;
  workers: number;
  nginx: boolean;
  /** A viking router with its traffic counters off (the baseline of the counting cost). */
  metricsOff?: boolean;
  /** viking's nginx engine (`--nginx-engine`). */
  engine?: boolean;
  /** A variant of a row (`--engine-round-robin`): never the "metrics on" side of the counting table. */
  variant?: boolean;
  /** The processes now (nginx's workers change when it reloads). */
  refresh?: () => number[];
  port: number;
  pids: number[];
}

async function wrk(t: Pick<Target, 'port' | 'group'>, o: Options, seconds = o.duration, pids: number[] = []): Promise<WrkResult> {
  const cpu = async (): Promise<number> => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  const before = await cpu();
  const primaryBefore = pids.includes(process.pid) ? await cpuSeconds(process.pid) : NaN;
  // TLS: the URL names 127.0.0.1, which wrk also sends as SNI; the bench certificate covers it.
  const url = `${t.group === 'http' ? 'http' : 'https'}://127.0.0.1:${t.port}/`;
  const close = newHandshakes(t.group) ? ['-H', 'Connection: close'] : [];
  // wrk in a session of its own (setsid): see the header on scheduling groups.
  const { stdout } = await run('setsid', ['-w', 'wrk', `-t${o.threads}`, `-c${o.connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, ...close, url], { maxBuffer: 1 << 20 });
  const used = (await cpu()) - before;
  const primaryUsed = (await cpuSeconds(process.pid)) - primaryBefore;
  const result = parseWrk(stdout);
  if (!pids.length || result.requests === 0) return result;
  return { ...result, cpuUs: (used / result.requests) * 1e6, ...(Number.isNaN(primaryUsed) ? {} : { primaryUs: (primaryUsed / result.requests) * 1e6 }) };
}

/** What a new-handshake row really measured: the TLS version negotiated with wrk and how many handshakes resumed a session. */
interface TlsCheck {
  protocols: string;
  resumed: number;
  handshakes: number;
}

const CHECK_SECONDS = 2;

function tallied(entries: Array<[protocol: string, resumed: boolean]>): TlsCheck {
  return {
    protocols: [...new Set(entries.map(([p]) => p))].sort().join(' + ') || 'none',
    resumed: entries.filter(([, r]) => r).length,
    handshakes: entries.length,
  };
}

/** nginx: wrk against the twin server block that logs `$server_port $ssl_protocol $ssl_session_reused`. */
async function checkNginx(checkPort: number, logFile: string, group: Group, o: Options): Promise<TlsCheck> {
  await wrk({ port: checkPort, group }, o, CHECK_SECONDS);
  const lines = (await readFile(logFile, 'utf8').catch(() => '')).split('\n');
  return tallied(lines.map((l) => l.split(' ')).filter((f) => f[0] === String(checkPort)).map((f) => [f[1] ?? '', f[2] === 'r']));
}

/**
 * viking: wrk against a TlsListener in this process with the options the
 * router gives its workers' listeners (the certificate by SNI, shared ticket
 * keys, or resumption off), answering a fixed 200 and counting what each
 * handshake was.
 */
async function checkViking(cert: CertBundle, resumption: boolean, group: Group, o: Options): Promise<TlsCheck> {
  const certs = new TlsCertificates();
  certs.apply([cert]);
  const seen: Array<[string, boolean]> = [];
  const sockets = new Set<TLSSocket>();
  const listener = new TlsListener({
    certs,
    accept: (s) => {
      seen.push([s.getProtocol() ?? '?', s.isSessionReused()]);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      s.on('end', () => s.destroy());
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
    },
    onRequest: () => {},
    handshakeTimeoutMs: 10_000,
    idleMs: 10_000,
    maxConnections: 4096,
    ...(resumption ? { ticketKeys: randomBytes(48) } : { resumption: false }),
  });
  const port = await listener.listen(0, '127.0.0.1');
  try {
    await wrk({ port, group }, o, CHECK_SECONDS);
  } finally {
    for (const s of sockets) s.destroy();
    await listener.close(0);
  }
  return tallied(seen);
}

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready in 10 s`)), 10_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

/**
 * Children started detached (a session of their own, see the header) are not in this process's group, so
 * Ctrl-C or a kill of the bench would leave them running (nginx holding its ports): when this process exits,
 * for any reason, each one's whole group is killed. SIGINT and SIGTERM exit through the 'exit' event.
 */
const detachedChildren = new Set<ChildProcess>();
function killOnExit(child: ChildProcess): void {
  if (detachedChildren.size === 0) {
    process.once('exit', () => {
      for (const c of detachedChildren) signalGroup(c, 'SIGKILL');
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  }
  detachedChildren.add(child);
  child.once('exit', () => detachedChildren.delete(child));
}

/** Signals a detached child's process group (itself and, for nginx, its workers). */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* gone */
  }
}

export async function startBackends(n: number): Promise<{ ports: number[]; children: ChildProcess[] }> {
  const script = fileURLToPath(new URL('./router-backend.js', import.meta.url));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    // A session of its own: a scheduling group of its own where the kernel groups by session (see the header).
    const child = spawn(process.execPath, [script, String(port), `b${i + 1}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    children.push(child);
    killOnExit(child);
    await waitReady(child, `backend ${i + 1}`).catch((err: Error) => {
      for (const c of children) c.kill('SIGKILL');
      throw err;
    });
    ports.push(port);
  }
  return { ports, children };
}

/** nginx from the Debian package: `workers` workers, upstream keepalive, HTTPS with the bench certificate, everything under its own prefix. */
interface NginxPorts {
  port: number;
  /** TLS, nginx's defaults for sessions (tickets on): keep-alive and resumed handshakes. */
  tlsPort: number;
  /** TLS with resumption off (no tickets, no session cache): full handshakes. */
  fullPort: number;
  /** Twins of tlsPort and fullPort that log the TLS version and whether the session was resumed (the check before the runs). */
  checkPort: number;
  checkFullPort: number;
  logFile: string;
}

/** Both sides accept what node accepts by default (TLS 1.2 and 1.3); nginx 1.22's default is TLSv1 TLSv1.1 TLSv1.2. */
const NGINX_TLS = 'ssl_protocols TLSv1.2 TLSv1.3;';
const NGINX_NO_RESUMPTION = 'ssl_session_tickets off; ssl_session_cache off;';

export async function startNginx(dir: string, backendPorts: number[], workers: number, cert: { certFile: string; keyFile: string }): Promise<NginxPorts & { child: ChildProcess }> {
  const port = await freePort();
  const tlsPort = await freePort();
  const fullPort = await freePort();
  const checkPort = await freePort();
  const checkFullPort = await freePort();
  const logFile = path.join(dir, 'logs', 'tls-check.log');
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  const location = `location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }`;
  const tlsServer = (listen: number, extra: string, log: string): string => `
  server {
    listen 127.0.0.1:${listen} ssl;
    ssl_certificate ${cert.certFile};
    ssl_certificate_key ${cert.keyFile};
    ${NGINX_TLS} ${extra}
    ${log}
    ${location}
  }`;
  const checkLog = `access_log ${logFile} tlscheck;`;
  const conf = `worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  log_format tlscheck '$server_port $ssl_protocol $ssl_session_reused';
  upstream app {
    ${backendPorts.map((p) => `server 127.0.0.1:${p};`).join('\n    ')}
    keepalive 256;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:${port};
    ${location}
  }${tlsServer(tlsPort, '', '')}${tlsServer(fullPort, NGINX_NO_RESUMPTION, '')}${tlsServer(checkPort, '', checkLog)}${tlsServer(checkFullPort, NGINX_NO_RESUMPTION, checkLog)}
}
`;
  await writeFile(path.join(dir, 'nginx.conf'), conf);
  // Its own session, as the nginx engine's nginx (nginx-plane.ts starts it detached): the same scheduling group (see the header).
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  killOnExit(child);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}; see ${dir}/logs/error.log`);
    try {
      await getStatus(port);
      return { port, tlsPort, fullPort, checkPort, checkFullPort, logFile, child };
    } catch {
      if (Date.now() > deadline) {
        signalGroup(child, 'SIGKILL');
        throw new Error('nginx did not start in 10 s');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The routes a push of one node with N replicas would leave in etcd. */
export async function writeRoutes(etcdUrl: string, backendPorts: number[], accessLog = false): Promise<void> {
  const client = connectEtcd(etcdUrl);
  const stack: StackRecord = { name: 'bench', current: 'v1', lastRelease: 1, releases: [], domains: { web: [HOST] }, websites: {}, ...(accessLog ? { accessLog: ['web'] } : {}) };
  await client.put(stackKey('bench')).value(JSON.stringify(stack));
  const dom: DomainRecord = { stack: 'bench', node: 'web', kind: 'container' };
  await client.put(domainKey(HOST)).value(JSON.stringify(dom));
  for (const [i, hostPort] of backendPorts.entries()) {
    const e: PortEndpoint = { stack: 'bench', tag: 'v1', node: 'web', instance: i + 1, host: 'bench', ip: '127.0.0.1', port: 80, hostPort, proto: 'tcp', container: `b${i + 1}`, primary: true };
    await client.put(portsKey(e)).value(JSON.stringify(e));
  }
  client.close();
}

/** One GET with the bench Host header (fetch() would not let us set Host). */
export function getStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers: { host: HOST }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-router-'));
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  try {
    const etcdClientPort = await freePort();
    const etcd: EtcdMember = await startEtcdMember({ name: 'bench', dataDir: path.join(dir, 'etcd'), clientPort: etcdClientPort, peerPort: await freePort(), logFile: path.join(dir, 'etcd.log') });
    cleanups.push(() => etcd.stop());
    const backends = await startBackends(o.backends);
    cleanups.push(() => backends.children.forEach((c) => c.kill('SIGTERM')));
    await writeRoutes(etcd.url, backends.ports, o['access-log'] === 1);
    // One certificate for both: ECDSA P-256 from a throwaway CA, for the name wrk sends as SNI (the URL's
    // 127.0.0.1: wrk cannot resolve bench.local). It does not cover the Host header's bench.local, so the
    // plain HTTP rows are proxied rather than redirected to HTTPS.
    const ca = await makeTestCa('viking bench root');
    cleanups.push(() => ca.remove());
    const cert = await ca.leaf(['127.0.0.1'], { cn: 'viking bench' });
    const client = connectEtcd(etcd.url);
    cleanups.push(() => client.close());
    const certRecord = checkCertificate('127.0.0.1', cert.certPem, cert.keyPem);
    await client.put(certKey('127.0.0.1')).value(JSON.stringify(certRecord));
    const certBundle = bundleOf(certRecord);
    if (!certBundle) throw new Error('the bench certificate makes no CertBundle');

    const counts = o.single && o.workers !== 1 ? [o.workers, 1] : [o.workers];
    const targets: Target[] = [];
    const routers = new Map<number, Router>();
    let nginxChecks: (NginxPorts & { workers: number }) | undefined;
    const s = (n: number): string => `${n} worker${n > 1 ? 's' : ''}`;
    for (const workers of counts) {
      const nginx = await startNginx(path.join(dir, `nginx-${workers}`), backends.ports, workers, cert);
      cleanups.push(() => nginx.child.kill('SIGTERM'));
      const router = new Router({ client, hostName: `bench-${workers}`, dataDir: path.join(dir, `router-${workers}`), port: 0, httpsPort: -1, host: '127.0.0.1', workers, log });
      const port = await router.start();
      routers.set(workers, router);
      cleanups.push(() => router.stop());
      const nginxPids = await withChildren(nginx.child.pid!);
      const vikingPids = [process.pid, ...router.workerPids()];
      targets.push(
        { name: `nginx, ${s(workers)}`, group: 'http', workers, nginx: true, port: nginx.port, pids: nginxPids },
        { name: `viking, ${s(workers)}`, group: 'http', workers, nginx: false, port, pids: vikingPids },
      );
      // HTTPS only at the headline worker count: that is what the goals compare.
      if (workers !== o.workers) continue;
      if (o['metrics-off']) {
        const bare = new Router({ client, hostName: `bench-${workers}-nometrics`, dataDir: path.join(dir, `router-${workers}-nometrics`), port: 0, httpsPort: -1, host: '127.0.0.1', workers, metrics: false, log });
        const barePort = await bare.start();
        cleanups.push(() => bare.stop());
        const barePids = [process.pid, ...bare.workerPids()];
        targets.push({ name: `viking, ${s(workers)}, metrics off`, group: 'http', workers, nginx: false, metricsOff: true, port: barePort, pids: barePids });
        targets.push({ name: `viking, ${s(workers)}, metrics off`, group: 'https keep-alive', workers, nginx: false, metricsOff: true, port: bare.httpsPort, pids: barePids });
      }
      nginxChecks = { ...nginx, workers };
      if (o['nginx-engine']) {
        const mk = (name: string, resumption: boolean): Router =>
          new Router({ client, hostName: `bench-${workers}-${name}`, dataDir: path.join(dir, `router-${workers}-${name}`), port: 0, httpsPort: -1, host: '127.0.0.1', workers, engine: 'nginx', ...(resumption ? {} : { tlsResumption: false }), log });
        const eng = mk('nginx-engine', true);
        if (o['metrics-off']) {
          // What the engine's counting costs: nginx writes a line per request, this process reads it.
          const bare = new Router({ client, hostName: `bench-${workers}-nginx-bare`, dataDir: path.join(dir, `router-${workers}-nginx-bare`), port: 0, httpsPort: 0, host: '127.0.0.1', workers, engine: 'nginx', metrics: false, log });
          const barePort = await bare.start();
          cleanups.push(() => bare.stop());
          const pids = (): number[] => [process.pid, bare.nginxMasterPid ?? 0, ...bare.workerPids()].filter((p) => p > 0);
          targets.push({ name: `viking nginx engine, ${s(workers)}, metrics off`, group: 'http', workers, nginx: false, engine: true, metricsOff: true, port: barePort, pids: pids(), refresh: pids });
        }
        if (o['engine-round-robin']) {
          // nginx's least_conn (the default balance) against its round robin (what the nginx peer here uses).
          const rr = new Router({ client, hostName: `bench-${workers}-nginx-rr`, dataDir: path.join(dir, `router-${workers}-nginx-rr`), port: 0, httpsPort: 0, host: '127.0.0.1', workers, engine: 'nginx', balance: 'round-robin', log });
          const rrPort = await rr.start();
          cleanups.push(() => rr.stop());
          const pids = (): number[] => [process.pid, rr.nginxMasterPid ?? 0, ...rr.workerPids()].filter((p) => p > 0);
          targets.push({ name: `viking nginx engine, ${s(workers)}, round-robin`, group: 'http', workers, nginx: false, engine: true, variant: true, port: rrPort, pids: pids(), refresh: pids });
        }
        const engFull = mk('nginx-engine-full', false);
        const engPort = await eng.start();
        cleanups.push(() => eng.stop());
        await engFull.start();
        cleanups.push(() => engFull.stop());
        const pidsOf = (r: Router): number[] => [process.pid, r.nginxMasterPid ?? 0, ...r.workerPids()].filter((p) => p > 0);
        const name = `viking nginx engine, ${s(workers)}`;
        targets.push({ name, group: 'http', workers, nginx: false, engine: true, port: engPort, pids: pidsOf(eng), refresh: () => pidsOf(eng) });
        for (const group of ['https keep-alive', 'https new handshakes (full)', 'https resumed handshakes'] as const) {
          const isFull = group === 'https new handshakes (full)';
          const r = isFull ? engFull : eng;
          targets.push({ name, group, workers, nginx: false, engine: true, port: r.httpsPort, pids: pidsOf(r), refresh: () => pidsOf(r) });
        }
      }
      // Full handshakes: a second viking router with resumption off, as nginx's fullPort.
      const full = new Router({ client, hostName: `bench-${workers}-full`, dataDir: path.join(dir, `router-${workers}-full`), port: 0, httpsPort: -1, host: '127.0.0.1', workers, tlsResumption: false, log });
      await full.start();
      cleanups.push(() => full.stop());
      const fullPids = [process.pid, ...full.workerPids()];
      for (const group of ['https keep-alive', 'https new handshakes (full)', 'https resumed handshakes'] as const) {
        const isFull = group === 'https new handshakes (full)';
        targets.push(
          { name: `nginx, ${s(workers)}`, group, workers, nginx: true, port: isFull ? nginx.fullPort : nginx.tlsPort, pids: nginxPids },
          { name: `viking, ${s(workers)}`, group, workers, nginx: false, port: isFull ? full.httpsPort : router.httpsPort, pids: isFull ? fullPids : vikingPids },
        );
      }
    }
    for (const t of targets) {
      if (t.group !== 'http') continue;
      const status = await getStatus(t.port);
      if (status !== 200) throw new Error(`${t.name} answered ${status} for ${HOST}`);
    }
    // What the new-handshake rows measure: TLS version and resumed handshakes under wrk, counted on the server side.
    const checks = new Map<string, TlsCheck>();
    if (nginxChecks) {
      for (const group of ['https new handshakes (full)', 'https resumed handshakes'] as const) {
        const isFull = group === 'https new handshakes (full)';
        const n = await checkNginx(isFull ? nginxChecks.checkFullPort : nginxChecks.checkPort, nginxChecks.logFile, group, o);
        const v = await checkViking(certBundle, !isFull, group, o);
        checks.set(`${group}|nginx`, n);
        checks.set(`${group}|viking`, v);
        for (const [who, c] of [['nginx', n], ['viking', v]] as const) {
          log(`check ${group} ${who}: ${c.protocols}, ${c.resumed} of ${c.handshakes} handshakes resumed`);
          if (c.handshakes === 0) throw new Error(`${group} ${who}: the check saw no handshakes`);
        }
      }
    }
    const loadBefore = os.loadavg()[0]!;
    log(`warming up ${targets.length} rows in front of ${o.backends} backends...`);
    for (const t of targets) {
      const w = await wrk(t, o, 2);
      if (w.requests === 0 || w.errors > w.requests / 2) throw new Error(`${t.group} ${t.name}: warm-up failed (${w.requests} requests, ${w.errors} errors)`);
    }
    const key = (t: Target): string => `${t.group}|${t.name}`;
    const results = new Map<string, WrkResult[]>(targets.map((t) => [key(t), []]));
    for (let r = 1; r <= o.runs; r++) {
      for (const t of targets) {
        const res = await wrk(t, o, o.duration, t.refresh ? t.refresh() : t.pids);
        results.get(key(t))!.push(res);
        log(`run ${r}/${o.runs} ${t.group} ${t.name}: ${Math.round(res.rps)} req/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, ${res.errors} errors, ${res.cpuUs?.toFixed(0)} µs CPU/request${res.primaryUs === undefined ? '' : ` (primary ${res.primaryUs.toFixed(0)} µs)`}, load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    }
    const rows = targets.map((t) => {
      const rs = results.get(key(t))!;
      return {
        t,
        name: t.name,
        rps: median(rs.map((x) => x.rps)),
        p50: median(rs.map((x) => x.p50)),
        p99: median(rs.map((x) => x.p99)),
        cpuUs: median(rs.map((x) => x.cpuUs ?? NaN)),
        errors: rs.reduce((s, x) => s + x.errors, 0),
      };
    });
    const nginxVersion = (await run('nginx', ['-v']).catch((e: { stderr?: string }) => ({ stderr: e.stderr ?? '' }))).stderr.trim();
    process.stdout.write(
      `\nrouter benchmark: wrk -t${o.threads} -c${o.connections} -d${o.duration}s, median of ${o.runs} runs, ${o.backends} node:http backends, ` +
        `${os.availableParallelism()} cores, load average ${loadBefore.toFixed(2)} before and ${os.loadavg()[0]!.toFixed(2)} after, node ${process.version}, ${nginxVersion}\n\n`,
    );
    if (checks.size > 0) {
      process.stdout.write(`new-handshake rows, checked on the server side before the runs (${CHECK_SECONDS} s of the same wrk command each; see the header):\n\n| test | proxy | TLS | handshakes resumed |\n|---|---|---|---|\n`);
      for (const [k, c] of checks) {
        const [group, who] = k.split('|');
        process.stdout.write(`| ${group} | ${who} | ${c.protocols} | ${c.resumed} of ${c.handshakes} (${((c.resumed / c.handshakes) * 100).toFixed(0)}%) |\n`);
      }
      process.stdout.write('\n');
    }
    process.stdout.write('| test | proxy | req/s | p50 | p99 | errors | CPU/request | req/s × nginx | p99 × nginx |\n|---|---|---|---|---|---|---|---|---|\n');
    // The table groups rows by test (targets were made per worker count and router).
    const GROUPS: Group[] = ['http', 'https keep-alive', 'https new handshakes (full)', 'https resumed handshakes'];
    const rank = (t: Target): number => (t.nginx ? 0 : (t.engine ? 3 : 0) + (t.metricsOff ? 2 : t.variant ? 3 : 1));
    const ordered = [...rows].sort((a, b) => GROUPS.indexOf(a.t.group) - GROUPS.indexOf(b.t.group) || b.t.workers - a.t.workers || rank(a.t) - rank(b.t));
    for (const r of ordered) {
      const base = rows.find((b) => b.t.nginx && b.t.group === r.t.group && b.t.workers === r.t.workers)!;
      process.stdout.write(
        `| ${r.t.group} | ${r.name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.errors} | ${r.cpuUs.toFixed(0)} µs | ${(r.rps / base.rps).toFixed(2)} | ${(r.p99 / base.p99).toFixed(2)} |\n`,
      );
    }
    const offRows = rows.filter((r) => r.t.metricsOff);
    if (offRows.length > 0) {
      process.stdout.write('\ntraffic counters (issue 18): the router with metrics on against the same router with metrics off, same run\n\n');
      process.stdout.write('| test | workers | req/s on | req/s off | req/s on/off | p99 on | p99 off | p99 on/off | CPU/request on | CPU/request off |\n|---|---|---|---|---|---|---|---|---|---|\n');
      for (const off of offRows) {
        const on = rows.find((r) => !r.t.nginx && !r.t.metricsOff && !r.t.variant && !!r.t.engine === !!off.t.engine && r.t.group === off.t.group && r.t.workers === off.t.workers)!;
        process.stdout.write(
          `| ${off.t.group}${off.t.engine ? " (nginx engine)" : ""} | ${off.t.workers} | ${Math.round(on.rps)} | ${Math.round(off.rps)} | ${(on.rps / off.rps).toFixed(3)} | ${on.p99.toFixed(2)} ms | ${off.p99.toFixed(2)} ms | ${(on.p99 / off.p99).toFixed(3)} | ${on.cpuUs.toFixed(0)} µs | ${off.cpuUs.toFixed(0)} µs |\n`,
        );
      }
      const ns = countingCostNs();
      const httpOff = offRows.find((r) => r.t.group === 'http');
      process.stdout.write(
        `\ncounting alone: ${ns.toFixed(0)} ns per request (clock reads and counter updates, best of 5 rounds of 2M)` +
          (httpOff ? `, ${((ns / 1000 / httpOff.cpuUs) * 100).toFixed(2)}% of the ${httpOff.cpuUs.toFixed(0)} µs of CPU the router spends per plain HTTP request with metrics off\n` : '\n'),
      );
      const dump = await routers.get(o.workers)?.trafficCounters();
      const counted = dump ? dump.slots.reduce((sum, slot) => sum + slot.values[Field.C2xx]!, 0) : 0;
      process.stdout.write(`the router with metrics on counted ${counted} answers (2xx) over the whole run\n`);
    }
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}

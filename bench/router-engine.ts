/**
 * bench/router-engine: the nginx engine against a hand-written nginx, and
 * nothing else, in one run.
 *
 * bench/router.ts measures every proxy in one process tree: the Node
 * router's workers, five Router instances, four nginx engines. Its engine
 * rows there show 0.8-0.9x nginx's throughput with a p99 2-7x nginx's,
 * while nginx alone with the very configuration the engine renders matched
 * the hand-written nginx. This bench keeps only the two: real etcd, N
 * node:http backends, the peer nginx (bench/router.ts startNginx), the
 * engine (`new Router({ engine: 'nginx' })`, the same etcd keys), and with
 * `--cert 1` the bench certificate in etcd (the engine then renders TLS
 * server blocks as in bench/router.ts). Every party has a session of its
 * own (see "Scheduling groups" in bench/router.ts). Plain HTTP keep-alive,
 * rounds interleaved; prints the medians and every run.
 *
 *   node dist/bench/router-engine.js [--duration 5] [--runs 5] [--connections 64] [--threads 2]
 *                                    [--backends 2] [--workers N] [--cert 0] [--metrics 1] [--warm 0]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { startEtcdMember } from '../lib/up/etcd-process.js';
import { freePort } from '../lib/net.js';
import { connectEtcd } from '../lib/store/client.js';
import { certKey } from '../lib/store/keys.js';
import { checkCertificate } from '../lib/certs/custom.js';
import { makeTestCa } from '../test/helpers/test-ca.js';
import { Router, defaultRouterWorkers } from '../lib/router/router.js';
import { HOST, cpuSeconds, getStatus, parseWrk, startBackends, startNginx, withChildren, writeRoutes, type WrkResult } from './router.js';

const run = promisify(execFile);

interface Options {
  duration: number;
  runs: number;
  connections: number;
  threads: number;
  backends: number;
  workers: number;
  /** 1: the bench certificate in etcd (TLS server blocks rendered, as in bench/router.ts). */
  cert: number;
  /** 0: the engine with metrics: false. */
  metrics: number;
  /** Seconds of wrk right before each measured run (0: none). */
  warm: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { duration: 5, runs: 5, connections: 64, threads: 2, backends: 2, workers: defaultRouterWorkers() || 1, cert: 0, metrics: 1, warm: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in o) || !Number.isFinite(value)) throw new Error(`unknown option ${argv[i]} ${argv[i + 1] ?? ''}; see the header of bench/router-engine.ts`);
    o[key] = value;
  }
  return o;
}

interface Target {
  name: string;
  port: number;
  pids: () => Promise<number[]>;
}

/** wrk (in a session of its own) against one target; CPU/request counts the target's processes. */
async function measure(t: Target, o: Options, seconds: number): Promise<WrkResult> {
  const pids = await t.pids();
  const cpu = async (): Promise<number> => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  const before = await cpu();
  const { stdout } = await run('setsid', ['-w', 'wrk', `-t${o.threads}`, `-c${o.connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${t.port}/`], { maxBuffer: 1 << 20 });
  const r = parseWrk(stdout);
  return { ...r, cpuUs: (((await cpu()) - before) / r.requests) * 1e6 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-engine-'));
  const cleanups: Array<() => unknown> = [];
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  try {
    const etcd = await startEtcdMember({ name: 'bench', dataDir: path.join(dir, 'etcd'), clientPort: await freePort(), peerPort: await freePort(), logFile: path.join(dir, 'etcd.log') });
    cleanups.push(() => etcd.stop());
    const backends = await startBackends(o.backends);
    cleanups.push(() => backends.children.forEach((c) => c.kill('SIGTERM')));
    await writeRoutes(etcd.url, backends.ports);
    const ca = await makeTestCa('viking bench root');
    cleanups.push(() => ca.remove());
    const cert = await ca.leaf(['127.0.0.1'], { cn: 'viking bench' });
    const client = connectEtcd(etcd.url);
    cleanups.push(() => client.close());
    if (o.cert) await client.put(certKey('127.0.0.1')).value(JSON.stringify(checkCertificate('127.0.0.1', cert.certPem, cert.keyPem)));
    const nginx = await startNginx(path.join(dir, 'nginx'), backends.ports, o.workers, cert);
    cleanups.push(() => nginx.child.kill('SIGTERM'));
    const engine = new Router({ client, hostName: 'bench-engine', dataDir: path.join(dir, 'engine'), port: 0, httpsPort: o.cert ? -1 : 0, host: '127.0.0.1', workers: o.workers, engine: 'nginx', metrics: o.metrics !== 0, log });
    const enginePort = await engine.start();
    cleanups.push(() => engine.stop());
    const targets: Target[] = [
      { name: `nginx, ${o.workers} workers`, port: nginx.port, pids: () => withChildren(nginx.child.pid!) },
      { name: `viking nginx engine, ${o.workers} workers${o.metrics ? '' : ', metrics off'}`, port: enginePort, pids: async () => [process.pid, engine.nginxMasterPid ?? 0, ...engine.workerPids()].filter((p) => p > 0) },
    ];
    for (const t of targets) {
      const status = await getStatus(t.port);
      if (status !== 200) throw new Error(`${t.name} answered ${status} for ${HOST}`);
      await measure(t, o, 2);
    }
    const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
    for (let r = 1; r <= o.runs; r++) {
      // Each round in another order, so neither always runs first after a pause.
      for (const t of r % 2 ? targets : [...targets].reverse()) {
        if (o.warm > 0) await measure(t, o, o.warm);
        const res = await measure(t, o, o.duration);
        results.get(t.name)!.push(res);
        log(`run ${r}/${o.runs} ${t.name}: ${Math.round(res.rps)} req/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, ${res.errors} errors, ${res.cpuUs?.toFixed(0)} µs CPU/request, load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    }
    process.stdout.write(
      `\nnginx engine against nginx: wrk -t${o.threads} -c${o.connections} -d${o.duration}s, plain HTTP keep-alive, median of ${o.runs} runs, ` +
        `${o.backends} node:http backends, ${os.availableParallelism()} cores, certificate ${o.cert ? 'in etcd' : 'none'}, node ${process.version}\n\n` +
        '| proxy | req/s | p50 | p99 | p99 of each run | errors | CPU/request | req/s × nginx | p99 × nginx |\n|---|---|---|---|---|---|---|---|---|\n',
    );
    const base = results.get(targets[0]!.name)!;
    for (const t of targets) {
      const rs = results.get(t.name)!;
      const rps = median(rs.map((x) => x.rps));
      const p99 = median(rs.map((x) => x.p99));
      process.stdout.write(
        `| ${t.name} | ${Math.round(rps)} | ${median(rs.map((x) => x.p50)).toFixed(2)} ms | ${p99.toFixed(2)} ms | ${rs.map((x) => x.p99.toFixed(1)).join(' / ')} | ` +
          `${rs.reduce((s, x) => s + x.errors, 0)} | ${median(rs.map((x) => x.cpuUs ?? NaN)).toFixed(0)} µs | ${(rps / median(base.map((x) => x.rps))).toFixed(2)} | ${(p99 / median(base.map((x) => x.p99))).toFixed(2)} |\n`,
      );
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

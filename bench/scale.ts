/**
 * bench/scale: the control plane with N simulated hosts on a real 3-member
 * etcd. Prints tables; not a test.
 *
 *   node --expose-gc dist/bench/scale.js [--hosts 100,300,1000] [--per-child 250]
 *        [--ttl 3] [--jobs 10000] [--endpoints 0] [--idle 10] [--probes 3]
 *        [--routers N] [--table 100000] [--table-only]
 *
 * For each N: a 3-member etcd (test/helpers/cluster.ts), a leader running
 * the real LeaderElection and Dispatcher in this process, and N hosts in
 * child processes (bench/scale-hosts.ts, --per-child hosts each), every one
 * with its own etcd3 client, the real HostLease, the slave's /deploy watch
 * with fenced acks, and the router's real RouteFeed. One more child holds
 * one host only, the victim, SIGKILLed to time a dead host's recovery.
 *
 * Measured per N (etcd figures are the sum over the 3 members, read from
 * their /proc and /metrics):
 *   idle      keepalives, watches and route resyncs alone, over --idle s
 *   probe     a /ports put until every host's route table holds it (p50/p99/max)
 *   push      --jobs jobs written to /proc (100 per txn), placed, acked
 *   dead      the victim SIGKILLed: its /host key gone, its jobs re-placed and acked
 * --routers R gives the router role (a route feed) to R hosts only, spread
 * over the children (default: every host, as today).
 * --endpoints E seeds E endpoints in /ports first (the route feed reads all
 * of them on every change). --table E times one router table of E endpoints.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../test/helpers/cluster.js';
import { connectEtcd } from '../lib/store/client.js';
import { PREFIX, domainKey, hostKey, portsKey, procKey, stackKey } from '../lib/store/keys.js';
import { readPlacements } from '../lib/store/placements.js';
import { LeaderElection } from '../lib/leader/election.js';
import { Dispatcher } from '../lib/dispatch/dispatch.js';
import type { JobSpec, PortEndpoint, StackRecord } from '../lib/store/records.js';
import { formatTable } from '../lib/cli/output.js';
import type { ChildMessage, ParentMessage, SliceConfig } from './scale-hosts.js';
import { measureRouteTable } from './scale-table.js';

const argv = process.argv;
function arg(name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
}
const num = (name: string, fallback: number): number => Number(arg(name, String(fallback)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');

// ---- etcd's own figures ----------------------------------------------------

function sumMetric(text: string, name: string, labels?: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels && !labels.test(line)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface EtcdSample {
  at: number;
  cpuMs: number;
  rssMiB: number;
  unary: number;
  streamMsgs: number;
  keepalives: number;
  ranges: number;
  txns: number;
  dbMiB: number;
  keys: number;
  watchers: number;
}

async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}

async function rssMiBOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function sampleEtcd(etcd: EtcdCluster): Promise<EtcdSample> {
  const s: EtcdSample = { at: performance.now(), cpuMs: 0, rssMiB: 0, unary: 0, streamMsgs: 0, keepalives: 0, ranges: 0, txns: 0, dbMiB: 0, keys: 0, watchers: 0 };
  await Promise.all(
    etcd.members.map(async (m) => {
      if (m.process.exitCode !== null || m.process.signalCode !== null) return;
      const [text, cpuMs, rssMiB] = await Promise.all([fetch(`${m.url}/metrics`).then((r) => r.text()), cpuMsOf(m.process.pid!), rssMiBOf(m.process.pid!)]);
      // No await between reading and writing the sums: the three members' callbacks interleave.
      s.cpuMs += cpuMs;
      s.rssMiB += rssMiB;
      s.unary += sumMetric(text, 'grpc_server_handled_total', /grpc_type="unary"/);
      s.streamMsgs += sumMetric(text, 'grpc_server_msg_received_total', /grpc_type="bidi_stream"/);
      s.keepalives += sumMetric(text, 'grpc_server_msg_received_total', /grpc_method="LeaseKeepAlive"/);
      s.ranges += sumMetric(text, 'grpc_server_handled_total', /grpc_method="Range"/);
      s.txns += sumMetric(text, 'grpc_server_handled_total', /grpc_method="Txn"/);
      s.dbMiB = Math.max(s.dbMiB, sumMetric(text, 'etcd_mvcc_db_total_size_in_bytes') / 1024 ** 2);
      s.keys = Math.max(s.keys, sumMetric(text, 'etcd_debugging_mvcc_keys_total'));
      s.watchers += sumMetric(text, 'etcd_debugging_mvcc_watcher_total');
    }),
  );
  return s;
}

/** Rates between two samples: etcd CPU in % of one core (3 members summed), requests per second. */
function rates(a: EtcdSample, b: EtcdSample): { cpuPct: number; reqS: number; kaS: number; rangeS: number; txnS: number } {
  const s = (b.at - a.at) / 1000;
  return {
    cpuPct: ((b.cpuMs - a.cpuMs) / (b.at - a.at)) * 100,
    reqS: (b.unary - a.unary + b.streamMsgs - a.streamMsgs) / s,
    kaS: (b.keepalives - a.keepalives) / s,
    rangeS: (b.ranges - a.ranges) / s,
    txnS: (b.txns - a.txns) / s,
  };
}

// ---- the children ------------------------------------------------------------

class Slice {
  readonly child: ChildProcess;
  ready: Promise<Extract<ChildMessage, { t: 'ready' }>>;
  private readonly waiters = new Map<string, (at: number[]) => void>();
  private usageWaiter: ((u: { cpuMs: number; rss: number }) => void) | undefined;
  constructor(cfg: SliceConfig, onAcked: (n: number) => void) {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scale-hosts.js');
    this.child = fork(script, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`hosts ${cfg.prefix}${cfg.from}.. exited with ${code}`)));
      this.child.on('message', (m: ChildMessage) => {
        if (m.t === 'ready') resolve(m);
        else if (m.t === 'acked') onAcked(m.n);
        else if (m.t === 'seen') this.waiters.get(m.id)?.(m.at);
        else if (m.t === 'usage') this.usageWaiter?.(m);
      });
    });
  }
  send(m: ParentMessage): void {
    if (this.child.connected) this.child.send(m);
  }
  seen(id: string): Promise<number[]> {
    return new Promise((r) => this.waiters.set(id, r));
  }
  usage(): Promise<{ cpuMs: number; rss: number }> {
    return new Promise((r) => ((this.usageWaiter = r), this.send({ t: 'usage' })));
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// ---- records -------------------------------------------------------------------

function stackRecord(name: string, nodes: string[]): StackRecord {
  return {
    name, current: 'v1', lastRelease: 1, domains: Object.fromEntries(nodes.map((n) => [n, [`${n}.${name}.test`]])),
    releases: [{ tag: 'v1', number: 1, at: new Date().toISOString(), by: 'bench', images: {}, source: '/tmp', builtOn: 'bench' }],
  } as unknown as StackRecord;
}

const endpoint = (stack: string, node: string, instance: number, container: string): PortEndpoint => ({
  stack, tag: 'v1', node, instance, host: 'bench', ip: '127.0.0.1', port: 80, hostPort: 1024 + (instance % 60000), proto: 'tcp', container, primary: true,
});

async function seedRoutes(client: Etcd3, lease: string, endpoints: number): Promise<void> {
  const nodes = Array.from({ length: 100 }, (_, i) => `n${i}`);
  await client.put(stackKey('probe')).value(JSON.stringify(stackRecord('probe', ['web'])));
  await client.put(domainKey('web.probe.test')).value(JSON.stringify({ stack: 'probe', node: 'web', kind: 'container' }));
  if (endpoints === 0) return;
  await client.put(stackKey('seed')).value(JSON.stringify(stackRecord('seed', nodes)));
  for (const n of nodes) await client.put(domainKey(`${n}.seed.test`)).value(JSON.stringify({ stack: 'seed', node: n, kind: 'container' }));
  for (let i = 0; i < endpoints; i += 100) {
    const ops = [];
    for (let j = i; j < Math.min(endpoints, i + 100); j++) {
      const e = endpoint('seed', nodes[j % 100]!, j + 1, `seed-${j}`);
      ops.push(client.put(portsKey(e)).value(JSON.stringify(e)).lease(lease));
    }
    await client.if(PREFIX.ports, 'Version', '>', -1).then(...ops).commit();
  }
}

function jobsFor(run: string, n: number): JobSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    stack: run, tag: 'v1', node: `n${Math.floor(i / 4)}`, instance: (i % 4) + 1, image: 'viking/busybox', expose: [], volumes: [],
    env: {}, service: false, tags: [], prefer: [], memory: 16 * 1024 ** 2, cpu: 0.001, scale: 4,
  }));
}

/** etcd elections happen on a machine this loaded ("leader changed"): a bench step is tried again, and counted. */
let retried = 0;
async function again<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= 10) throw err;
      retried++;
      await sleep(500);
    }
  }
}

const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

// ---- one cluster size ------------------------------------------------------------

interface Rows {
  idle: Array<Array<string | number>>;
  probe: Array<Array<string | number>>;
  push: Array<Array<string | number>>;
  dead: Array<Array<string | number>>;
}

async function runSize(n: number, rows: Rows): Promise<void> {
  const perChild = num('per-child', 250);
  const ttl = num('ttl', 3);
  const jobsN = num('jobs', 10_000);
  const endpointsN = num('endpoints', 0);
  const idleS = num('idle', 10);
  const probesN = num('probes', 3);
  const routersN = Math.min(n, num('routers', n));
  const etcd = await startEtcdCluster(3);
  const client = connectEtcd(etcd.urls);
  const election = new LeaderElection(client, 'bench-leader', 5);
  const slices: Slice[] = [];
  let dispatcher: Dispatcher | undefined;
  let acked = 0;
  const log = (msg: string): void => void process.stderr.write(`[${n} hosts] ${msg}\n`);
  for (const [i, m] of etcd.members.entries()) {
    void m.exited.then(async () => {
      log(`etcd member m${i} exited: code ${m.process.exitCode}, signal ${m.process.signalCode}`);
      const dataDir = m.process.spawnargs[m.process.spawnargs.indexOf('--data-dir') + 1];
      if (dataDir) await copyFile(path.join(path.dirname(dataDir), `m${i}.log`), path.join(os.tmpdir(), `viking-bench-scale-m${i}-${n}.log`)).catch(() => {});
    });
  }
  try {
    const routeLease = client.lease(3600);
    await seedRoutes(client, await routeLease.grant(), endpointsN);
    election.start();
    while (!election.current) await sleep(20);
    dispatcher = new Dispatcher(client, () => election.current);
    dispatcher.start();
    const t0 = performance.now();
    for (let from = 0; from < n; from += perChild) {
      const count = Math.min(perChild, n - from);
      const feeds = Math.round((routersN * (from + count)) / n) - Math.round((routersN * from) / n);
      slices.push(new Slice({ urls: etcd.urls, prefix: 'sim-', from, count, ttl, feeds }, (k) => (acked += k)));
    }
    const victim = new Slice({ urls: etcd.urls, prefix: 'victim-', from: 0, count: 1, ttl, feeds: 0 }, (k) => (acked += k));
    const all = [...slices, victim];
    const ready = await Promise.all(all.map((s) => s.ready));
    const started = ready.reduce((a, r) => a + r.started, 0);
    const failed = ready.reduce((a, r) => a + r.failed, 0);
    log(`${started} hosts up in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${failed} failed${ready.find((r) => r.error)?.error ? ` (${ready.find((r) => r.error)!.error})` : ''}`);
    const hostsUp = started;

    // Idle: keepalives, watches, route resyncs.
    await sleep(3000);
    const cpuBefore = await Promise.all(all.map((s) => s.usage()));
    const i0 = await sampleEtcd(etcd);
    await sleep(idleS * 1000);
    const i1 = await sampleEtcd(etcd);
    const cpuAfter = await Promise.all(all.map((s) => s.usage()));
    const idle = rates(i0, i1);
    const alive = (await again(() => client.getAll().prefix(PREFIX.host).keys())).length;
    const clientCpuMs = cpuAfter.reduce((a, u, i) => a + u.cpuMs - cpuBefore[i]!.cpuMs, 0);
    const rssMiB = cpuAfter.reduce((a, u) => a + u.rss, 0) / 1024 ** 2;
    rows.idle.push([
      hostsUp, alive, routersN, endpointsN, ttl, idle.cpuPct.toFixed(1), ((idle.cpuPct * 10) / hostsUp).toFixed(2), idle.reqS.toFixed(0), idle.kaS.toFixed(0), idle.rangeS.toFixed(0),
      i1.watchers, i1.keys, i1.dbMiB.toFixed(1), i1.rssMiB.toFixed(0), ((clientCpuMs / (idleS * 1000)) * 100).toFixed(0), (rssMiB / hostsUp).toFixed(1), load(),
    ]);

    // Probe: a /ports change until every route table holds it.
    for (let k = 1; k <= probesN; k++) {
      const id = `probe-${k}`;
      const waits = all.map((s) => s.seen(id));
      for (const s of all) s.send({ t: 'probe', id });
      await sleep(200);
      const p0 = Date.now();
      const e = endpoint('probe', 'web', k, id);
      await again(async () => client.put(portsKey(e)).value(JSON.stringify(e)).exec());
      const timeout = setTimeout(() => all.forEach((s) => s.send({ t: 'collect', id })), 30_000);
      const seen = (await Promise.all(waits)).flat().map((t) => t - p0).sort((a, b) => a - b);
      clearTimeout(timeout);
      rows.probe.push([hostsUp, routersN, endpointsN, k, `${seen.length}/${routersN}`, pct(seen, 0.5), pct(seen, 0.99), seen.at(-1) ?? '-', load()]);
      await again(async () => client.delete().key(portsKey(e)).exec());
    }

    // Push: jobs to /proc, placed by dispatch, acked by the hosts.
    {
      const jobs = jobsFor('push', jobsN);
      acked = 0;
      const a = await sampleEtcd(etcd);
      const p0 = performance.now();
      for (let i = 0; i < jobs.length; i += 100) {
        const batch = jobs.slice(i, i + 100);
        await again(() => client.if(procKey(batch[0]!), 'Version', '>', -1).then(...batch.map((j) => client.put(procKey(j)).value(JSON.stringify(j)))).commit());
      }
      const written = performance.now() - p0;
      while (acked < jobsN && performance.now() - p0 < 300_000) await sleep(20);
      const ms = performance.now() - p0;
      const b = await sampleEtcd(etcd);
      const r = rates(a, b);
      rows.push.push([hostsUp, jobsN, written.toFixed(0), ms.toFixed(0), `${acked}/${jobsN}`, Math.round((acked / ms) * 1000), r.cpuPct.toFixed(0), r.reqS.toFixed(0), r.txnS.toFixed(0), b.keys, b.dbMiB.toFixed(1), load()]);
    }

    // Dead host: the victim SIGKILLed; its key gone, its jobs re-placed and acked.
    {
      const before = await again(() => readPlacements(client));
      const mine = [...before.placed].filter(([, p]) => p.host === 'victim-0').map(([path]) => path);
      const d0 = performance.now();
      victim.kill();
      let gone = NaN;
      let replaced = NaN;
      while (performance.now() - d0 < 60_000) {
        if (Number.isNaN(gone) && !(await again(() => client.get(hostKey('victim-0')).string()))) gone = performance.now() - d0;
        if (!Number.isNaN(gone)) {
          const now = await again(() => readPlacements(client));
          const moved = mine.map((path) => now.placed.get(path)).filter((p) => p !== undefined && p.host !== 'victim-0');
          if (moved.length === mine.length) {
            // Acked: the slave wrote its state into the new deploy key.
            if (moved.every((p) => p!.value !== '')) {
              replaced = performance.now() - d0;
              break;
            }
          }
        }
        await sleep(50);
      }
      rows.dead.push([hostsUp, ttl, mine.length, gone.toFixed(0), replaced.toFixed(0), load()]);
    }
  } finally {
    for (const s of slices) s.kill();
    await dispatcher?.stop();
    await election.resign().catch(() => {});
    client.close();
    await etcd.stop();
  }
}

async function main(): Promise<void> {
  const tableN = num('table', 100_000);
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  out(`scale: node ${process.version}, ${os.cpus().length} cores, load ${load()}`);
  if (tableN > 0) {
    const t = measureRouteTable(tableN);
    out(`\nOne router table (${tableN.toLocaleString('en-US')} endpoints, ${t.domains.toLocaleString('en-US')} domains); medians of 3:`);
    out(formatTable(['ENDPOINTS', 'PARSE MS', 'CHECK MS', 'BUILD MS', 'TABLE HEAP MIB', 'RECORDS HEAP MIB', 'LOAD'], [[tableN, t.parseMs.toFixed(0), t.checkMs.toFixed(0), t.buildMs.toFixed(0), t.tableMiB.toFixed(1), t.recordsMiB.toFixed(1), load()]]));
    out('An update rebuilds the whole table (the feed re-reads /ports): PARSE + CHECK + BUILD is the cost of one /ports change per router.');
  }
  if (argv.includes('--table-only')) return;
  const rows: Rows = { idle: [], probe: [], push: [], dead: [] };
  for (const n of arg('hosts', '100,300,1000').split(',').map(Number)) {
    try {
      await runSize(n, rows);
    } catch (err) {
      out(`${n} hosts: ${(err as Error).message}`);
    }
  }
  out('\nIdle (keepalives, watches, route resyncs): etcd = 3 members summed; CPU % of one core');
  out(formatTable(['HOSTS', 'LIVE /HOST', 'ROUTERS', 'ENDPOINTS', 'TTL', 'ETCD CPU %', 'ETCD CPU ‰/HOST', 'REQ/S', 'KEEPALIVE/S', 'RANGE/S', 'WATCHERS', 'KEYS', 'DB MIB', 'ETCD RSS MIB', 'HOSTS CPU %', 'MIB/HOST', 'LOAD'], rows.idle));
  out('\n/ports put → every router table holds it (ms)');
  out(formatTable(['HOSTS', 'ROUTERS', 'ENDPOINTS', 'PROBE', 'SEEN', 'P50', 'P99', 'MAX', 'LOAD'], rows.probe));
  out('\nPush: jobs written to /proc (100/txn), placed by dispatch, acked by hosts');
  out(formatTable(['HOSTS', 'JOBS', 'WRITE MS', 'ACKED MS', 'ACKED', 'JOBS/S', 'ETCD CPU %', 'REQ/S', 'TXN/S', 'KEYS', 'DB MIB', 'LOAD'], rows.push));
  out(`\netcd calls of the bench itself tried again after an error (elections under load): ${retried}`);
  out('\nDead host (SIGKILL): /host key gone, its jobs re-placed and acked (ms)');
  out(formatTable(['HOSTS', 'TTL', 'JOBS', 'KEY GONE', 'RE-PLACED', 'LOAD'], rows.dead));
}

await main();
process.exit(0);

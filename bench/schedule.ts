/**
 * bench/schedule: jobs per second placed and acknowledged through a real
 * etcd, with simulated slaves.
 *
 *   node dist/bench/schedule.js [--jobs 5000] [--hosts 100] [--runs 3] [--warmup 1]
 *
 * One etcd member (the installed binary, free loopback ports, temp dir), a
 * leader (LeaderElection + the real Dispatcher), and N simulated hosts: each
 * holds a host lease and watches only its own /deploy prefix, and acks every
 * new job the way a slave does (a fenced `running` write), without Docker.
 * Jobs are written to /proc by the push's own writeJobs (100 per transaction). Measured from
 * the first /proc write to the last ack; etcd writes per job come from the
 * member's own counters (etcd_mvcc_put_total, etcd_mvcc_txn_total).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startEtcdMember } from '../lib/up/etcd-process.js';
import { freePort } from '../lib/net.js';
import { connectEtcd } from '../lib/store/client.js';
import { writeJobs } from '../lib/rollout/rollout.js';
import { LeaderElection } from '../lib/leader/election.js';
import { Dispatcher } from '../lib/dispatch/dispatch.js';
import { HostLease } from '../lib/host/host-lease.js';
import { readPlacements } from '../lib/store/placements.js';
import type { JobSpec } from '../lib/store/records.js';
import { SimulatedSlave, simHostRecord } from './sim-host.js';
import { formatTable } from '../lib/cli/output.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function etcdCounters(url: string): Promise<{ puts: number; txns: number; deletes: number; cpu: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { puts: read('etcd_mvcc_put_total'), txns: read('etcd_mvcc_txn_total'), deletes: read('etcd_mvcc_delete_total'), cpu: read('process_cpu_seconds_total') };
}

/** CPU seconds this process (leader, simulated slaves, the push's writer) has used. */
const ownCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function jobsFor(run: number, n: number): JobSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const node = `n${Math.floor(i / 4)}`;
    return {
      stack: `bench${run}`, tag: 'v1', node, instance: (i % 4) + 1, image: 'viking/busybox', expose: [80], volumes: [],
      env: { A: 'b' }, service: false, tags: [], prefer: [], memory: 64 * 1024 ** 2, cpu: 0.05, scale: 4,
    };
  });
}

async function main(): Promise<void> {
  const jobsN = arg('jobs', 5000);
  const hostsN = arg('hosts', 100);
  const runs = arg('runs', 3);
  const warmup = arg('warmup', 1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-sched-'));
  const member = await startEtcdMember({ name: 'bench', dataDir: dir, clientPort: await freePort(), peerPort: await freePort(), logFile: path.join(dir, 'etcd.log') });
  const client = connectEtcd(member.url);
  const rows: Array<Array<string | number>> = [];
  const election = new LeaderElection(client, 'bench-leader', 5);
  const leases: HostLease[] = [];
  const slaves: SimulatedSlave[] = [];
  let dispatcher: Dispatcher | undefined;
  try {
    election.start();
    while (!election.current) await new Promise((r) => setTimeout(r, 20));
    let acked = 0;
    let waiter: (() => void) | undefined;
    let target = 0;
    for (let h = 0; h < hostsN; h++) {
      const name = `sim-${h}`;
      const lease = new HostLease(client, simHostRecord(name), 10);
      await lease.start();
      leases.push(lease);
      const slave = new SimulatedSlave(client, name, (n) => {
        acked += n;
        if (acked >= target) waiter?.();
      });
      await slave.start();
      slaves.push(slave);
    }
    let tRun = 0;
    const trace = process.env.VIKING_BENCH_TRACE === '1' ? (m: string) => process.stderr.write(`${(performance.now() - tRun).toFixed(0)} ms ${m}\n`) : undefined;
    dispatcher = new Dispatcher(client, () => election.current, { resyncMs: 60_000, ...(trace ? { log: trace } : {}) });
    dispatcher.start();
    await new Promise((r) => setTimeout(r, 500)); // watches open
    // Warm-up runs first (not in the table): a leader is a long-lived process, and the first
    // runs of a fresh one measure V8 compiling the hot paths (the first run took 1.5-2x longer).
    for (let run = 1; run <= warmup + runs; run++) {
      const jobs = jobsFor(run, jobsN);
      acked = 0;
      target = jobsN;
      const done = new Promise<void>((r) => (waiter = r));
      const before = await etcdCounters(member.url);
      const cpu0 = ownCpu();
      const t0 = performance.now();
      tRun = t0;
      await writeJobs(client, jobs); // as a push does: 100 jobs per transaction, several in flight
      const tWritten = performance.now() - t0;
      await done;
      const elapsed = performance.now() - t0;
      const cpu = ownCpu() - cpu0;
      const after = await etcdCounters(member.url);
      if (run > warmup) rows.push([
        run - warmup, jobsN, hostsN, tWritten.toFixed(0), elapsed.toFixed(0), Math.round(jobsN / (elapsed / 1000)).toLocaleString('en-US'),
        ((after.puts - before.puts) / jobsN).toFixed(2), ((after.txns - before.txns) / jobsN).toFixed(3),
        ((cpu * 1e6) / jobsN).toFixed(0), (((after.cpu - before.cpu) * 1e6) / jobsN).toFixed(0),
      ]);
      // Clear the run's jobs so each run starts from an empty cluster.
      await client.delete().prefix(`/proc/bench${run}/`);
      while ((await readPlacements(client, { stack: `bench${run}` })).placed.size > 0) await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await dispatcher?.stop();
    for (const s of slaves) await s.stop();
    for (const l of leases) await l.close();
    await election.resign();
    client.close();
    await member.stop();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`schedule: jobs written to /proc, placed by dispatch and acked by simulated slaves; etcd 1 member, node ${process.version}; after ${warmup} warm-up run(s), not shown\n`);
  process.stdout.write(
    `${formatTable(['RUN', 'JOBS', 'HOSTS', 'WRITE MS', 'ACKED MS', 'JOBS/S', 'KEY PUTS/JOB', 'TXNS/JOB', 'NODE CPU µs/JOB', 'ETCD CPU µs/JOB'], rows)}\n`,
  );
  process.stdout.write('KEY PUTS/JOB counts every key written (proc, deploy, ack); TXNS/JOB counts etcd transactions (several keys each).\n');
  if (SimulatedSlave.errors.length > 0) process.stdout.write(`ack errors (retried): ${SimulatedSlave.errors.length}, first: ${SimulatedSlave.errors[0]}\n`);
  process.stdout.write(`NODE CPU is this process (the push's writer, the leader, the ${hostsN} simulated slaves); ETCD CPU the member's process_cpu_seconds_total. Load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.\n`);
}

await main();

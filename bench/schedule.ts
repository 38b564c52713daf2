/**
 * bench/schedule: jobs per second placed and acknowledged through a real
 * etcd, with simulated slaves.
 *
 *   node dist/bench/schedule.js [--jobs 5000] [--hosts 100] [--runs 3]
 *
 * One etcd member (the installed binary, free loopback ports, temp dir), a
 * leader (LeaderElection + the real Dispatcher), and N simulated hosts: each
 * holds a host lease and watches only its own /deploy prefix, and acks every
 * new job the way a slave does (a fenced `running` write), without Docker.
 * Jobs are written to /proc in batches of 100 as a push does. Measured from
 * the first /proc write to the last ack; etcd writes per job come from the
 * member's own counters (etcd_mvcc_put_total, etcd_mvcc_txn_total).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startEtcdMember } from '../lib/up/etcd-process.js';
import { freePort } from '../lib/net.js';
import { connectEtcd, readPrefix, watchPrefix, type PrefixWatch } from '../lib/store/client.js';
import { deployKey, deployPrefix, parseDeployKey, procKey } from '../lib/store/keys.js';
import { LeaderElection } from '../lib/leader/election.js';
import { Dispatcher } from '../lib/dispatch/dispatch.js';
import { HostLease } from '../lib/host/host-lease.js';
import type { HostRecord, JobSpec } from '../lib/store/records.js';
import { formatTable } from '../lib/cli/output.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function etcdCounters(url: string): Promise<{ puts: number; txns: number; deletes: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { puts: read('etcd_mvcc_put_total'), txns: read('etcd_mvcc_txn_total'), deletes: read('etcd_mvcc_delete_total') };
}

/** A slave without Docker: acks every job deployed to it, in batched fenced writes. */
class SimulatedSlave {
  private watch: PrefixWatch | undefined;
  private busy = false;
  private again = false;
  acked = 0;
  constructor(private readonly client: Etcd3, readonly name: string, private readonly onAck: (n: number) => void) {}
  start(): void {
    this.watch = watchPrefix(this.client, deployPrefix(this.name), () => void this.pass());
  }
  async stop(): Promise<void> {
    await this.watch?.cancel();
  }
  private async pass(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    do {
      this.again = false;
      const deploys = await readPrefix<unknown>(this.client, deployPrefix(this.name));
      const fresh = deploys.entries.filter((e) => e.value === undefined).map((e) => parseDeployKey(e.key)!.job);
      for (let i = 0; i < fresh.length; i += 64) {
        const batch = fresh.slice(i, i + 64);
        let txn = this.client.if(deployKey(this.name, batch[0]!), 'Version', '>', 0);
        for (const job of batch.slice(1)) txn = txn.and(deployKey(this.name, job), 'Version', '>', 0);
        const state = JSON.stringify({ state: 'running', container: 'simulated', at: new Date().toISOString() });
        const res = await txn.then(...batch.map((job) => this.client.put(deployKey(this.name, job)).value(state))).commit();
        if (res.succeeded) {
          this.acked += batch.length;
          this.onAck(batch.length);
        }
      }
    } while (this.again);
    this.busy = false;
  }
}

const hostRecord = (name: string): HostRecord => ({
  name, ip: '127.0.0.1', tags: [], capacity: { memory: 64 * 1024 ** 3, cpu: 32, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'bench',
});

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
      const lease = new HostLease(client, hostRecord(name), 10);
      await lease.start();
      leases.push(lease);
      const slave = new SimulatedSlave(client, name, (n) => {
        acked += n;
        if (acked >= target) waiter?.();
      });
      slave.start();
      slaves.push(slave);
    }
    dispatcher = new Dispatcher(client, () => election.current, { resyncMs: 60_000 });
    dispatcher.start();
    await new Promise((r) => setTimeout(r, 500)); // watches open
    for (let run = 1; run <= runs; run++) {
      const jobs = jobsFor(run, jobsN);
      acked = 0;
      target = jobsN;
      const done = new Promise<void>((r) => (waiter = r));
      const before = await etcdCounters(member.url);
      const t0 = performance.now();
      for (let i = 0; i < jobs.length; i += 100) {
        const batch = jobs.slice(i, i + 100);
        await client.if(procKey(batch[0]!), 'Version', '>', -1).then(...batch.map((j) => client.put(procKey(j)).value(JSON.stringify(j)))).commit();
      }
      const tWritten = performance.now() - t0;
      await done;
      const elapsed = performance.now() - t0;
      const after = await etcdCounters(member.url);
      rows.push([
        run, jobsN, hostsN, tWritten.toFixed(0), elapsed.toFixed(0), Math.round(jobsN / (elapsed / 1000)).toLocaleString('en-US'),
        ((after.puts - before.puts) / jobsN).toFixed(2), ((after.txns - before.txns) / jobsN).toFixed(3),
      ]);
      // Clear the run's jobs so each run starts from an empty cluster.
      await client.delete().prefix(`/proc/bench${run}/`);
      while (Object.keys(await client.getAll().prefix(`/run/bench${run}/`).keys()).length > 0) await new Promise((r) => setTimeout(r, 100));
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
  process.stdout.write(`schedule: jobs written to /proc, placed by dispatch and acked by simulated slaves; etcd 1 member, node ${process.version}\n`);
  process.stdout.write(
    `${formatTable(['RUN', 'JOBS', 'HOSTS', 'WRITE MS', 'ACKED MS', 'JOBS/S', 'KEY PUTS/JOB', 'TXNS/JOB'], rows)}\n`,
  );
  process.stdout.write('KEY PUTS/JOB counts every key written (proc, run, deploy, ack); TXNS/JOB counts etcd transactions (several keys each).\n');
}

await main();

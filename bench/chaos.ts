/**
 * bench/chaos: runs the chaos scenarios of issue 11 on three servers made of
 * network namespaces (test/chaos/servers-chaos.test.ts: default settings,
 * keep-alive GETs and POSTs through a surviving server's router, a checker
 * reading every dockerd and etcd every 100 ms) and prints one row per
 * scenario:
 *
 *   node dist/bench/chaos.js [--runs N]
 *
 * DETECT = the cluster noticed (the server's host key gone, a new leader,
 * etcd reads failing, dockerd answering again); REPLACED = the lost web
 * replicas run elsewhere (or again) with their endpoints published;
 * CONVERGED = every job /run names runs exactly once, where /run says, with
 * its endpoint (from the fault, or from the repair: cable back, power on,
 * quorum back); FAILED = requests through the router that did not get a 200
 * from the app (GET/POST); TWICE = replicas seen running in two places in
 * one sample (must be 0); POSTS TWICE = POST ids that reached an app twice
 * (must be 0). All times from the fault, in seconds.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../lib/cli/output.js';
import type { ChaosRow } from '../test/chaos/servers-chaos.test.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const testFile = path.resolve(here, '../test/chaos/servers-chaos.test.js');
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 1;
const sec = (ms: number | null): string => (ms === null ? '-' : (ms / 1000).toFixed(1));

async function once(): Promise<{ rows: ChaosRow[]; code: number; ms: number }> {
  const t0 = Date.now();
  const rows: ChaosRow[] = [];
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', testFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const at = line.indexOf('CHAOS-RESULT ');
      if (at >= 0) rows.push(JSON.parse(line.slice(at + 'CHAOS-RESULT '.length)) as ChaosRow);
      else if (/^\s*(✖|not ok|# (pass|fail))/.test(line)) process.stderr.write(`${line}\n`);
    }
  });
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
  return { rows, code, ms: Date.now() - t0 };
}

const table: Array<Array<string | number>> = [];
for (let i = 1; i <= runs; i++) {
  const { rows, code, ms } = await once();
  for (const r of rows) {
    table.push([
      runs > 1 ? `${i}: ${r.scenario}` : r.scenario,
      sec(r.detectionMs), sec(r.replacementMs), sec(r.convergenceMs),
      r.requests, `${r.failedGet}/${r.failedPost}`, r.replicasTwice, r.postsTwice,
      r.notes.some((n) => n.startsWith('FAILED')) ? 'FAIL' : 'ok',
    ]);
  }
  process.stdout.write(`run ${i}: exit ${code} in ${(ms / 1000).toFixed(0)} s\n`);
  for (const r of rows) for (const n of r.notes) process.stdout.write(`  ${r.scenario}: ${n.slice(0, 300)}\n`);
}
process.stdout.write(`\n${formatTable(['SCENARIO', 'DETECT s', 'REPLACED s', 'CONVERGED s', 'REQUESTS', 'FAILED GET/POST', 'TWICE', 'POSTS TWICE', 'PROMISE'], table)}\n`);

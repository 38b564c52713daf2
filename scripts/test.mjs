#!/usr/bin/env node
/**
 * `npm test`: runs every compiled test file under dist/test in two lanes, so
 * the whole suite fits CI's time budget on a 2-core machine.
 *
 * - The pool: every file not marked otherwise, several files at once
 *   (VIKING_TEST_JOBS, default 2). Most of a file's time is spent waiting
 *   (lease TTLs, health checks, dockerd), so two files share the machine
 *   well. Every file is written to run beside another: free ports, unique
 *   names and labels, one cluster per file.
 * - Alone: files whose doc comment says `Runs alone:` (with the reason),
 *   one at a time after the pool, with nothing else running. They measure
 *   what another test would disturb: an event loop's delay, a lease renewed
 *   within ms while etcd members freeze, or promises in seconds on servers
 *   that each run their own dockerd (test/chaos).
 *
 * Each file runs in its own `node --test` child; its TAP output is printed
 * whole when it ends, so two files' lines never interleave. The pool starts
 * the slowest files first (their last times are in scripts/test-times.json),
 * so no long file starts last and leaves the other slot idle. A file that
 * runs past VIKING_TEST_FILE_TIMEOUT_S (default 900) is killed with its
 * process group and counts as failed, so a hang cannot eat CI's budget.
 * At the end a table gives every lane's wall time and the slowest files;
 * `--record` writes the times back to scripts/test-times.json.
 *
 * Arguments: the folders under dist/test to run (default: all of them), or
 * single files. The exit code is non-zero if any file failed.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const DIST = path.join(ROOT, 'dist', 'test');
const TIMES = path.join(ROOT, 'scripts', 'test-times.json');
const FOLDERS = ['unit', 'security', 'integration', 'e2e', 'chaos'];
const ALONE = /^\s*\*\s*Runs alone:/m;
const FILE_TIMEOUT_MS = (Number(process.env.VIKING_TEST_FILE_TIMEOUT_S) || 900) * 1000;

async function filesOf(arg) {
  const full = path.isAbsolute(arg) ? arg : arg.startsWith('dist/') ? path.join(ROOT, arg) : path.join(DIST, arg);
  const info = await stat(full).catch(() => null);
  if (!info) throw new Error(`no such test folder or file: ${arg} (did the build run?)`);
  if (info.isFile()) return [full];
  const sources = new Set(await readdir(path.join(ROOT, 'test', path.relative(DIST, full))).catch(() => []));
  // A compiled file whose source was deleted stays in dist/ (tsc never removes output): skip it.
  return (await readdir(full))
    .filter((f) => f.endsWith('.test.js') && sources.has(f.replace(/\.js$/, '.ts')))
    .sort()
    .map((f) => path.join(full, f));
}

/** The name a file is known by in the times table and the report: `e2e/x.test.js`. */
const nameOf = (file) => path.relative(DIST, file);

/** Children still running, so Ctrl-C or a CI kill takes their process groups down too. */
const running = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of running) killGroup(child);
    process.exit(130);
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Counts from a file's TAP summary (`# pass 12`), summed over the run. */
function countsOf(output) {
  const read = (key) => Number(output.match(new RegExp(`^# ${key} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { tests: read('tests'), pass: read('pass'), fail: read('fail'), skipped: read('skipped'), todo: read('todo') };
}

/** Runs one file in its own `node --test`; resolves with its result once it ends and its output is printed. */
function runFile(file) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', file], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const seconds = (Date.now() - started) / 1000;
      const output = Buffer.concat(chunks).toString('utf8');
      const ok = code === 0 && !timedOut;
      const why = timedOut ? `killed after ${FILE_TIMEOUT_MS / 1000} s` : ok ? 'passed' : `FAILED (${signal ?? code})`;
      process.stdout.write(`# ---- ${nameOf(file)}: ${why} in ${seconds.toFixed(1)} s\n${output}\n`);
      resolve({ file, seconds, ok, counts: countsOf(output) });
    });
  });
}

/** The machine's CPU time so far (every core, from /proc/stat): busy and total jiffies; undefined off Linux. */
function cpuTimes() {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const n = fields.map(Number);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** "cpu busy 73% of 2 cores" over a lane (idle and iowait count as free): whether another slot would find a free core (the whole machine, not only the tests). */
function cpuSince(before) {
  const now = cpuTimes();
  if (!before || !now || now.total === before.total) return '';
  return `, cpu busy ${Math.round((100 * (now.busy - before.busy)) / (now.total - before.total))}% of ${os.cpus().length} cores`;
}

/** Runs files `jobs` at a time, slowest known first; resolves with every file's result. */
async function runLane(name, files, jobs, known) {
  if (files.length === 0) return [];
  const started = Date.now();
  const cpu = cpuTimes();
  const queue = [...files].sort((a, b) => (known[nameOf(b)] ?? 30) - (known[nameOf(a)] ?? 30));
  const results = [];
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) results.push(await runFile(file));
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
  const failed = results.filter((r) => !r.ok).length;
  const s = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`test lane ${name}: ${files.length} files, ${jobs} at a time, ${s} s${cpuSince(cpu)}, ${failed ? `${failed} FAILED` : 'passed'}\n`);
  return results;
}

function report(results, seconds) {
  const sum = (key) => results.reduce((n, r) => n + r.counts[key], 0);
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 15);
  const width = Math.max(...slowest.map((r) => nameOf(r.file).length));
  const lines = slowest.map((r) => `  ${nameOf(r.file).padEnd(width)}  ${r.seconds.toFixed(1).padStart(6)} s${r.ok ? '' : '  FAILED'}`);
  process.stderr.write(`slowest files:\n${lines.join('\n')}\n`);
  for (const r of results.filter((x) => !x.ok)) process.stderr.write(`failed: ${nameOf(r.file)}\n`);
  process.stderr.write(
    `tests: ${results.length} files, ${sum('tests')} tests, ${sum('pass')} passed, ${sum('fail')} failed, ` +
      `${sum('skipped')} skipped, ${sum('todo')} todo, in ${seconds} s\n`,
  );
}

const args = process.argv.slice(2).filter((a) => a !== '--record');
const record = process.argv.includes('--record');
const known = JSON.parse(await readFile(TIMES, 'utf8').catch(() => '{}'));
const files = (await Promise.all((args.length ? args : FOLDERS).map(filesOf))).flat();
const alone = [];
const pool = [];
for (const f of files) (ALONE.test(await readFile(f, 'utf8')) ? alone : pool).push(f);
const jobs = Math.max(1, Number(process.env.VIKING_TEST_JOBS ?? 2) || 1);
const started = Date.now();
const results = [...(await runLane('pool', pool, jobs, known)), ...(await runLane('alone', alone, 1, known))];
report(results, Math.round((Date.now() - started) / 1000));
if (record) {
  for (const r of results) known[nameOf(r.file)] = Math.round(r.seconds);
  const sorted = Object.fromEntries(Object.entries(known).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(TIMES, `${JSON.stringify(sorted, null, 2)}\n`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);

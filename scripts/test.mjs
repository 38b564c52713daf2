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
 * Arguments: the folders under dist/test to run (default: all of them), or
 * single files. Each lane is one `node --test` run with the TAP reporter; the
 * exit code is non-zero if any lane failed. The wall time of each lane goes
 * to stderr.
 */
import { spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const DIST = path.join(ROOT, 'dist', 'test');
const FOLDERS = ['unit', 'security', 'integration', 'e2e', 'chaos'];
const ALONE = /^\s*\*\s*Runs alone:/m;

async function filesOf(arg) {
  const full = path.isAbsolute(arg) ? arg : arg.startsWith('dist/') ? path.join(ROOT, arg) : path.join(DIST, arg);
  const info = await stat(full).catch(() => null);
  if (!info) throw new Error(`no such test folder or file: ${arg} (did the build run?)`);
  if (info.isFile()) return [full];
  return (await readdir(full)).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(full, f));
}

function runLane(name, files, concurrency) {
  if (files.length === 0) return Promise.resolve(0);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      const s = Math.round((Date.now() - started) / 1000);
      process.stderr.write(`test lane ${name}: ${files.length} files, ${concurrency} at a time, ${s} s, ${code === 0 ? 'passed' : `FAILED (${signal ?? code})`}\n`);
      resolve(code ?? 1);
    });
  });
}

const args = process.argv.slice(2);
const files = (await Promise.all((args.length ? args : FOLDERS).map(filesOf))).flat();
const alone = [];
const pool = [];
for (const f of files) (ALONE.test(await readFile(f, 'utf8')) ? alone : pool).push(f);
const jobs = Math.max(1, Number(process.env.VIKING_TEST_JOBS ?? 2) || 1);
const started = Date.now();
const poolCode = await runLane('pool', pool, jobs);
const aloneCode = await runLane('alone', alone, 1);
process.stderr.write(`tests: ${files.length} files in ${Math.round((Date.now() - started) / 1000)} s\n`);
process.exit(poolCode || aloneCode);

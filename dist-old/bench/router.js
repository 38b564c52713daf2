/**
 * bench/router: the viking router against nginx, side by side, in one run.
 *
 * Starts a real etcd, N backend processes, nginx (the Debian binary, one
 * worker, upstream keepalive, its own temporary prefix) and the viking
 * router (routes read from etcd through the real feed, served by its worker
 * processes), then runs wrk against each in turn, several rounds
 * interleaved so background load hits all alike, and prints the medians:
 * req/s, p50, p99, errors and the ratio to nginx. Everything it started is
 * stopped and removed at the end.
 *
 *   node dist/bench/router.js [--duration 10] [--runs 5] [--connections 64]
 *                             [--threads 2] [--backends 2] [--workers N]
 */
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { freePort, startEtcdMember } from '../lib/up/etcd-process.js';
import { connectEtcd } from '../lib/store/client.js';
import { domainKey, portsKey, stackKey } from '../lib/store/keys.js';
import { Router, defaultRouterWorkers } from '../lib/router/router.js';
const run = promisify(execFile);
const HOST = 'bench.local';
function parseArgs(argv) {
    const o = { duration: 10, runs: 5, connections: 64, threads: 2, backends: 2, workers: defaultRouterWorkers() || 1 };
    for (let i = 0; i < argv.length; i += 2) {
        const key = argv[i]?.replace(/^--/, '');
        const value = Number(argv[i + 1]);
        if (!(key in o) || !Number.isFinite(value))
            throw new Error(`unknown option ${argv[i]} ${argv[i + 1] ?? ''}; see the header of bench/router.ts`);
        o[key] = value;
    }
    return o;
}
/** user+system CPU seconds of a process, from /proc (Linux). */
async function cpuSeconds(pid) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}
/** A process and its direct children (nginx's master and worker). */
async function withChildren(pid) {
    const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    return [pid, ...kids.split(/\s+/).filter(Boolean).map(Number)];
}
/** Milliseconds from wrk's `850.00us`, `2.42ms`, `1.01s`. */
function toMs(text) {
    const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
    if (!m)
        return NaN;
    const n = Number(m[1]);
    return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
export function parseWrk(out) {
    const num = (re) => Number(re.exec(out)?.[1] ?? NaN);
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
async function wrk(port, o, seconds = o.duration, pids = []) {
    const cpu = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
    const before = await cpu();
    const { stdout } = await run('wrk', [`-t${o.threads}`, `-c${o.connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`], { maxBuffer: 1 << 20 });
    const used = (await cpu()) - before;
    const result = parseWrk(stdout);
    return pids.length && result.requests > 0 ? { ...result, cpuUs: (used / result.requests) * 1e6 } : result;
}
function waitReady(child, what) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what} not ready in 10 s`)), 10_000);
        child.once('message', () => {
            clearTimeout(timer);
            resolve();
        });
        child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    });
}
async function startBackends(n) {
    const script = fileURLToPath(new URL('./router-backend.js', import.meta.url));
    const ports = [];
    const children = [];
    for (let i = 0; i < n; i++) {
        const port = await freePort();
        const child = spawn(process.execPath, [script, String(port), `b${i + 1}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        await waitReady(child, `backend ${i + 1}`);
        ports.push(port);
    }
    return { ports, children };
}
/** nginx from the Debian package: one worker, upstream keepalive, everything under its own prefix. */
async function startNginx(dir, backendPorts) {
    const port = await freePort();
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    const conf = `worker_processes 1;
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
  upstream app {
    ${backendPorts.map((p) => `server 127.0.0.1:${p};`).join('\n    ')}
    keepalive 256;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }
  }
}
`;
    await writeFile(path.join(dir, 'nginx.conf'), conf);
    const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
    const deadline = Date.now() + 10_000;
    for (;;) {
        if (child.exitCode !== null)
            throw new Error(`nginx exited with ${child.exitCode}; see ${dir}/logs/error.log`);
        try {
            await getStatus(port);
            return { port, child };
        }
        catch {
            if (Date.now() > deadline)
                throw new Error('nginx did not start in 10 s');
            await new Promise((r) => setTimeout(r, 100));
        }
    }
}
/** The routes a push of one node with N replicas would leave in etcd. */
async function writeRoutes(etcdUrl, backendPorts) {
    const client = connectEtcd(etcdUrl);
    const stack = { name: 'bench', current: 'v1', lastRelease: 1, releases: [], domains: { web: [HOST] }, websites: {} };
    await client.put(stackKey('bench')).value(JSON.stringify(stack));
    const dom = { stack: 'bench', node: 'web', kind: 'container' };
    await client.put(domainKey(HOST)).value(JSON.stringify(dom));
    for (const [i, hostPort] of backendPorts.entries()) {
        const e = { stack: 'bench', tag: 'v1', node: 'web', instance: i + 1, host: 'bench', ip: '127.0.0.1', port: 80, hostPort, proto: 'tcp', container: `b${i + 1}`, primary: true };
        await client.put(portsKey(e)).value(JSON.stringify(e));
    }
    client.close();
}
/** One GET with the bench Host header (fetch() would not let us set Host). */
function getStatus(port) {
    return new Promise((resolve, reject) => {
        http
            .get({ host: '127.0.0.1', port, path: '/', headers: { host: HOST }, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
        })
            .on('error', reject);
    });
}
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
async function main() {
    const o = parseArgs(process.argv.slice(2));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-router-'));
    const cleanups = [];
    const log = (msg) => void process.stderr.write(`${msg}\n`);
    try {
        const etcdClientPort = await freePort();
        const etcd = await startEtcdMember({ name: 'bench', dataDir: path.join(dir, 'etcd'), clientPort: etcdClientPort, peerPort: await freePort(), logFile: path.join(dir, 'etcd.log') });
        cleanups.push(() => etcd.stop());
        const backends = await startBackends(o.backends);
        cleanups.push(() => backends.children.forEach((c) => c.kill('SIGTERM')));
        await writeRoutes(etcd.url, backends.ports);
        const nginx = await startNginx(path.join(dir, 'nginx'), backends.ports);
        cleanups.push(() => nginx.child.kill('SIGTERM'));
        const client = connectEtcd(etcd.url);
        cleanups.push(() => client.close());
        const targets = [
            { name: 'nginx, 1 worker, upstream keepalive', port: nginx.port, pids: await withChildren(nginx.child.pid) },
        ];
        const workerCounts = [...new Set([o.workers, 1])];
        for (const workers of workerCounts) {
            const router = new Router({ client, hostName: `bench-${workers}`, dataDir: path.join(dir, `router-${workers}`), port: 0, host: '127.0.0.1', workers, log });
            const port = await router.start();
            cleanups.push(() => router.stop());
            targets.push({ name: `viking router, ${workers} worker${workers > 1 ? 's' : ''}`, port, pids: [process.pid, ...router.workerPids()] });
        }
        for (const t of targets) {
            const status = await getStatus(t.port);
            if (status !== 200)
                throw new Error(`${t.name} answered ${status} for ${HOST}`);
        }
        const loadBefore = os.loadavg()[0];
        log(`warming up ${targets.length} proxies in front of ${o.backends} backends...`);
        for (const t of targets)
            await wrk(t.port, o, 3);
        const results = new Map(targets.map((t) => [t.name, []]));
        for (let r = 1; r <= o.runs; r++) {
            for (const t of targets) {
                const res = await wrk(t.port, o, o.duration, t.pids);
                results.get(t.name).push(res);
                log(`run ${r}/${o.runs} ${t.name}: ${Math.round(res.rps)} req/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, ${res.errors} errors, ${res.cpuUs?.toFixed(0)} µs CPU/request`);
            }
        }
        const rows = targets.map((t) => {
            const rs = results.get(t.name);
            return {
                name: t.name,
                rps: median(rs.map((x) => x.rps)),
                p50: median(rs.map((x) => x.p50)),
                p99: median(rs.map((x) => x.p99)),
                cpuUs: median(rs.map((x) => x.cpuUs ?? NaN)),
                errors: rs.reduce((s, x) => s + x.errors, 0),
            };
        });
        const base = rows[0];
        const nginxVersion = (await run('nginx', ['-v']).catch((e) => ({ stderr: e.stderr ?? '' }))).stderr.trim();
        process.stdout.write(`\nrouter benchmark: wrk -t${o.threads} -c${o.connections} -d${o.duration}s, median of ${o.runs} runs, ${o.backends} node:http backends, ` +
            `${os.availableParallelism()} cores, load average ${loadBefore.toFixed(2)} before and ${os.loadavg()[0].toFixed(2)} after, node ${process.version}, ${nginxVersion}\n\n`);
        process.stdout.write('| proxy | req/s | p50 | p99 | errors | CPU/request | req/s × nginx | p99 × nginx |\n|---|---|---|---|---|---|---|---|\n');
        for (const r of rows) {
            process.stdout.write(`| ${r.name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.errors} | ${r.cpuUs.toFixed(0)} µs | ${(r.rps / base.rps).toFixed(2)} | ${(r.p99 / base.p99).toFixed(2)} |\n`);
        }
    }
    finally {
        for (const c of cleanups.reverse())
            await Promise.resolve(c()).catch(() => { });
        await rm(dir, { recursive: true, force: true });
    }
}
if (process.argv[1] === fileURLToPath(import.meta.url)) {
    main().then(() => process.exit(0), (err) => {
        process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
        process.exit(1);
    });
}
//# sourceMappingURL=router.js.map
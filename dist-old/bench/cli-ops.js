/**
 * How long the operator commands take on a real two-host cluster (etcd, a
 * master on 127.0.0.1, a worker on 127.0.0.2, real Docker), measured as a
 * user sees them: wall time of the `viking` command, from start to exit.
 * Also the delay from a request reaching the app to its log line printed by
 * `viking logs -f`. Prints a table of medians. Not a timed test.
 *
 *   npm run build && node dist/bench/cli-ops.js [rounds]
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestEtcd } from '../test/helpers/etcd.js';
import { NO_CONFIG, VIKING_BIN, runCli, startHostProcess } from '../test/helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts } from '../test/helpers/docker.js';
import { uniqueName } from '../test/helpers/wait.js';
const HELLO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../vikingfiles/hello');
const rounds = Number(process.argv[2] ?? 3);
const stack = uniqueName('bench');
const domain = `${stack}.local`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function hit(port, p) {
    return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: p, headers: { host: domain }, agent: false }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
}
const work = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-'));
await baseImages();
const etcd = await startTestEtcd('bench');
const h1 = await startHostProcess({ name: uniqueName('b1'), etcd: etcd.url, master: true, dataDir: path.join(work, 'd1') });
const h2 = await startHostProcess({ name: uniqueName('b2'), etcd: etcd.url, ip: '127.0.0.2', dataDir: path.join(work, 'd2') });
const rows = [];
try {
    const app = path.join(work, 'app');
    await cp(HELLO, app, { recursive: true });
    const vf = await readFile(path.join(app, 'Vikingfile'), 'utf8');
    await writeFile(path.join(app, 'Vikingfile'), vf.replace('name: hello', `name: ${stack}`).replace('viking:hello/app', `viking:${stack}/app`).replace('- hello.local', `- ${domain}`));
    const server = await readFile(path.join(app, 'server.js'), 'utf8');
    await writeFile(path.join(app, 'server.js'), server.replace("  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });", "  console.log(`${req.method} ${req.url}`);\n  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });"));
    const timed = async (label, args) => {
        const t = Date.now();
        const r = await runCli([...args, '--api', h1.api]);
        if (r.code !== 0)
            throw new Error(`${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
        const row = rows.find((x) => x[0] === label) ?? (rows.push([label, []]), rows.at(-1));
        row[1].push(Date.now() - t);
    };
    await timed('push (2 replicas, warm cache)', ['push', app]);
    for (let i = 0; i < rounds; i++) {
        await timed('push (2 replicas, warm cache)', ['push', app]);
        await timed('scale web=2 -> 3', ['scale', stack, 'web=3']);
        await timed('scale web=3 -> 2', ['scale', stack, 'web=2']);
        await timed('env set (rolling restart, 2 replicas)', ['env', stack, 'set', `ROUND=${i}`]);
        await timed('rollback (2 replicas)', ['rollback', stack]);
        await timed('logs, 100 lines a replica, 2 hosts', ['logs', stack, 'web']);
        await timed('ps', ['ps']);
    }
    // logs -f: from sending a request to its line printed by the CLI.
    const child = spawn(process.execPath, [VIKING_BIN, 'logs', stack, 'web', '-f', '--tail', '0', '--api', h1.api], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, VIKING_CONFIG: NO_CONFIG, VIKING_TOKEN: h1.token },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    const delays = [];
    for (let i = 0; i < 10 * rounds; i++) {
        const marker = `/lat-${i}-${Date.now()}`;
        const t = Date.now();
        await hit(h1.routerPort, marker);
        while (!out.includes(marker))
            await new Promise((r) => setTimeout(r, 2));
        delays.push(Date.now() - t);
    }
    child.kill('SIGTERM');
    rows.push(['logs -f: request to printed line', delays]);
    await timed('rm (2 replicas, 2 hosts)', ['rm', stack, '--yes']);
}
finally {
    await h2.stop();
    await h1.stop();
    await removeHostContainers(h1.name);
    await removeHostContainers(h2.name);
    await removeStackArtifacts(stack);
    await etcd.stop();
    await rm(work, { recursive: true, force: true });
}
const width = Math.max(...rows.map((r) => r[0].length));
console.log(`${'operation'.padEnd(width)}  median ms  min ms  max ms  runs`);
for (const [label, xs] of rows) {
    console.log(`${label.padEnd(width)}  ${String(median(xs)).padStart(9)}  ${String(Math.min(...xs)).padStart(6)}  ${String(Math.max(...xs)).padStart(6)}  ${String(xs.length).padStart(4)}`);
}
//# sourceMappingURL=cli-ops.js.map
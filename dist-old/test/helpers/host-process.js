/**
 * A real `viking host` process started through the CLI, as a server would
 * run it. Resolves once it prints its `ready router=… api=…` line.
 *
 * The API needs a token: startHostProcess makes one in the host's etcd
 * (once per etcd) and runCli passes the latest one as VIKING_TOKEN unless
 * the test gives its own (VIKING_TOKEN: '' for none). runCli never reads
 * the user's real config file: VIKING_CONFIG points at a path that does not exist.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createToken } from '../../lib/auth/tokens.js';
import { connectEtcd } from '../../lib/store/client.js';
export const VIKING_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/viking.js');
const tokens = new Map();
let latestToken;
/** An API token valid in the cluster of this etcd, made once per etcd URL. */
export function testToken(etcdUrl) {
    let made = tokens.get(etcdUrl);
    if (!made) {
        made = (async () => {
            const client = connectEtcd(etcdUrl);
            try {
                return (await createToken(client, 'test')).token;
            }
            finally {
                client.close();
            }
        })();
        tokens.set(etcdUrl, made);
    }
    return made.then((t) => (latestToken = t));
}
/** A config path no test writes: runCli's default, so the user's own config never leaks in. */
export const NO_CONFIG = path.join('/nonexistent', `viking-test-${process.pid}`, 'config.json');
export async function startHostProcess(o) {
    const ip = o.ip ?? '127.0.0.1';
    const token = await testToken(o.etcd);
    const args = [
        VIKING_BIN, 'host', '--etcd', o.etcd, '--name', o.name, '--ip', ip,
        '--router-port', '0', '--api-port', '0', '--data-dir', o.dataDir,
        ...(o.master ? ['--master'] : []),
        // Several hosts share 2 cores in tests: the router serves in the host process unless a test asks for workers.
        ...((o.extra ?? []).includes('--router-workers') ? [] : ['--router-workers', '0']),
        ...(o.extra ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d) => (out += d.toString()));
    child.stderr?.on('data', (d) => (out += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`host ${o.name} not ready in 20 s:\n${out}`)), 20_000);
        const onData = () => {
            const m = /ready router=(\d+) api=(\d+)/.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({ router: Number(m[1]), api: Number(m[2]) });
            }
        };
        child.stdout?.on('data', onData);
        child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`host ${o.name} exited with ${code} before ready:\n${out}`));
        });
    });
    return {
        name: o.name,
        token,
        child,
        routerPort: ready.router,
        apiPort: ready.api,
        api: `http://${ip}:${ready.api}`,
        output: () => out,
        async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null)
                child.kill(signal);
            await exited;
        },
    };
}
/** Runs the viking CLI to completion; resolves with its exit code and output. */
export function runCli(args, env = {}) {
    return new Promise((resolve) => {
        const defaults = { VIKING_CONFIG: NO_CONFIG, ...(latestToken ? { VIKING_TOKEN: latestToken } : {}) };
        const child = spawn(process.execPath, [VIKING_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...defaults, ...env } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d.toString()));
        child.stderr.on('data', (d) => (stderr += d.toString()));
        child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
}
//# sourceMappingURL=host-process.js.map
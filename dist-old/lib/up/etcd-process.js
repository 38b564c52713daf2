/**
 * Starting and stopping an etcd member from the installed binary (Debian's
 * etcd-server). Used by `viking up` for the embedded single-machine cluster
 * and by the test harness, which starts its own members on free ports.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { VikingError } from '../errors.js';
import { connectEtcd } from '../store/client.js';
/** A free TCP port on an address, chosen by the kernel. */
export function freePort(host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen(0, host, () => {
            const port = srv.address().port;
            srv.close(() => resolve(port));
        });
    });
}
export async function startEtcdMember(o) {
    const ip = o.ip ?? '127.0.0.1';
    const clientUrl = `http://${ip}:${o.clientPort}`;
    const peerUrl = `http://${ip}:${o.peerPort}`;
    await mkdir(o.dataDir, { recursive: true });
    const args = [
        '--name', o.name,
        '--data-dir', path.join(o.dataDir, 'member-data'),
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', o.initialCluster ?? `${o.name}=${peerUrl}`,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', o.clusterToken ?? `viking-${o.name}`,
        '--heartbeat-interval', '100',
        '--election-timeout', '1000',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
    ];
    const child = spawn(o.binary ?? 'etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const spawnError = new Promise((_, reject) => child.once('error', (err) => reject(new VikingError('VIKING_E_ETCD_BINARY_MISSING', `cannot run etcd (${err.message}): install the Debian package etcd-server`))));
    if (o.logFile) {
        const log = createWriteStream(o.logFile, { flags: 'a' });
        child.stdout?.pipe(log);
        child.stderr?.pipe(log);
    }
    else {
        child.stdout?.resume();
        child.stderr?.resume();
    }
    const exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const member = {
        process: child,
        url: clientUrl,
        async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null)
                child.kill(signal);
            await exited;
        },
    };
    if (!o.initialCluster)
        await Promise.race([waitEtcdReady([clientUrl], 15_000), spawnError, exited.then(() => {
                throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `etcd exited at start; see ${o.logFile ?? 'its output'}`);
            })]);
    return member;
}
/** Waits until the cluster at `urls` answers a read. */
export async function waitEtcdReady(urls, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no answer';
    while (Date.now() < deadline) {
        const client = connectEtcd(urls);
        try {
            await Promise.race([
                client.get('/viking-ping').string(),
                new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000)),
            ]);
            return;
        }
        catch (err) {
            lastError = err.message;
        }
        finally {
            client.close();
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `etcd at ${urls.join(',')} did not become ready: ${lastError}`);
}
//# sourceMappingURL=etcd-process.js.map
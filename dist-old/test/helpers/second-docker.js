/**
 * A second, empty Docker daemon on this machine, standing in for another
 * server's: its own data root, exec root, socket and bridge, so it shares
 * nothing with the main daemon but the loopback interface where the cluster
 * registry listens.
 *
 * Never start a second dockerd with `--bridge none`: dockerd then deletes the
 * default `docker0` interface, which breaks the main daemon's containers.
 * This one gets a bridge of its own, made here and removed in stop(), on a
 * documentation range address (TEST-NET-2) that routes nowhere; its
 * containers never send traffic off the machine (iptables, masquerading and
 * forwarding are off).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { waitFor } from './wait.js';
const run = promisify(execFile);
export async function startSecondDocker() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-dockerd-'));
    const socket = path.join(dir, 'docker.sock');
    const bridge = `vkt${Math.random().toString(16).slice(2, 8)}`;
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', '198.51.100.1/24', 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    const child = spawn('dockerd', [
        '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '-H', `unix://${socket}`,
        '--pidfile', path.join(dir, 'docker.pid'), '--bridge', bridge, '--iptables=false', '--ip-masq=false', '--ip-forward=false',
    ], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const docker = new Docker({ socketPath: socket });
    await waitFor('the second dockerd', async () => (await docker.ping()) !== undefined, 30_000, 200);
    return {
        socket,
        docker,
        async stop() {
            const list = await docker.listContainers({ all: true }).catch(() => []);
            await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => { })));
            child.kill('SIGTERM');
            await exited;
            await run('ip', ['link', 'del', bridge]).catch(() => { });
            await rm(dir, { recursive: true, force: true }).catch(() => { });
        },
    };
}
//# sourceMappingURL=second-docker.js.map
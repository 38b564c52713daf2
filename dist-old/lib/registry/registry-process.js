/**
 * The cluster registry: Debian's docker-registry (distribution 2.8) run by
 * the master, storage under the data dir. The builder pushes every image it
 * makes there and every slave pulls from it, so a host that never built an
 * image can still run it. Docker trusts registries on 127.0.0.0/8 without
 * TLS; a registry on another address needs `insecure-registries` in the
 * daemons' /etc/docker/daemon.json (bootstrap.sh notes how).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';
function config(address, storage) {
    return [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storage}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${address}`,
        '',
    ].join('\n');
}
/** Waits until GET /v2/ answers (the registry API root). */
export async function waitRegistry(address, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
        try {
            const res = await fetch(`http://${address}/v2/`);
            if (res.ok)
                return;
            last = `HTTP ${res.status}`;
        }
        catch (err) {
            last = err.message;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `the cluster registry at ${address} did not answer: ${last}`);
}
export async function startRegistry(o) {
    const dir = path.join(o.dataDir, 'registry');
    await mkdir(path.join(dir, 'storage'), { recursive: true });
    const configFile = path.join(dir, 'config.yml');
    await writeFile(configFile, config(o.address, path.join(dir, 'storage')));
    const child = spawn(o.binary ?? 'docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(path.join(dir, 'registry.log'), { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const failed = new Promise((_, reject) => {
        child.once('error', (err) => reject(new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `cannot run docker-registry (${err.message}): install the Debian package docker-registry`)));
        void exited.then(() => reject(new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `docker-registry exited at start; see ${dir}/registry.log`)));
    });
    failed.catch(() => { });
    await Promise.race([waitRegistry(o.address), failed]);
    return {
        address: o.address,
        process: child,
        async stop() {
            if (child.exitCode === null && child.signalCode === null)
                child.kill('SIGTERM');
            await exited;
        },
    };
}
//# sourceMappingURL=registry-process.js.map
/**
 * `viking up`: the whole cluster on one machine, in one command. Starts an
 * etcd member (the installed etcd binary, data under --data-dir), makes the
 * base images if missing, and runs a master host with router and API, in
 * the foreground. The first time, it makes the cluster's first API token
 * and saves it with the API URL in the CLI config file. Ctrl-C stops
 * everything it started: the host, the containers it ran, and etcd.
 */
import os from 'node:os';
import path from 'node:path';
import { handled } from '../output.js';
import { configPath, writeConfig } from '../config.js';
import { defaultDataDir, defaultRouterPort, logLine, onShutdown } from './host.js';
export function hostNameOf(raw) {
    const name = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
    return name || 'viking';
}
async function saveFirst(token, apiPort) {
    const file = configPath();
    await writeConfig({ api: `http://127.0.0.1:${apiPort}`, token }, file);
    logLine(`made the first API token 'admin' and saved it with the API URL in ${file} (mode 0600)`);
}
export function upCommand(y) {
    return y.command('up', 'run a one-machine cluster: etcd + a master host with router and API (foreground; Ctrl-C stops it)', (a) => a
        .option('data-dir', { type: 'string', default: defaultDataDir(), describe: 'etcd data, pushed sources and logs' })
        .option('router-port', { type: 'number', default: defaultRouterPort(), describe: 'front router port' })
        .option('api-port', { type: 'number', default: 8791, describe: '/v1 API port' })
        .option('etcd-port', { type: 'number', default: 2379, describe: 'etcd client port (peer port is this + 1)' })
        .option('registry-port', { type: 'number', default: 5000, describe: 'cluster registry port on 127.0.0.1 (0: no registry, images stay local)' })
        .option('name', { type: 'string', default: hostNameOf(os.hostname()), describe: 'this host\'s name' })
        .option('ip', { type: 'string', default: '127.0.0.1', describe: 'address containers publish on' })
        .option('keep-containers', { type: 'boolean', default: false, describe: 'leave the apps running on exit' }), handled(async (args) => {
        // Loaded here, not at the top: commands that only call the API start faster without them.
        const [{ VikingHost }, { startEtcdMember }, { connectDocker }, { ensureBaseImages }, { listOwned, removeContainer }, { ensureFirstToken }] = await Promise.all([
            import('../../host/host.js'),
            import('../../up/etcd-process.js'),
            import('../../docker/client.js'),
            import('../../docker/base-images.js'),
            import('../../slave/containers.js'),
            import('../../auth/tokens.js'),
        ]);
        const dataDir = path.resolve(args['data-dir']);
        logLine(`starting etcd on 127.0.0.1:${args['etcd-port']} (data in ${dataDir}/etcd, log ${dataDir}/etcd.log)`);
        const etcd = await startEtcdMember({
            name: args.name,
            dataDir: path.join(dataDir, 'etcd'),
            clientPort: args['etcd-port'],
            peerPort: args['etcd-port'] + 1,
            logFile: path.join(dataDir, 'etcd.log'),
        });
        const docker = connectDocker();
        for (const r of await ensureBaseImages(docker))
            if (r.created)
                logLine(`made base image ${r.image}`);
        const host = new VikingHost({
            name: args.name,
            ip: args.ip,
            etcd: [etcd.url],
            master: true,
            routerPort: args['router-port'],
            apiPort: args['api-port'],
            apiListen: '0.0.0.0',
            dataDir,
            ...(args['registry-port'] > 0 ? { registry: { address: `127.0.0.1:${args['registry-port']}`, run: true } } : {}),
            log: logLine,
        });
        onShutdown(async () => {
            await host.stop();
            if (!args['keep-containers']) {
                for (const c of await listOwned(docker, args.name))
                    await removeContainer(docker, c.id, 5);
            }
            await etcd.stop();
        });
        // The first user's token, made once per cluster and saved where the CLI looks for it
        // before the API answers, so whoever waits for /v1/ping finds the config ready.
        try {
            const first = await ensureFirstToken(host.client, 'admin');
            if (first && args['api-port'] !== 0)
                await saveFirst(first.token, args['api-port']);
            await host.start();
            if (first && args['api-port'] === 0)
                await saveFirst(first.token, host.apiPort);
            if (!first)
                logLine(`API tokens already exist; viking token create NAME --etcd ${etcd.url} --save makes another`);
        }
        catch (err) {
            await etcd.stop();
            throw err;
        }
        logLine(`ready router=${host.routerPort} api=${host.apiPort}`);
        logLine(`viking is up: viking push <dir> --api http://127.0.0.1:${host.apiPort}`);
    }));
}
//# sourceMappingURL=up.js.map
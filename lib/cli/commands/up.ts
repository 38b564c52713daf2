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
import type { Argv } from 'yargs';
import { handled } from '../output.js';
import { configPath, writeConfig } from '../config.js';
import { defaultDataDir, defaultRouterPort, logLine, onShutdown } from './host.js';
import { routerTuning, withRouterFlags, type RouterFlagArgs } from './router-flags.js';

interface UpArgs extends RouterFlagArgs {
  'data-dir': string;
  'router-port': number;
  'api-port': number;
  'etcd-port': number;
  'registry-port': number;
  name: string;
  ip: string;
  listen?: string;
  'keep-containers'?: boolean;
}

export function hostNameOf(raw: string): string {
  const name = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return name || 'viking';
}

/** The address to reach a listener on: the one it listens on, or loopback for the wildcard. */
export function reachable(listen: string): string {
  return listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen.includes(':') ? `[${listen}]` : listen;
}

async function saveFirst(token: string, apiUrl: string): Promise<void> {
  const file = configPath();
  await writeConfig({ api: apiUrl, token }, file);
  logLine(`made the first API token 'admin' and saved it with the API URL in ${file} (mode 0600)`);
}

export function upCommand(y: Argv): Argv {
  return y.command<UpArgs>(
    'up',
    'run a one-machine cluster: etcd + a master host with router and API (foreground; Ctrl-C stops it)',
    (a) =>
      withRouterFlags(a)
        .option('data-dir', { type: 'string', default: defaultDataDir(), describe: 'etcd data, pushed sources and logs' })
        .option('router-port', { type: 'number', default: defaultRouterPort(), describe: 'front router port' })
        .option('api-port', { type: 'number', default: 8791, describe: '/v1 API port' })
        .option('etcd-port', { type: 'number', default: 2379, describe: 'etcd client port (peer port is this + 1)' })
        .option('registry-port', { type: 'number', default: 5000, describe: 'cluster registry port on 127.0.0.1 (0: no registry, images stay local)' })
        .option('name', { type: 'string', default: hostNameOf(os.hostname()), describe: 'this host\'s name' })
        .option('ip', { type: 'string', default: '127.0.0.1', describe: 'address containers publish on; the router and the API listen there too' })
        .option('listen', { type: 'string', describe: 'address the router and the API listen on instead of --ip (0.0.0.0: every interface)' })
        .option('keep-containers', { type: 'boolean', default: false, describe: 'leave the apps running on exit' }) as unknown as Argv<UpArgs>,
    handled(async (args: UpArgs) => {
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
      const at = reachable(args.listen ?? args.ip);
      logLine(`starting etcd on 127.0.0.1:${args['etcd-port']} (data in ${dataDir}/etcd, log ${dataDir}/etcd.log)`);
      const etcd = await startEtcdMember({
        name: args.name,
        dataDir: path.join(dataDir, 'etcd'),
        clientPort: args['etcd-port'],
        peerPort: args['etcd-port'] + 1,
        logFile: path.join(dataDir, 'etcd.log'),
      });
      const docker = connectDocker();
      for (const r of await ensureBaseImages(docker)) if (r.created) logLine(`made base image ${r.image}`);
      const host = new VikingHost({
        name: args.name,
        ip: args.ip,
        etcd: [etcd.url],
        master: true,
        routerPort: args['router-port'],
        apiPort: args['api-port'],
        // One machine: nothing listens beyond the address given (127.0.0.1 unless told otherwise).
        apiListen: args.listen ?? args.ip,
        routerListen: args.listen ?? args.ip,
        dataDir,
        ...(args['registry-port'] > 0 ? { registry: { address: `127.0.0.1:${args['registry-port']}`, run: true } } : {}),
        routerTuning: routerTuning(args),
        log: logLine,
      });
      onShutdown(async () => {
        await host.stop();
        if (!args['keep-containers']) {
          // Only this cluster's: another cluster on this Docker Engine may use the same host name.
          if (host.clusterId) for (const c of await listOwned(docker, { cluster: host.clusterId, host: args.name })) await removeContainer(docker, c.id, 5);
        }
        await etcd.stop();
      });
      // The first user's token, made once per cluster and saved where the CLI looks for it
      // before the API answers, so whoever waits for /v1/ping finds the config ready.
      try {
        const first = await ensureFirstToken(host.client, 'admin');
        if (first && args['api-port'] !== 0) await saveFirst(first.token, `http://${at}:${args['api-port']}`);
        await host.start();
        if (first && args['api-port'] === 0) await saveFirst(first.token, `http://${at}:${host.apiPort}`);
        if (!first) logLine(`API tokens already exist; viking token create NAME --etcd ${etcd.url} --save makes another`);
      } catch (err) {
        await etcd.stop();
        throw err;
      }
      logLine(`ready router=${host.routerPort} api=${host.apiPort}`);
      logLine(`viking is up: viking push <dir> --api http://${at}:${host.apiPort}`);
    }),
  );
}

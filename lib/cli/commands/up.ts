/**
 * `viking up`: one server of a cluster, in the foreground.
 *
 *   viking up [--ip ADDR]                 the first server (the seed): an etcd member,
 *                                         the cluster registry and a master host
 *   viking up --join http://FIRST:2379    another server: token check, then an etcd
 *                                         member (while fewer than 3 vote) or client,
 *                                         and a master host (lib/join)
 *
 * It makes the base images if missing. The first time, the seed makes the
 * cluster's first API token and saves it with the API URL in the CLI config
 * file. With a routable --ip, etcd listens there too, so the ports are closed
 * to containers (lib/join/etcd-guard.ts). Ctrl-C stops everything it
 * started: the host, the containers it ran, the guard and etcd.
 */
import os from 'node:os';
import path from 'node:path';
import type { Argv } from 'yargs';
import { handled } from '../output.js';
import { configPath, readConfig, writeConfig } from '../config.js';
import { defaultDataDir, defaultRouterPort, logLine, onShutdown } from './host.js';
import { httpsPortOf, routerTuning, runsRouter, withRouterFlags, type RouterFlagArgs } from './router-flags.js';
import { acmeSettings, withAcmeFlags, type AcmeFlagArgs } from './acme-flags.js';

interface UpArgs extends RouterFlagArgs, AcmeFlagArgs {
  'data-dir': string;
  'router-port'?: number;
  'api-port': number;
  'etcd-port': number;
  'registry-port': number;
  name: string;
  ip: string;
  listen?: string;
  'keep-containers'?: boolean;
  join?: string;
  token?: string;
  tags?: string;
  'docker-socket'?: string;
  'router-workers'?: number;
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
    'run a server in the foreground: the first one (etcd, registry, master host), or one that joins with --join (Ctrl-C stops it)',
    (a) =>
      withAcmeFlags(withRouterFlags(a))
        .option('data-dir', { type: 'string', default: defaultDataDir(), describe: 'etcd data, join state, pushed sources and logs' })
        .option('router-port', { type: 'number', describe: 'front router port (default 80 as root, else 8080)' })
        .option('api-port', { type: 'number', default: 8791, describe: '/v1 API port' })
        .option('etcd-port', { type: 'number', default: 2379, describe: 'etcd client port (peer port is this + 1)' })
        .option('registry-port', { type: 'number', default: 5000, describe: 'cluster registry port on the first server, on --ip (127.0.0.1 when --ip is loopback; 0: no registry, images stay local)' })
        .option('name', { type: 'string', default: hostNameOf(os.hostname()), describe: 'this server\'s name (also its etcd member\'s)' })
        .option('ip', { type: 'string', default: '127.0.0.1', describe: 'this server\'s address: containers publish on it, the router and the API listen there, and etcd too when it is not loopback' })
        .option('listen', { type: 'string', describe: 'address the router and the API listen on instead of --ip (0.0.0.0: every interface)' })
        .option('join', { type: 'string', describe: 'join the cluster whose etcd answers at this URL (http://FIRST:2379) instead of starting one' })
        .option('token', { type: 'string', describe: 'an API token of the cluster to join (default $VIKING_TOKEN, then the CLI config)' })
        .option('tags', { type: 'string', describe: 'host tags for placement, comma separated' })
        .option('docker-socket', { type: 'string', describe: 'Docker Engine socket (default $DOCKER_HOST or /var/run/docker.sock)' })
        .option('router-workers', { type: 'number', describe: 'router worker processes, 0 to serve in the server process (default: one per core)' })
        .option('keep-containers', { type: 'boolean', default: false, describe: 'leave the apps running on exit' }) as unknown as Argv<UpArgs>,
    handled(async (args: UpArgs) => {
      // Loaded here, not at the top: commands that only call the API start faster without them.
      const [{ VikingHost }, { startServerEtcd }, { connectDocker }, { ensureBaseImages }, { listOwned, removeContainer }, { ensureFirstToken }, guard, { isLoopback, urlHost }] = await Promise.all([
        import('../../host/host.js'),
        import('../../join/server-etcd.js'),
        import('../../docker/client.js'),
        import('../../docker/base-images.js'),
        import('../../slave/containers.js'),
        import('../../auth/tokens.js'),
        import('../../join/etcd-guard.js'),
        import('../../join/addresses.js'),
      ]);
      // Checked before anything starts: a bad email or URL stops here.
      const acme = acmeSettings(args);
      const router = runsRouter(args as unknown as Record<string, unknown>);
      const routerPort = args['router-port'] ?? defaultRouterPort();
      const dataDir = path.resolve(args['data-dir']);
      const at = reachable(args.listen ?? args.ip);
      const etcdPort = args['etcd-port'];
      let host: InstanceType<typeof VikingHost> | undefined;
      let server: Awaited<ReturnType<typeof startServerEtcd>> | undefined;
      let guarded = false;
      let stopping = false;
      const docker = connectDocker(args['docker-socket']);
      const stopAll = async (signal?: NodeJS.Signals): Promise<void> => {
        stopping = true;
        // SIGTERM (the supervisor or systemd: a restart, an upgrade) is a planned stop: the host's
        // work stays in place for its grace (60 s) and its containers keep serving until it is back.
        // Ctrl-C (SIGINT) and a dying etcd member stop everything this command started.
        const planned = signal === 'SIGTERM';
        await host?.stop({ planned });
        if (host && !planned && !args['keep-containers']) {
          // Only this cluster's: another cluster on this Docker Engine may use the same host name.
          if (host.clusterId) for (const c of await listOwned(docker, { cluster: host.clusterId, host: args.name })) await removeContainer(docker, c.id, 5);
        }
        await server?.stop();
        if (guarded) await guard.removeGuard().catch(() => 0);
      };
      onShutdown(stopAll);

      // Close the etcd ports to containers before etcd listens on a routable address.
      const registryPort = args['registry-port'];
      const localPorts = [etcdPort, etcdPort + 1, ...(registryPort > 0 && !args.join ? [registryPort] : [])];
      if (!isLoopback(args.ip)) {
        if (await guard.canGuard()) {
          await guard.installGuard({ localPorts, remote: [] });
          guarded = true;
        } else {
          logLine(`WARNING: cannot set iptables rules (needs root and iptables): containers on this server can reach etcd on ${args.ip}:${etcdPort}; firewall it (docs/security.md)`);
        }
      }
      const token = args.token ?? (process.env.VIKING_TOKEN || (await readConfig().catch(() => ({}) as { token?: string })).token);
      try {
        server = await startServerEtcd({
          name: args.name,
          ip: args.ip,
          dataDir,
          clientPort: etcdPort,
          peerPort: etcdPort + 1,
          ...(args.join ? { join: args.join } : {}),
          ...(token ? { token } : {}),
          log: logLine,
        });
        if (guarded) {
          const remote = server.state.endpoints.map(urlHost).filter((ip) => ip !== '' && ip !== args.ip && !isLoopback(ip));
          await guard.installGuard({ localPorts, remote: [...new Set(remote)].map((ip) => ({ ip, ports: [etcdPort, etcdPort + 1] })) });
        }
      } catch (err) {
        if (guarded) await guard.removeGuard().catch(() => 0);
        throw err;
      }
      const running = server;
      logLine(`etcd role: ${running.role}; viking host uses ${running.endpoints.join(', ')}`);
      for (const r of await ensureBaseImages(docker)) if (r.created) logLine(`made base image ${r.image}`);
      const seed = running.role === 'seed';
      const registryAt = `${isLoopback(args.ip) ? '127.0.0.1' : args.ip}:${registryPort}`;
      host = new VikingHost({
        name: args.name,
        ip: args.ip,
        etcd: running.endpoints,
        master: true,
        ...(router ? {} : { router: false }),
        routerPort,
        httpsPort: router ? httpsPortOf(args, routerPort) : 0,
        apiPort: args['api-port'],
        // Nothing listens beyond the address given (127.0.0.1 unless told otherwise).
        apiListen: args.listen ?? args.ip,
        routerListen: args.listen ?? args.ip,
        dataDir,
        tags: args.tags ? args.tags.split(',').map((t) => t.trim()).filter(Boolean) : [],
        ...(args['docker-socket'] ? { dockerSocket: args['docker-socket'] } : {}),
        ...(seed && registryPort > 0 ? { registry: { address: registryAt, run: true } } : {}),
        ...(args['router-workers'] !== undefined ? { routerWorkers: args['router-workers'] } : {}),
        ...(args['router-engine'] ? { routerEngine: args['router-engine'] } : {}),
        routerTuning: routerTuning(args),
        ...acme,
        log: logLine,
      });
      // The etcd member is this server's: if it dies, the server stops so its supervisor starts both again.
      void running.member?.exited.then(() => {
        if (stopping) return;
        logLine('etcd member exited; stopping this server so its supervisor restarts it');
        void stopAll().finally(() => process.exit(1));
      });
      try {
        // The first user's token, made once per cluster and saved where the CLI looks for it
        // before the API answers, so whoever waits for /v1/ping finds the config ready.
        const first = seed ? await ensureFirstToken(host.client, 'admin') : undefined;
        if (first && args['api-port'] !== 0) await saveFirst(first.token, `http://${at}:${args['api-port']}`);
        await host.start();
        if (first && args['api-port'] === 0) await saveFirst(first.token, `http://${at}:${host.apiPort}`);
        if (seed && !first) logLine(`API tokens already exist; viking token create NAME --etcd ${running.endpoints[0]} --save makes another`);
      } catch (err) {
        await stopAll();
        throw err;
      }
      logLine(`ready router=${host.routerPort} api=${host.apiPort} https=${host.httpsPort}`);
      logLine(`viking is up: viking push <dir> --api http://${at}:${host.apiPort}`);
    }),
  );
}

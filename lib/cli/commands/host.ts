/**
 * `viking host`: run this server as a member of a cluster (see lib/host).
 * Runs in the foreground; SIGTERM or Ctrl-C resigns, revokes the lease and
 * exits cleanly.
 */
import os from 'node:os';
import path from 'node:path';
import type { Argv } from 'yargs';
import { handled } from '../output.js';
import { VikingError } from '../../errors.js';
import { parseMemory } from '../../vikingfile/values.js';
import type { ContainerLimits } from '../../store/records.js';
import { BALANCE_MODES, type BalanceMode } from '../../router/upstreams.js';
import { ROUTER_ONLY_FLAGS, httpsPortOf, routerTuning, runsRouter, withRouterFlags, type RouterFlagArgs } from './router-flags.js';
import { DEFAULT_LEADER_TTL_SECONDS } from '../../leader/election.js';
import { acmeSettings, withAcmeFlags, type AcmeFlagArgs } from './acme-flags.js';

export interface HostArgs extends RouterFlagArgs, AcmeFlagArgs {
  etcd: string;
  name: string;
  ip: string;
  listen?: string;
  master?: boolean;
  'router-port'?: number;
  'api-port': number;
  'data-dir': string;
  'secrets-key'?: string;
  tags?: string;
  'max-containers'?: number;
  'default-memory'?: string;
  'pids-limit'?: number;
  'max-upload'?: string;
  'max-upload-files'?: number;
  'lease-ttl': number;
  'leader-ttl': number;
  'backoff-base-ms'?: number;
  'max-failures'?: number;
  'backoff-max-ms'?: number;
  'stop-grace': number;
  'docker-socket'?: string;
  registry?: string;
  'run-registry'?: boolean;
  'router-workers'?: number;
  'health-timeout'?: number;
  'router-balance'?: string;
  'router-metrics'?: boolean;
}

export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/viking' : path.join(os.homedir(), '.viking');
}

export function defaultRouterPort(): number {
  return process.getuid?.() === 0 ? 80 : 8080;
}

export function logLine(msg: string): void {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
}

/** Stops `stop` once on the first SIGINT/SIGTERM, then exits. */
export function onShutdown(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logLine(`${signal}: shutting down`);
    stop(signal).then(
      () => process.exit(0),
      (err: Error) => {
        logLine(`shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** `--default-memory 256m --pids-limit 100` as the host's container limits. */
export function containerLimits(args: Pick<HostArgs, 'default-memory' | 'pids-limit'>): Partial<ContainerLimits> {
  const out: Partial<ContainerLimits> = {};
  if (args['default-memory'] !== undefined) {
    const parsed = parseMemory(/^\d+$/.test(args['default-memory']) ? Number(args['default-memory']) : args['default-memory']);
    if (!parsed.ok) throw new VikingError('VIKING_E_BAD_REQUEST', `--default-memory: ${parsed.message}`);
    if (parsed.value > 0 && parsed.value < 6 * 1024 * 1024) throw new VikingError('VIKING_E_BAD_REQUEST', '--default-memory: Docker needs at least 6m');
    out.defaultMemory = parsed.value;
  }
  const pids = args['pids-limit'];
  if (pids !== undefined) {
    if (!Number.isInteger(pids) || pids < 0) throw new VikingError('VIKING_E_BAD_REQUEST', '--pids-limit must be a whole number (0: no limit)');
    out.pidsLimit = pids;
  }
  return out;
}

/** `--max-upload 1g --max-upload-files 100000` as the API's upload caps (defaults: 512m, 50,000 entries). */
export function uploadCaps(args: Pick<HostArgs, 'max-upload' | 'max-upload-files'>): { maxUploadBytes?: number; maxUploadFiles?: number } {
  const out: { maxUploadBytes?: number; maxUploadFiles?: number } = {};
  if (args['max-upload'] !== undefined) {
    const parsed = parseMemory(/^\d+$/.test(args['max-upload']) ? Number(args['max-upload']) : args['max-upload']);
    if (!parsed.ok || parsed.value <= 0) throw new VikingError('VIKING_E_BAD_REQUEST', `--max-upload: a size such as 512m or 2g${parsed.ok ? '' : ` (${parsed.message})`}`);
    out.maxUploadBytes = parsed.value;
  }
  const files = args['max-upload-files'];
  if (files !== undefined) {
    if (!Number.isInteger(files) || files <= 0) throw new VikingError('VIKING_E_BAD_REQUEST', '--max-upload-files must be a whole number above 0');
    out.maxUploadFiles = files;
  }
  return out;
}

export function hostCommand(y: Argv): Argv {
  return y.command<HostArgs>(
    'host',
    'run this server as a viking host: slave, router and API (and leader when --master)',
    (a) =>
      withAcmeFlags(withRouterFlags(a))
        .option('etcd', { type: 'string', demandOption: true, describe: 'etcd URLs, comma separated (http://10.0.0.1:2379,...)' })
        .option('name', { type: 'string', demandOption: true, describe: 'host name: lowercase letters, digits, dashes' })
        .option('ip', { type: 'string', demandOption: true, describe: 'address containers publish on and routers proxy to' })
        .option('listen', { type: 'string', describe: 'address the router listens on (default 0.0.0.0: a server\'s router faces the network); the API listens on --ip' })
        .option('master', { type: 'boolean', default: false, describe: 'campaign for leadership (runs dispatch)' })
        .option('router-port', { type: 'number', describe: 'front router port (default 80 as root, else 8080; 0: any free port)' })
        .option('api-port', { type: 'number', default: 8791, describe: '/v1 API port (0: any free port)' })
        .option('data-dir', { type: 'string', default: defaultDataDir(), describe: 'where pushed sources are kept' })
        .option('secrets-key', { type: 'string', describe: "the cluster's secrets key file (default <data-dir>/secrets.key; the first master makes it, copy it to other hosts)" })
        .option('tags', { type: 'string', describe: 'host tags for placement, comma separated' })
        .option('max-containers', { type: 'number', describe: 'containers this host accepts (default: no limit)' })
        .option('default-memory', { type: 'string', describe: "memory limit of a container whose node sets no memory:, and what the planner counts for it (default 512m; 0: none)" })
        .option('pids-limit', { type: 'number', describe: 'most processes one container may run (default 512; 0: none)' })
        .option('max-upload', { type: 'string', describe: 'largest push this host\'s API unpacks, e.g. 1g (default 512m); larger gets 413 while it streams' })
        .option('max-upload-files', { type: 'number', describe: 'most files, folders and links in one push (default 50000); more gets 413' })
        .option('lease-ttl', { type: 'number', default: 3, describe: 'seconds without heartbeat before the host counts as dead' })
        .option('stop-grace', { type: 'number', default: 60, describe: 'seconds a stopped host (SIGTERM: restart, upgrade) keeps its containers running and in place for it to come back; 0 moves them at once' })
        .option('leader-ttl', { type: 'number', default: DEFAULT_LEADER_TTL_SECONDS, describe: 'seconds a dead or frozen leader holds the leadership before another host takes over' })
        .option('backoff-base-ms', { type: 'number', describe: 'first restart delay of a crashing container (doubles, max 30 s; default 1000)' })
        .option('backoff-max-ms', { type: 'number', describe: 'longest restart delay: a job that keeps failing is tried this often for ever (default 30000)' })
        .option('max-failures', { type: 'number', describe: 'failures in a row after which a job shows crash-loop instead of backoff; it is still retried (default 5)' })
        .option('docker-socket', { type: 'string', describe: 'Docker Engine socket (default $DOCKER_HOST or /var/run/docker.sock)' })
        .option('registry', { type: 'string', describe: 'the cluster registry host:port: announced in etcd, images are pushed and pulled there' })
        .option('run-registry', { type: 'boolean', default: false, describe: 'run docker-registry here at --registry (storage under --data-dir)' })
        .option('health-timeout', { type: 'number', describe: 'seconds a new container has to pass its health check (default 60)' })
        .option('router-workers', { type: 'number', describe: 'router worker processes, 0 to serve in the host process (default: one per core)' })
        .option('router-balance', { choices: BALANCE_MODES, describe: 'how the router spreads requests over a node\'s replicas (default least-conn)' })
        .option('router-metrics', { type: 'boolean', describe: 'count the router\'s traffic for /metrics and viking stats (--no-router-metrics: off)' }) as unknown as Argv<HostArgs>,
    handled(async (args: HostArgs) => {
      // Loaded here, not at the top: commands that only call the API start faster without etcd and Docker clients.
      const { VikingHost } = await import('../../host/host.js');
      // Checked before anything starts: --no-router with a router flag stops here.
      const router = runsRouter(args as unknown as Record<string, unknown>, [...ROUTER_ONLY_FLAGS, 'router-balance', 'router-metrics', 'listen']);
      const routerPort = args['router-port'] ?? defaultRouterPort();
      const host = new VikingHost({
        name: args.name,
        ip: args.ip,
        ...(args.listen ? { routerListen: args.listen } : {}),
        etcd: args.etcd.split(','),
        master: args.master ?? false,
        ...(router ? {} : { router: false }),
        routerPort,
        httpsPort: router ? httpsPortOf(args, routerPort) : 0,
        apiPort: args['api-port'],
        dataDir: path.resolve(args['data-dir']),
        ...(args['secrets-key'] ? { secretsKeyFile: path.resolve(args['secrets-key']) } : {}),
        tags: args.tags ? args.tags.split(',').map((t) => t.trim()).filter(Boolean) : [],
        ...(args['max-containers'] !== undefined ? { capacity: { containers: args['max-containers'] } } : {}),
        limits: containerLimits(args),
        ...uploadCaps(args),
        leaseTtlSeconds: args['lease-ttl'],
        leaderTtlSeconds: args['leader-ttl'],
        stopGraceSeconds: args['stop-grace'],
        ...backoffPolicy(args),
        ...(args['docker-socket'] ? { dockerSocket: args['docker-socket'] } : {}),
        ...(args.registry ? { registry: { address: args.registry, run: args['run-registry'] ?? false } } : {}),
        ...(args['router-workers'] !== undefined ? { routerWorkers: args['router-workers'] } : {}),
        ...(args['router-engine'] ? { routerEngine: args['router-engine'] } : {}),
        ...(args['health-timeout'] !== undefined ? { healthTimeoutMs: args['health-timeout'] * 1000 } : {}),
        routerBalance: (args['router-balance'] ?? 'least-conn') as BalanceMode,
        ...(args['router-metrics'] === false ? { routerMetrics: false } : {}),
        routerTuning: routerTuning(args),
        ...acmeSettings(args),
        log: logLine,
      });
      // SIGTERM/SIGINT is a planned stop: the work stays for --stop-grace seconds for this host to come back.
      onShutdown(() => host.stop({ planned: true }));
      await host.start();
      // Machine-readable line for scripts and tests that start hosts on port 0.
      logLine(`ready router=${host.routerPort} api=${host.apiPort} https=${host.httpsPort}`);
    }),
  );
}

/** The crash-loop backoff flags, only those given. */
function backoffPolicy(args: HostArgs): { backoff?: { baseMs?: number; maxMs?: number; maxFailures?: number } } {
  const backoff = {
    ...(args['backoff-base-ms'] !== undefined ? { baseMs: args['backoff-base-ms'] } : {}),
    ...(args['backoff-max-ms'] !== undefined ? { maxMs: args['backoff-max-ms'] } : {}),
    ...(args['max-failures'] !== undefined ? { maxFailures: args['max-failures'] } : {}),
  };
  return Object.keys(backoff).length > 0 ? { backoff } : {};
}

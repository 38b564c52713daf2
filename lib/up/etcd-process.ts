/**
 * Starting and stopping an etcd member from the installed binary (Debian's
 * etcd-server). Used by `viking up` for the embedded single-machine cluster
 * and by the test harness, which starts its own members on free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';
import { connectEtcd } from '../store/client.js';

export interface EtcdMemberOptions {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  ip?: string;
  /** `name=http://ip:peerPort,...` for a multi-member cluster; default: this member alone. */
  initialCluster?: string;
  /** 'existing' for a member added to a running cluster (member add first); default 'new'. */
  initialClusterState?: 'new' | 'existing';
  /** Client URLs to listen on (default: the advertised one); e.g. 127.0.0.1 and the server's address. */
  listenClientUrls?: string[];
  /** Wait until the member answers a read before resolving (default: when it is alone). A learner never answers one. */
  waitReady?: boolean;
  /** Shared by every member of one cluster (their cluster ID derives from it). */
  clusterToken?: string;
  binary?: string;
  /** Command words run before the binary, e.g. `nsenter --net=…` to start the member in another network namespace. */
  prefix?: string[];
  /** Further etcd flags, e.g. `--pre-vote`. */
  extraArgs?: string[];
  logFile?: string;
}

export interface EtcdMember {
  process: ChildProcess;
  url: string;
  /** Resolves when the process has exited, for whatever reason. */
  exited: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startEtcdMember(o: EtcdMemberOptions): Promise<EtcdMember> {
  const ip = o.ip ?? '127.0.0.1';
  const clientUrl = `http://${ip}:${o.clientPort}`;
  const peerUrl = `http://${ip}:${o.peerPort}`;
  await mkdir(o.dataDir, { recursive: true });
  const args = [
    '--name', o.name,
    '--data-dir', path.join(o.dataDir, 'member-data'),
    '--listen-client-urls', (o.listenClientUrls ?? [clientUrl]).join(','),
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', o.initialCluster ?? `${o.name}=${peerUrl}`,
    '--initial-cluster-state', o.initialClusterState ?? 'new',
    '--initial-cluster-token', o.clusterToken ?? `viking-${o.name}`,
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    // A member that comes back from a cut network must not depose a healthy leader with
    // the term it raised while alone (measured: ~7 s without an etcd leader otherwise).
    '--pre-vote',
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    ...(o.extraArgs ?? []),
  ];
  const [command, ...commandArgs] = [...(o.prefix ?? []), o.binary ?? 'etcd', ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(new VikingError('VIKING_E_ETCD_BINARY_MISSING', `cannot run etcd (${err.message}): install the Debian package etcd-server`)),
    ),
  );
  // Raced below when waiting; otherwise only logged by the caller's watch on `exited`.
  spawnError.catch(() => {});
  if (o.logFile) {
    const log = createWriteStream(o.logFile, { flags: 'a' });
    // Two sources, one file: the first to end must not end the file under the other
    // (a write after end is an unhandled 'error' that took the whole process down).
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', () => log.end());
    log.on('error', () => {});
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const member: EtcdMember = {
    process: child,
    url: clientUrl,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  if (o.waitReady ?? !o.initialCluster) await Promise.race([waitEtcdReady([clientUrl], 15_000), spawnError, exited.then(() => {
    throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `etcd exited at start; see ${o.logFile ?? 'its output'}`);
  })]);
  return member;
}

/** Waits until the cluster at `urls` answers a read. */
export async function waitEtcdReady(urls: string[], timeoutMs: number): Promise<void> {
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
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `etcd at ${urls.join(',')} did not become ready: ${lastError}`);
}

/**
 * A real `viking host` process started through the CLI, as a server would
 * run it. Resolves once it prints its `ready router=… api=…` line.
 *
 * The API needs a token: startHostProcess makes one in the host's etcd
 * (once per etcd) and runCli passes the latest one as VIKING_TOKEN unless
 * the test gives its own (VIKING_TOKEN: '' for none). runCli never reads
 * the user's real config file: VIKING_CONFIG points at a path that does not exist.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createToken } from '../../lib/auth/tokens.js';
import { connectEtcd } from '../../lib/store/client.js';

export const VIKING_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/viking.js');

const tokens = new Map<string, Promise<string>>();
let latestToken: string | undefined;

/** An API token valid in the cluster of this etcd, made once per etcd URL. */
export function testToken(etcdUrl: string): Promise<string> {
  let made = tokens.get(etcdUrl);
  if (!made) {
    made = (async () => {
      const client = connectEtcd(etcdUrl);
      try {
        return (await createToken(client, 'test')).token;
      } finally {
        client.close();
      }
    })();
    tokens.set(etcdUrl, made);
  }
  return made.then((t) => (latestToken = t));
}

/** A config path no test writes: runCli's default, so the user's own config never leaks in. */
export const NO_CONFIG = path.join('/nonexistent', `viking-test-${process.pid}`, 'config.json');

export interface HostProcess {
  name: string;
  /** A token the host's API accepts. */
  token: string;
  child: ChildProcess;
  routerPort: number;
  /** The router's HTTPS port (any free one: hosts here start with --router-port 0), 0 when off. */
  httpsPort: number;
  apiPort: number;
  api: string;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `prefix` runs the host under other command words, e.g. `nsenter --net=/var/run/netns/NS`
 * to start it inside a network namespace (a server of test/helpers/netns-lab.ts).
 */
export async function startHostProcess(o: { name: string; etcd: string; ip?: string; master?: boolean; dataDir: string; extra?: string[]; prefix?: string[]; routerPort?: number; env?: NodeJS.ProcessEnv }): Promise<HostProcess> {
  const ip = o.ip ?? '127.0.0.1';
  const token = await testToken(o.etcd);
  // --no-router refuses router flags (VIKING_E_FLAG_CONFLICT): a host without a router gets none.
  const router = !(o.extra ?? []).includes('--no-router');
  const args = [
    VIKING_BIN, 'host', '--etcd', o.etcd, '--name', o.name, '--ip', ip,
    ...(router ? ['--router-port', String(o.routerPort ?? 0)] : []), '--api-port', '0', '--data-dir', o.dataDir,
    ...(o.master ? ['--master'] : []),
    // Several hosts share 2 cores in tests: the router serves in the host process unless a test asks for workers.
    ...(!router || (o.extra ?? []).includes('--router-workers') ? [] : ['--router-workers', '0']),
    // The *-nginx.test.ts twins of some files run every host's router on the nginx engine.
    ...(router && process.env.VIKING_TEST_ROUTER_ENGINE && !(o.extra ?? []).includes('--router-engine') ? ['--router-engine', process.env.VIKING_TEST_ROUTER_ENGINE] : []),
    ...(o.extra ?? []),
  ];
  const [command, ...commandArgs] = [...(o.prefix ?? []), process.execPath, ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: { ...process.env, ...o.env } } : {}) });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<{ router: number; api: number; https: number }>((resolve, reject) => {
    // A host that is not ready in time is ended here: left running it would outlive the test.
    // 45 s: a host starts in about 1 s alone, but waits on etcd and dockerd, which another test file can keep busy.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`host ${o.name} not ready in 45 s:\n${out}`));
    }, 45_000);
    const onData = (): void => {
      const m = /ready router=(\d+) api=(\d+)(?: https=(\d+))?/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ router: Number(m[1]), api: Number(m[2]), https: Number(m[3] ?? 0) });
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
    httpsPort: ready.https,
    apiPort: ready.api,
    api: `http://${ip}:${ready.api}`,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * Starts several hosts at once. If one fails to get ready, the others are
 * killed before the error is thrown: a host left running after a failed
 * `before` keeps the test file's event loop alive, and the file then hangs
 * instead of failing.
 */
export async function startHostProcesses(list: Array<Parameters<typeof startHostProcess>[0]>): Promise<HostProcess[]> {
  const settled = await Promise.allSettled(list.map((o) => startHostProcess(o)));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.stop('SIGKILL') : undefined)));
    throw failure.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<HostProcess>).value);
}

/** Runs the viking CLI to completion; resolves with its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const defaults: NodeJS.ProcessEnv = { VIKING_CONFIG: NO_CONFIG, ...(latestToken ? { VIKING_TOKEN: latestToken } : {}) };
    const child = spawn(process.execPath, [VIKING_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...defaults, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

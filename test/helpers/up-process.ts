/**
 * A real `viking up` process (a seed, or a server that joins with --join),
 * started through the CLI as a supervisor would, resolved once it prints its
 * `ready router=… api=…` line. Ports: router and API on 0; etcd on a pair
 * of free consecutive ports of the server's address, chosen here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { VIKING_BIN } from './host-process.js';

export interface UpProcess {
  name: string;
  ip: string;
  dataDir: string;
  etcdPort: number;
  etcdUrl: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves with the router and API ports once ready; rejects if it exits first. */
  ready: Promise<{ router: number; api: number }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function portFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, ip, () => s.close(() => resolve(true)));
  });
}

/** Two free consecutive ports on `ip` (etcd client, peer). */
export async function freePortPair(ip: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 20_000 + Math.floor(Math.random() * 20_000) * 2;
    if ((await portFree(ip, p)) && (await portFree(ip, p + 1))) return p;
  }
  throw new Error(`no two free ports on ${ip}`);
}

export function startUp(o: { name: string; ip: string; dataDir: string; etcdPort: number; join?: string; token?: string; registryPort?: number; env?: NodeJS.ProcessEnv; extra?: string[] }): UpProcess {
  const args = [
    VIKING_BIN, 'up', '--data-dir', o.dataDir, '--name', o.name, '--ip', o.ip,
    '--router-port', '0', '--api-port', '0', '--etcd-port', String(o.etcdPort),
    '--registry-port', String(o.registryPort ?? 0), '--router-workers', '0',
    ...(o.join ? ['--join', o.join] : []),
    ...(o.token !== undefined ? ['--token', o.token] : []),
    ...(o.extra ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VIKING_CONFIG: path.join(o.dataDir, '..', `${o.name}-config.json`), VIKING_TOKEN: '', ...o.env },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<{ router: number; api: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`viking up ${o.name} not ready in 90 s:\n${out}`)), 90_000);
    child.stdout?.on('data', () => {
      const m = /ready router=(\d+) api=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ router: Number(m[1]), api: Number(m[2]) });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`viking up ${o.name} exited with ${code} before ready:\n${out}`));
    });
  });
  ready.catch(() => {});
  return {
    name: o.name, ip: o.ip, dataDir: o.dataDir, etcdPort: o.etcdPort, etcdUrl: `http://${o.ip}:${o.etcdPort}`,
    child, output: () => out, exited, ready,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The token the seed saved in its CLI config file. */
export async function seedToken(seed: UpProcess): Promise<string> {
  const config = JSON.parse(await readFile(path.join(seed.dataDir, '..', `${seed.name}-config.json`), 'utf8')) as { token: string };
  return config.token;
}

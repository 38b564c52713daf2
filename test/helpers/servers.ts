/**
 * Servers of a viking cluster, made on this machine: each one a network
 * namespace on the lab bridge (netns-lab.ts, netns-server.ts) with its own
 * address, its own dockerd (started by its own `dockerd.sh`, configured by
 * its own daemon.json) and its own disk, installed and joined the way an
 * operator does it on a real Debian server: by running `bootstrap.sh`
 * (the seed) or `bootstrap.sh --join` (every other server) inside the
 * namespace. The harness never assembles `viking host` or `viking up`
 * flags itself; what runs on a server is what bootstrap started.
 *
 * The environment of every command run on a server (JOIN-CONTRACT.md):
 *   VIKING_SKIP_INSTALL=1               the worktree is built already: no apt, no npm
 *   VIKING_DATA=<dir>/viking            the server's data dir
 *   VIKING_DOCKER_CONFIG=<dir>/daemon.json, VIKING_DOCKER_RESTART="<dir>/dockerd.sh restart"
 *   VIKING_SUPERVISOR=script            never a systemd unit on the test machine
 *   DOCKER_HOST=unix://<dir>/docker.sock, HOME=<dir>/home (the CLI config bootstrap saves)
 *
 * Power: powerOff() SIGKILLs every process of the server at once (its
 * supervisor, `viking up`, etcd, dockerd, containers); powerOn() starts it
 * as boot would: `dockerd.sh start`, then `scripts/viking-supervise.sh start`.
 * Cable: cutCable()/restoreCable() take the bridge side of its veth down/up.
 *
 * teardown() removes everything, also after a failed test: the lab's
 * processes (found by namespace and cgroup, so supervisor loops die too),
 * mounts, cgroups, veths, bridge, iptables rule and files. Call
 * sweepDeadLabs() first to remove what a crashed run left.
 *
 * Only lab addresses and loopback ever receive traffic: bootstrap and the
 * CLI are only ever given lab addresses.
 */
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { startLab, type Lab } from './netns-lab.js';
import { namespacePids, type NetnsServer } from './netns-server.js';
import { VIKING_BIN } from './host-process.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = path.resolve(path.dirname(VIKING_BIN), '..');
export const BOOTSTRAP = path.join(REPO_ROOT, 'bootstrap.sh');
export const SUPERVISE = path.join(REPO_ROOT, 'scripts', 'viking-supervise.sh');

/** The default ports of every server (bootstrap's defaults; each server has its own network stack). */
export const PORTS = { etcd: 2379, api: 8791, router: 80, registry: 5000 } as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface VikingServer {
  /** The viking host name given to bootstrap (`--name`). */
  name: string;
  ip: string;
  /** The machine: namespace, dockerd, cable and power switch. */
  machine: NetnsServer;
  docker: Docker;
  dir: string;
  /** VIKING_DATA of the server. */
  data: string;
  /** http://IP:8791 and http://IP:2379. */
  api: string;
  etcd: string;
  /** The environment every command on this server runs with. */
  env: Record<string, string>;
  /** Runs a command inside the server with its environment; output also goes to <dir>/commands.log. */
  run(cmd: string, args: string[], o?: { timeoutMs?: number; env?: Record<string, string> }): Promise<RunResult>;
  /** The viking CLI of this worktree, run on the server (its HOME holds the token bootstrap saved). */
  viking(args: string[], o?: { timeoutMs?: number; env?: Record<string, string> }): Promise<RunResult>;
  /** The API token bootstrap saved in the server's CLI config. */
  token(): Promise<string>;
  /** Pid of the `viking up` process running on the server, if any (found in its namespace). */
  upPid(): Promise<number | undefined>;
  /** Pid of the supervisor loop (its pidfile), if it runs. */
  supervisorPid(): Promise<number | undefined>;
  powerOff(): Promise<{ killed: number; ms: number }>;
  /** Boots the server again: dockerd.sh start, then the supervisor. */
  powerOn(): Promise<void>;
  cutCable(): Promise<void>;
  restoreCable(): Promise<void>;
}

export interface Servers {
  lab: Lab;
  servers: VikingServer[];
  /** A new machine: namespace, dockerd, nothing of viking on it yet. */
  machine(o?: { name?: string }): Promise<VikingServer>;
  /** `bootstrap.sh --name N --ip IP --no-example` on a new machine: the first server. Throws on a non-zero exit. */
  seed(o?: { name?: string; extra?: string[] }): Promise<VikingServer & { bootstrap: RunResult }>;
  /** `bootstrap.sh --join http://SEED:2379 --name N --ip IP --token T [--tags]` on a new machine. Throws on a non-zero exit. */
  join(o?: { name?: string; tags?: string[]; via?: VikingServer; extra?: string[] }): Promise<VikingServer & { bootstrap: RunResult }>;
  /** Copies every server's logs (bootstrap and CLI output, viking, etcd, dockerd) out of the lab; returns the folder. */
  keepLogs(): Promise<string>;
  teardown(): Promise<void>;
}

function quoteForLog(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function startServers(o: { namePrefix?: string } = {}): Promise<Servers> {
  const lab = await startLab();
  const servers: VikingServer[] = [];
  const prefix = o.namePrefix ?? `v${lab.id}`;
  let seedServer: VikingServer | undefined;

  const machine = async (m: { name?: string } = {}): Promise<VikingServer> => {
    // The dockerd trusts no lab range by flag: bootstrap trusts the cluster registry in daemon.json.
    const net = await lab.addServer({ baseImages: false, trustLab: false });
    const name = m.name ?? `${prefix}-s${net.index}`;
    const data = path.join(net.dir, 'viking');
    const home = path.join(net.dir, 'home');
    await mkdir(home, { recursive: true });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: home,
      VIKING_SKIP_INSTALL: '1',
      VIKING_DATA: data,
      VIKING_DOCKER_CONFIG: net.daemonJson,
      VIKING_DOCKER_RESTART: `${net.dockerdScript} restart`,
      VIKING_SUPERVISOR: 'script',
      DOCKER_HOST: `unix://${net.socket}`,
      // Several servers share 2 cores: a terminal's colours and npm's update checks are not wanted either.
      NO_COLOR: '1',
    };
    const commandsLog = path.join(net.dir, 'commands.log');
    const run: VikingServer['run'] = (cmd, args, r = {}) =>
      new Promise((resolve) => {
        const t0 = performance.now();
        const child = spawn(net.prefix[0] as string, [...net.prefix.slice(1), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, ...r.env }, cwd: REPO_ROOT });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = r.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), r.timeoutMs) : undefined;
        child.on('close', (code, signal) => {
          if (timer) clearTimeout(timer);
          const ms = Math.round(performance.now() - t0);
          const result = { code: code ?? (signal ? 128 : -1), stdout, stderr: signal ? `${stderr}\n(killed by ${signal}${r.timeoutMs ? ` after ${r.timeoutMs} ms` : ''})` : stderr, ms };
          void appendFile(commandsLog, `\n$ ${quoteForLog([cmd, ...args])}   # exit ${result.code} in ${ms} ms\n${stdout}${stderr ? `--- stderr\n${stderr}` : ''}`).catch(() => {}).then(() => resolve(result));
        });
      });
    const server: VikingServer = {
      name, ip: net.ip, machine: net, docker: net.docker, dir: net.dir, data,
      api: `http://${net.ip}:${PORTS.api}`, etcd: `http://${net.ip}:${PORTS.etcd}`, env,
      run,
      viking: (args, r) => run(process.execPath, [VIKING_BIN, ...args], r),
      async token() {
        const config = JSON.parse(await readFile(path.join(home, '.config', 'viking', 'config.json'), 'utf8')) as { token?: string };
        if (!config.token) throw new Error(`${name}: no token in its CLI config`);
        return config.token;
      },
      async upPid() {
        for (const pid of await namespacePids(net.name)) {
          const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
          const bin = cmdline.findIndex((a) => a.endsWith('/viking.js') || a.endsWith('/bin/viking'));
          if (bin >= 0 && cmdline[bin + 1] === 'up') return pid;
        }
        return undefined;
      },
      async supervisorPid() {
        const pid = Number((await readFile(path.join(data, 'viking-supervise.pid'), 'utf8').catch(() => '')).trim());
        // Only a pid in this server's namespace: a stale pidfile after a power off may name anything.
        return pid && (await namespacePids(net.name)).includes(pid) ? pid : undefined;
      },
      powerOff: () => net.powerOff(),
      async powerOn() {
        await net.powerOn();
        const r = await run('bash', [SUPERVISE, 'start'], { timeoutMs: 30_000 });
        if (r.code !== 0) throw new Error(`${name}: viking-supervise.sh start exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      },
      cutCable: () => net.cutCable(),
      restoreCable: () => net.restoreCable(),
    };
    servers.push(server);
    return server;
  };

  const bootstrap = async (server: VikingServer, args: string[]): Promise<RunResult> => {
    const r = await server.run('bash', [BOOTSTRAP, ...args], { timeoutMs: 180_000 });
    if (r.code !== 0) {
      throw new Error(`bootstrap.sh ${args.join(' ')} on ${server.name} exited ${r.code} after ${r.ms} ms:\n${r.stdout}\n--- stderr\n${r.stderr}\n--- viking.log\n${await readFile(path.join(server.data, 'viking.log'), 'utf8').then((t) => t.split('\n').slice(-40).join('\n'), () => '(none)')}`);
    }
    return r;
  };

  const cluster: Servers = {
    lab,
    servers,
    machine,
    async seed(s = {}) {
      const server = await machine(s);
      const r = await bootstrap(server, ['--name', server.name, '--ip', server.ip, '--no-example', ...(s.extra ?? [])]);
      seedServer ??= server;
      return Object.assign(server, { bootstrap: r });
    },
    async join(j = {}) {
      const via = j.via ?? seedServer;
      if (!via) throw new Error('join: no seed yet (call seed() first)');
      const token = await via.token();
      const server = await machine(j);
      const r = await bootstrap(server, [
        '--join', via.etcd, '--name', server.name, '--ip', server.ip, '--token', token,
        ...(j.tags?.length ? ['--tags', j.tags.join(',')] : []),
        ...(j.extra ?? []),
      ]);
      return Object.assign(server, { bootstrap: r });
    },
    async keepLogs() {
      const to = path.join(os.tmpdir(), `viking-servers-logs-${lab.id}`);
      for (const srv of servers) {
        const into = path.join(to, srv.name);
        await mkdir(into, { recursive: true });
        for (const f of ['commands.log', 'dockerd.log', 'viking/viking.log', 'viking/etcd.log', 'viking/join.json']) {
          await cp(path.join(srv.dir, f), path.join(into, f.replace('/', '-'))).catch(() => {});
        }
      }
      return to;
    },
    teardown: () => lab.teardown(),
  };
  return cluster;
}

/** Waits until `server`'s dockerd runs exactly `count` running containers labelled viking.stack=<stack>. */
export async function waitRunning(server: VikingServer, stack: string, count: number, timeoutMs = 60_000): Promise<string[]> {
  let ids: string[] = [];
  await waitFor(`${count} running container(s) of ${stack} in ${server.name}'s dockerd`, async () => {
    const list = await server.docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } });
    ids = list.map((c) => c.Id);
    return ids.length === count;
  }, timeoutMs, 100);
  return ids;
}

/**
 * A server made on this machine out of a network namespace: its own network
 * stack cabled by a veth to the lab bridge (netns-lab.ts), its own address
 * `${net}.N`, and its own dockerd (own data root, exec root, socket, pidfile,
 * `--bip 172.30.N.1/24` inside the namespace, cgroup parent `/NAME`, and the
 * lab range as insecure registries), with the base images loaded.
 *
 * Processes join the server through `prefix` (`nsenter --net=…`; not
 * `ip netns exec`, under which dockerd fails with "Devices cgroup isn't
 * mounted"). nsenter execs the command, so a child's pid is the program's.
 *
 * A server can lose its cable (cutCable: the bridge side of its veth goes
 * down, packets vanish without RST, as on a real network) and its power
 * (powerOff: SIGKILL at once to every process in its namespace — its viking
 * host, etcd, dockerd, containerd and shims — and every process in its
 * containers' cgroups, which have their own namespaces). powerOn starts its
 * dockerd again on the same disk.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, readdir, readlink, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { ensureBaseImages } from '../../lib/docker/base-images.js';

const run = promisify(execFile);

export interface ServerOptions {
  labId: string;
  bridge: string;
  net: string;
  cidr: string;
  gateway: string;
  /** The lab's directory; the server's files go in `${dir}/${name}`. */
  dir: string;
  /** Host part of the address, 2..254; also the third octet of the dockerd bridge. */
  index: number;
  /** Load viking/busybox and viking/node into the new dockerd (default true). */
  baseImages: boolean;
  /**
   * Start dockerd with `--insecure-registry <lab range>` (every registry of the lab trusted
   * by flag). Off for servers joined through bootstrap.sh, which trusts the cluster
   * registry itself in the server's daemon.json.
   */
  trustLab: boolean;
}

export interface NetnsServer {
  /** Namespace name, cgroup parent and label: `vkl<id>-<index>`. */
  name: string;
  index: number;
  ip: string;
  /** The bridge side of the cable (root namespace). */
  hostVeth: string;
  dir: string;
  /** The dockerd's API socket, and a client for it. */
  socket: string;
  docker: Docker;
  /** Command words that run a program inside the server: `[...prefix, program, ...args]`. */
  prefix: string[];
  /** Runs a command inside the server to completion. */
  exec(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  cableCut: boolean;
  cutCable(): Promise<void>;
  restoreCable(): Promise<void>;
  powered: boolean;
  /** SIGKILL everything of the server at once; resolves with how many processes died. */
  powerOff(): Promise<{ killed: number; ms: number }>;
  /** Starts its dockerd again (same data root); other processes are the test's to restart. */
  powerOn(): Promise<void>;
  /** `<dir>/dockerd.sh`: `start` (no-op while it answers), `restart`, `stop`; runs from any namespace. */
  dockerdScript: string;
  /** `<dir>/daemon.json`, dockerd's --config-file. */
  daemonJson: string;
  /** The tail of this server's dockerd log, for failure messages. */
  dockerLog(): Promise<string>;
  /** Stops and removes everything of the server; safe to call twice. */
  destroy(): Promise<void>;
}

const nsPath = (ns: string): string => `/var/run/netns/${ns}`;

async function ip(args: string[]): Promise<void> {
  await run('ip', args);
}

/** Pids in the namespace `ns` (by the inode of its nsfs file), zombies excluded. */
export async function namespacePids(ns: string): Promise<number[]> {
  const inode = await stat(nsPath(ns)).then((s) => s.ino, () => undefined);
  if (inode === undefined) return [];
  const want = `net:[${inode}]`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const link = await readlink(`/proc/${entry}/ns/net`).catch(() => '');
    if (link !== want) continue;
    const statLine = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(statLine)) continue;
    pids.push(Number(entry));
  }
  return pids;
}

/** Pids in the cgroup subtree `/NAME` (the containers of the server's dockerd; cgroup v1 pids controller). */
async function cgroupPids(name: string): Promise<number[]> {
  const pids: number[] = [];
  const walk = async (dir: string): Promise<void> => {
    const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of procs.split('\n')) if (line.trim()) pids.push(Number(line));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
  };
  await walk(`/sys/fs/cgroup/pids/${name}`);
  return pids;
}

/** SIGKILLs every process of the server until none is left; returns how many were killed. */
async function killAll(name: string): Promise<number> {
  const killed = new Set<number>();
  for (let round = 0; round < 40; round++) {
    const pids = [...new Set([...(await namespacePids(name)), ...(await cgroupPids(name))])].filter((p) => p !== process.pid);
    if (pids.length === 0) return killed.size;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.add(pid);
      } catch {
        /* already gone */
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`processes of ${name} survive SIGKILL: ${[...(await namespacePids(name)), ...(await cgroupPids(name))].join(' ')}`);
}

/** Lazily unmounts every mount point under `dir` (nsfs, overlay, shm mounts a dockerd leaves), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await run('umount', ['-l', p]).catch(() => {});
}

/** Removes the cgroups `/NAME` in every v1 hierarchy (children first); they must be empty. */
async function removeCgroups(name: string): Promise<void> {
  const rmTree = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rmTree(path.join(dir, e.name));
    await rmdir(dir).catch(() => {});
  };
  for (const hierarchy of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    await rmTree(path.join('/sys/fs/cgroup', hierarchy, name));
  }
}

/**
 * Removes a server by name without its object (also for labs of crashed
 * runs): kills its processes, unmounts, removes cgroups, cable, namespace, files.
 */
export async function destroyServerByName(name: string, dir?: string): Promise<void> {
  if (!/^vkl[0-9a-f]{4}-\d{1,3}$/.test(name)) throw new Error(`not a lab server name: ${name}`);
  await killAll(name);
  if (dir) await unmountUnder(dir);
  await removeCgroups(name);
  const [, id, index] = /^vkl([0-9a-f]{4})-(\d+)$/.exec(name) as unknown as [string, string, string];
  await ip(['link', 'del', `vkl${id}h${index}`]).catch(() => {});
  await ip(['netns', 'del', name]).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
}

export async function createServer(o: ServerOptions, register: (s: NetnsServer) => void): Promise<NetnsServer> {
  const name = `vkl${o.labId}-${o.index}`;
  const hostVeth = `vkl${o.labId}h${o.index}`;
  const peer = `vkl${o.labId}p${o.index}`;
  const address = `${o.net}.${o.index}`;
  const dir = path.join(o.dir, name);
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const prefix = ['nsenter', `--net=${nsPath(name)}`];
  const docker = new Docker({ socketPath: socket });
  let destroyed = false;

  const dockerdScript = path.join(dir, 'dockerd.sh');
  const pidFile = path.join(dir, 'docker.pid');

  /** Runs `dockerd.sh start|restart|stop`: the one way this server's dockerd is started and stopped. */
  const dockerdCtl = async (verb: 'start' | 'restart' | 'stop'): Promise<void> => {
    try {
      await run('bash', [dockerdScript, verb], { timeout: 60_000 });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`${dockerdScript} ${verb} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${await server.dockerLog()}`);
    }
  };

  const startDockerd = async (): Promise<void> => {
    await unmountUnder(dir);
    await dockerdCtl('start');
    server.powered = true;
  };

  const server: NetnsServer = {
    name, index: o.index, ip: address, hostVeth, dir, socket, docker, prefix, dockerdScript, daemonJson: path.join(dir, 'daemon.json'),
    cableCut: false,
    powered: false,
    exec: (cmd, args) => run(prefix[0] as string, [...prefix.slice(1), cmd, ...args]),
    async cutCable() {
      await ip(['link', 'set', hostVeth, 'down']);
      server.cableCut = true;
    },
    async restoreCable() {
      await ip(['link', 'set', hostVeth, 'up']);
      server.cableCut = false;
    },
    async powerOff() {
      const t0 = Date.now();
      const killed = await killAll(name);
      server.powered = false;
      return { killed, ms: Date.now() - t0 };
    },
    async powerOn() {
      if (server.powered) return;
      await startDockerd();
    },
    async dockerLog() {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      return text.split('\n').slice(-400).filter((l) => !l.includes('module=grpc')).join('\n');
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (await docker.ping().then(() => true, () => false)) {
        // Containers first, through their daemon, so it unmounts what it mounted; then the daemon.
        const list = await docker.listContainers({ all: true }).catch(() => []);
        await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
        await dockerdCtl('stop').catch(() => {});
      }
      server.powered = false;
      await destroyServerByName(name, dir);
    },
  };

  await ip(['netns', 'add', name]);
  register(server);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'daemon.json'), '{}\n');
  await writeFile(dockerdScript, dockerdSh({ name, dir, socket, pidFile, logFile, index: o.index, insecure: o.trustLab ? o.cidr : undefined }), { mode: 0o755 });
  await ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer]);
  await ip(['link', 'set', peer, 'netns', name]);
  await ip(['link', 'set', hostVeth, 'master', o.bridge, 'up']);
  await ip(['-n', name, 'link', 'set', peer, 'name', 'eth0']);
  await ip(['-n', name, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  await ip(['-n', name, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  await ip(['-n', name, 'route', 'add', 'default', 'via', o.gateway]);
  await startDockerd();
  if (o.baseImages) await ensureBaseImages(docker);
  return server;
}

/**
 * The server's `dockerd.sh start|restart|stop`. A script, not a child of the
 * test, so that bootstrap.sh running inside the server can restart its
 * dockerd after trusting the cluster registry (VIKING_DOCKER_RESTART), as
 * `systemctl restart docker` would on a real server. dockerd reads
 * daemon.json through --config-file; it runs detached (setsid) and is
 * found again through its pidfile.
 */
function dockerdSh(o: { name: string; dir: string; socket: string; pidFile: string; logFile: string; index: number; insecure?: string }): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const args = [
    'dockerd', '--config-file', q(path.join(o.dir, 'daemon.json')),
    '--data-root', q(path.join(o.dir, 'data')), '--exec-root', q(path.join(o.dir, 'exec')),
    '-H', q(`unix://${o.socket}`), '--pidfile', q(o.pidFile),
    '--bip', `172.30.${o.index}.1/24`, '--cgroup-parent', `/${o.name}`,
    ...(o.insecure ? ['--insecure-registry', o.insecure] : []),
  ];
  return `#!/usr/bin/env bash
# dockerd of lab server ${o.name}: start | restart | stop. Written by test/helpers/netns-server.ts.
set -euo pipefail
PIDFILE=${q(o.pidFile)}
SOCK=${q(o.socket)}
LOG=${q(o.logFile)}
# A pid that runs and is not a zombie (a killed dockerd stays a zombie until reaped).
running() { [ -n "\${1:-}" ] && [ -r "/proc/$1/stat" ] && ! grep -q ') Z ' "/proc/$1/stat"; }
pid() { cat "$PIDFILE" 2>/dev/null || true; }
answers() { curl -sf --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1; }
stop() {
  local p; p=$(pid)
  running "$p" || return 0
  kill -TERM "$p"
  for _ in $(seq 1 200); do running "$p" || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
start() {
  if running "$(pid)" && answers; then return 0; fi
  # After a power off: dockerd would wait for the dead containerd of a stale pidfile.
  rm -f "$PIDFILE" ${q(path.join(o.dir, 'exec', 'containerd', 'containerd.pid'))}
  setsid nsenter --net=/var/run/netns/${o.name} ${args.join(' ')} >>"$LOG" 2>&1 </dev/null &
  local child=$!
  for _ in $(seq 1 300); do
    answers && return 0
    running "$child" || { echo "dockerd of ${o.name} exited at start; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  echo "dockerd of ${o.name} did not answer on $SOCK in 30 s; see $LOG" >&2
  exit 1
}
case "\${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start; echo "dockerd of ${o.name} restarted" ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
`;
}

/**
 * A lab network on this machine: one Linux bridge in the root namespace with
 * a private 10.213.K.0/24 (K chosen so no local address or route overlaps),
 * to which servers made of network namespaces (netns-server.ts) are cabled.
 *
 * Why a bridge and an iptables rule: Docker sets the FORWARD policy to DROP
 * and bridged frames pass iptables here (bridge-nf-call-iptables=1), so the
 * namespaces on our bridge cannot talk until `-i BR -o BR -j ACCEPT` is
 * inserted; teardown deletes exactly that rule again.
 *
 * Every name the lab makes carries `vkl<id>` (id: 4 hex digits), so teardown
 * and sweepDeadLabs() touch nothing else on the machine. Traffic goes only to
 * lab addresses: the servers' default route is the bridge address, and the
 * root namespace forwards nothing from the lab anywhere (no masquerade).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServer, type NetnsServer, type ServerOptions } from './netns-server.js';

const run = promisify(execFile);

/** Where each live lab notes its owner pid, so a crashed test's lab can be swept by the next. */
const LABS_DIR = '/run/viking-netns-labs';

export interface Lab {
  /** 4 hex digits in every name this lab makes. */
  id: string;
  bridge: string;
  /** `10.213.K`: server N has address `${net}.N`. */
  net: string;
  /** `10.213.K.0/24`, trusted by every server's dockerd as an insecure registry range. */
  cidr: string;
  /** The bridge's address, in the root namespace: the servers' default route. */
  gateway: string;
  /** Temporary directory holding every server's files. */
  dir: string;
  servers: NetnsServer[];
  /** Makes server `index` (2..254; default the next free one) with its dockerd running. */
  addServer(o?: Partial<Pick<ServerOptions, 'index' | 'baseImages' | 'trustLab'>>): Promise<NetnsServer>;
  /** Removes every server, the bridge, the iptables rule and the directory; safe to call twice. */
  teardown(): Promise<void>;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** A 10.213.K.0/24 no local address or route touches. */
async function freeSubnet(): Promise<string> {
  const used = (await sh('ip', ['-4', 'route', 'show', 'table', 'all'])) + (await sh('ip', ['-4', 'addr']));
  for (let tries = 0; tries < 200; tries++) {
    const k = 1 + Math.floor(Math.random() * 254);
    const net = `10.213.${k}`;
    const overlapping = used.includes(`${net}.`) || /(^|\s)10\.0\.0\.0\/8|(^|\s)10\.213\.0\.0\/16/.test(used);
    if (!overlapping) return net;
  }
  throw new Error('no free 10.213.K.0/24 on this machine');
}

export async function startLab(): Promise<Lab> {
  const id = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, '0');
  const bridge = `vkl${id}br`;
  const net = await freeSubnet();
  const gateway = `${net}.1`;
  const cidr = `${net}.0/24`;
  const dir = await mkdtemp(path.join(os.tmpdir(), `vkl${id}-`));
  const fwdRule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
  await mkdir(LABS_DIR, { recursive: true });
  await writeFile(path.join(LABS_DIR, id), JSON.stringify({ pid: process.pid, bridge, dir }));
  const servers: NetnsServer[] = [];
  /** Servers still being made: teardown waits for them, so none starts a dockerd after it. */
  const pending = new Set<Promise<unknown>>();
  let tornDown = false;
  const reserved = new Set<number>();

  const lab: Lab = {
    id, bridge, net, cidr, gateway, dir, servers,
    async addServer(o = {}) {
      // Reserved synchronously, so servers added in parallel without an index get different ones.
      const used = reserved;
      let index = o.index ?? 2;
      while (o.index === undefined && used.has(index)) index++;
      if (used.has(index) || index < 2 || index > 254) throw new Error(`server index ${index} is taken or out of 2..254`);
      if (tornDown) throw new Error(`lab ${id} is torn down`);
      reserved.add(index);
      const making = createServer({ labId: id, bridge, net, cidr, gateway, dir, index, baseImages: o.baseImages ?? true, trustLab: o.trustLab ?? true }, (s) => servers.push(s));
      pending.add(making);
      try {
        return await making;
      } finally {
        pending.delete(making);
      }
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      await Promise.allSettled([...pending]);
      const errors: string[] = [];
      await Promise.all(servers.map((s) => s.destroy().catch((err: Error) => errors.push(`${s.name}: ${err.message}`))));
      await run('iptables', ['-D', ...fwdRule]).catch(() => {});
      await run('ip', ['link', 'del', bridge]).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch((err: Error) => errors.push(`${dir}: ${err.message}`));
      await rm(path.join(LABS_DIR, id), { force: true });
      if (errors.length) throw new Error(`lab ${id} teardown left something behind:\n${errors.join('\n')}`);
    },
  };

  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    await run('iptables', ['-I', ...fwdRule]);
  } catch (err) {
    await lab.teardown().catch(() => {});
    throw err;
  }
  return lab;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes what labs of dead test processes left (a runner killed mid-test
 * cannot run its after hooks): their namespaces, veths, bridge, rule, dirs.
 * Labs whose owner still runs are left alone.
 */
export async function sweepDeadLabs(): Promise<string[]> {
  const swept: string[] = [];
  const ids = await readdir(LABS_DIR).catch(() => [] as string[]);
  for (const id of ids) {
    if (!/^[0-9a-f]{4}$/.test(id)) continue;
    const note = JSON.parse(await readFile(path.join(LABS_DIR, id), 'utf8').catch(() => '{}')) as { pid?: number; bridge?: string; dir?: string };
    if (note.pid && alive(note.pid)) continue;
    const { destroyServerByName } = await import('./netns-server.js');
    const namespaces = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`vkl${id}-`));
    for (const ns of namespaces) await destroyServerByName(ns, note.dir ? path.join(note.dir, ns) : undefined).catch(() => {});
    const bridge = `vkl${id}br`;
    await run('iptables', ['-D', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']).catch(() => {});
    await run('ip', ['link', 'del', bridge]).catch(() => {});
    if (note.dir?.includes(`vkl${id}-`)) await rm(note.dir, { recursive: true, force: true }).catch(() => {});
    await rm(path.join(LABS_DIR, id), { force: true });
    swept.push(id);
  }
  return swept;
}

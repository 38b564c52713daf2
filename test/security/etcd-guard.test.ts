/**
 * Containers cannot reach etcd. Two lab servers (network namespaces, each
 * with its own dockerd and iptables): a seed `viking up --ip ADDR` and a
 * server that joins it. etcd then listens on the servers' real addresses, so
 * without the guard any container could dial ADDR:2379 through its bridge
 * and rewrite /deploy. A container on each server tries its own server's
 * etcd and the other server's; the API on the same address answers it (the
 * network path is there), etcd does not. Stopping viking up removes exactly
 * the rules it added.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { NODE_IMAGE } from '../../lib/docker/base-images.js';
import { startLab, type Lab } from '../helpers/netns-lab.js';
import type { NetnsServer } from '../helpers/netns-server.js';
import { seedToken, startUp, type UpProcess } from '../helpers/up-process.js';
import { uniqueName } from '../helpers/wait.js';

let lab: Lab;
let a: NetnsServer;
let b: NetnsServer;
const ups: UpProcess[] = [];
const base = uniqueName('guard');

async function guardRules(s: NetnsServer): Promise<string[]> {
  const out: string[] = [];
  for (const chain of ['INPUT', 'DOCKER-USER', 'FORWARD']) {
    const listing = await s.exec('iptables', ['-S', chain]).then((r) => r.stdout, () => '');
    out.push(...listing.split('\n').filter((l) => l.includes('viking-etcd-guard')));
  }
  return out;
}

/** From a container of `s`, a TCP connect to each `ip:port`: 0 when it connected, 1 when not (refused, reset or 3 s timeout). */
async function fromContainer(s: NetnsServer, targets: string[]): Promise<number[]> {
  const script = `
    const net = require('node:net');
    (async () => {
      for (const t of ${JSON.stringify(targets)}) {
        const [host, port] = t.split(':');
        const ok = await new Promise((resolve) => {
          const c = net.connect({ host, port: Number(port), timeout: 3000 }, () => { c.destroy(); resolve(true); });
          c.on('error', () => resolve(false));
          c.on('timeout', () => { c.destroy(); resolve(false); });
        });
        console.log('code=' + (ok ? 0 : 1));
      }
    })();`;
  const c = await s.docker.createContainer({ Image: NODE_IMAGE, Cmd: ['node', '-e', script], Labels: { 'viking.test': base } });
  try {
    await c.start();
    await c.wait();
    const logs = (await c.logs({ stdout: true, stderr: true })).toString();
    return [...logs.matchAll(/code=(\d+)/g)].map((m) => Number(m[1]));
  } finally {
    await c.remove({ force: true });
  }
}

before(async () => {
  lab = await startLab();
  [a, b] = await Promise.all([lab.addServer(), lab.addServer()]);
});

after(async () => {
  for (const u of ups.reverse()) await u.stop().catch(() => {});
  await lab.teardown();
});

test('containers reach neither their own server\'s etcd nor another\'s; the API on the same address they do', async () => {
  const seed = startUp({ name: `${base}-a`, ip: a.ip, dataDir: path.join(a.dir, 'viking'), etcdPort: 2379, prefix: a.prefix, extra: ['--docker-socket', a.socket] });
  ups.push(seed);
  const seedPorts = await seed.ready;
  const joiner = startUp({ name: `${base}-b`, ip: b.ip, dataDir: path.join(b.dir, 'viking'), etcdPort: 2379, prefix: b.prefix, join: `http://${a.ip}:2379`, token: await seedToken(seed), extra: ['--docker-socket', b.socket] });
  ups.push(joiner);
  const joinerPorts = await joiner.ready;
  assert.match(joiner.output(), /promoted to voting member/);

  // From the servers themselves etcd answers on the real addresses: the rejection below is the guard's.
  const fromHost = await b.exec('curl', ['-sS', '-m', '3', `http://${a.ip}:2379/version`]).catch((err: Error & { stderr?: string }) => ({ stdout: `${err.message} ${err.stderr ?? ''}` }));
  assert.match(fromHost.stdout, /etcdserver/);
  assert.match((await a.exec('curl', ['-sS', '-m', '3', `http://${a.ip}:2379/version`])).stdout, /etcdserver/);

  const onA = await fromContainer(a, [`${a.ip}:2379`, `${a.ip}:2380`, `${a.ip}:${seedPorts.api}`]);
  assert.deepEqual(onA.map((c) => c === 0), [false, false, true], `exit codes on ${a.name}: ${onA}`);
  const onB = await fromContainer(b, [`${b.ip}:2379`, `${a.ip}:2379`, `${a.ip}:${seedPorts.api}`, `${b.ip}:${joinerPorts.api}`]);
  assert.deepEqual(onB.map((c) => c === 0), [false, false, true, true], `exit codes on ${b.name}: ${onB}`);

  assert.ok((await guardRules(a)).length >= 2, (await guardRules(a)).join('\n'));
  assert.ok((await guardRules(b)).some((r) => r.includes(`${a.ip}/32`)), (await guardRules(b)).join('\n'));

  await joiner.stop();
  await seed.stop();
  assert.deepEqual(await guardRules(a), []);
  assert.deepEqual(await guardRules(b), []);
});

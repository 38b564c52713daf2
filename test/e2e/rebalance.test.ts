/**
 * Spread restored by `viking hosts rebalance`, end to end on the real parts:
 * etcd, three `viking host` processes (default settings) on 127.0.0.2-4
 * sharing the one dockerd, the CLI, HTTP through a router.
 *
 * A scale-3 stack is pushed while only the first host is up, so all three
 * replicas land there. Two more hosts join; dispatch never moves a healthy
 * replica, so the stack stays piled (and a dry run says what would move).
 * Then `viking hosts rebalance` runs while keep-alive clients send GETs and
 * POSTs through the first host's router: it must spread the stack one
 * replica per host with 0 failed requests, and a checker that samples the
 * dockerd every 100 ms (it never kills anything) must never see a replica
 * running more than twice, nor two replicas doubled at once beyond the
 * moment a finished move's old copy drains. A second run moves nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { helloCopy } from '../helpers/hello.js';
import { Load } from '../helpers/load.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { PREFIX } from '../../lib/store/keys.js';
import type { MoveResult } from '../../lib/host-admin/rebalance.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { placedHosts } from '../../lib/store/placements.js';

let etcd: TestEtcd;
const hosts: HostProcess[] = [];
let work: string;
const names = [uniqueName('rb1'), uniqueName('rb2'), uniqueName('rb3')];
const stack = uniqueName('rb');
const domain = `${stack}.rebalance.test`;

/**
 * Samples every 100 ms how many running containers each replica of the stack
 * has, across all hosts, and how many endpoints of web the routers are given.
 */
class CopyChecker {
  maxCopies = new Map<string, number>();
  /** Fewest web endpoints in /ports in one sample: a replica without one is a replica down. */
  minEndpoints = Infinity;
  private readonly client = connectEtcd(etcd.url);
  /** Most replicas running twice in one sample. */
  maxDoubled = 0;
  samples = 0;
  private running = true;
  private readonly loop: Promise<void>;
  constructor() {
    this.loop = (async () => {
      while (this.running) {
        const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } });
        const copies = new Map<string, number>();
        for (const c of list) {
          const key = `${c.Labels['viking.tag']}/${c.Labels['viking.node']}/${c.Labels['viking.instance']}`;
          copies.set(key, (copies.get(key) ?? 0) + 1);
        }
        for (const [k, n] of copies) this.maxCopies.set(k, Math.max(this.maxCopies.get(k) ?? 0, n));
        this.maxDoubled = Math.max(this.maxDoubled, [...copies.values()].filter((n) => n > 1).length);
        const ports = await this.client.getAll().prefix(`${PREFIX.ports}${stack}/web/`).keys();
        this.minEndpoints = Math.min(this.minEndpoints, ports.length);
        this.samples++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.client.close();
  }
}

async function placements(): Promise<Map<string, string>> {
  const client = connectEtcd(etcd.url);
  try {
    return await placedHosts(client, stack);
  } finally {
    client.close();
  }
}

const startHost = async (i: number): Promise<HostProcess> => {
  const h = await startHostProcess({ name: names[i]!, etcd: etcd.url, ip: `127.0.0.${i + 2}`, master: i === 0, dataDir: path.join(work, `h${i}`) });
  hosts.push(h);
  return h;
};

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-rebalance-'));
  etcd = await startTestEtcd();
});

after(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  for (const n of names) await removeHostContainers(n);
  await removeStackArtifacts(stack);
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('a stack piled on one host stays piled until `viking hosts rebalance` spreads it, with no failed request', { timeout: 300_000 }, async () => {
  const first = await startHost(0);
  const app = await helloCopy({ dir: path.join(work, 'app'), stack, message: 'piled', domain, edit: (vf) => vf.replace('scale: 2', 'scale: 3') });
  const pushed = await runCli(['push', app, '--api', first.api]);
  assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
  assert.deepEqual([...new Set((await placements()).values())], [names[0]], 'all three replicas on the only host');

  await Promise.all([startHost(1), startHost(2)]);
  await waitFor('three live hosts', async () => {
    const r = await runCli(['hosts', '--json', '--api', first.api]);
    return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === 3;
  });
  // A joining host wakes dispatch at once, and it runs a full pass every 5 s anyway: after
  // one such period the stack must still be piled (a window to watch, so a plain wait).
  await new Promise((r) => setTimeout(r, 5500));
  const dry = await runCli(['hosts', 'rebalance', '--dry-run', '--json', '--api', first.api]);
  assert.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout) as MoveResult[];
  assert.equal(planned.length, 2, dry.stdout);
  assert.ok(planned.every((m) => m.status === 'planned' && m.from === names[0] && m.reason === 'spread'));
  assert.deepEqual([...new Set((await placements()).values())], [names[0]], 'still piled: new hosts alone move nothing');

  const load = new Load({ port: first.routerPort, host: domain, ip: '127.0.0.2', clients: 8, ok: /Hello from/ });
  const checker = new CopyChecker();
  const t0 = Date.now();
  const res = await runCli(['hosts', 'rebalance', '--api', first.api]);
  const took = Date.now() - t0;
  // Load and checking go on until the last old copy is gone from the daemon.
  await waitFor('one container per replica', async () => {
    const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } });
    return list.length === 3;
  }, 30_000);
  await load.stop();
  await checker.stop();
  assert.equal(res.code, 0, res.stderr + res.stdout);
  // Progress lines, then the aligned table of moves.
  assert.match(res.stdout, /-----> 2 replica\(s\) to move, one at a time/);
  assert.match(res.stdout, /healthy on .*every router sends to it/);
  assert.match(res.stdout, /NODE\s+REPLICA\s+FROM\s+TO\s+WHY\s+TIME\s+RESULT/);
  assert.equal(res.stdout.match(/ moved$/gm)?.length, 2, res.stdout);

  const after = await placements();
  assert.deepEqual([...after.values()].sort(), [...names].sort(), 'one replica per host');
  assert.deepEqual(load.failed.slice(0, 5), [], `${load.failed.length} of ${load.total} requests failed`);
  assert.ok(load.ok > 100, `only ${load.ok} requests answered`);
  for (const [replica, n] of checker.maxCopies) assert.ok(n <= 2, `${replica} ran ${n} times at once`);
  // Each moved replica was seen running twice: the new copy started before the old one stopped.
  for (const m of planned) assert.equal(checker.maxCopies.get(`${m.replica.split('/')[0]}/web/${m.replica.split('/')[1]}`), 2, `${m.replica} never overlapped`);
  assert.equal(checker.minEndpoints, 3, 'every replica had an endpoint in /ports at every sample');
  assert.ok(checker.maxDoubled <= 1, `${checker.maxDoubled} replicas were running twice at once`);
  console.log(res.stdout);
  console.log(`rebalance: 2 moves in ${took} ms; ${load.ok} requests ok, ${load.failed.length} failed; ${checker.samples} docker samples, max copies per replica ${Math.max(...checker.maxCopies.values())}, max doubled at once ${checker.maxDoubled}, fewest endpoints ${checker.minEndpoints}`);

  // Idempotent: nothing more to move.
  const again = await runCli(['hosts', 'rebalance', '--json', '--api', first.api]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), []);
});

const REBALANCE_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/host-admin/rebalance.js');
const CLIENT_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/store/client.js');

async function copiesOf(tagNodeInstance: string): Promise<number> {
  const [tag, node, instance] = tagNodeInstance.split('/');
  const list = await docker.listContainers({
    filters: { label: [`viking.stack=${stack}`, `viking.tag=${tag}`, `viking.node=${node}`, `viking.instance=${instance}`], status: ['running'] },
  });
  return list.length;
}

test('a mover that dies mid-move leaves no second copy: the move lease takes the new one away', { timeout: 180_000 }, async () => {
  const first = hosts[0]!;
  const third = names[2]!;
  // Pile two replicas again: drain the third host (dispatch moves its replica), then undo the drain.
  const drained = await runCli(['hosts', 'drain', third, '--api', first.api]);
  assert.equal(drained.code, 0, drained.stderr);
  await waitFor('the third host emptied', async () => ![...(await placements()).values()].includes(third) && (await docker.listContainers({ filters: { label: [`viking.stack=${stack}`, `viking.host=${third}`] } })).length === 0, 60_000);
  assert.equal((await runCli(['hosts', 'drain', third, '--undo', '--api', first.api])).code, 0);
  await waitFor('every replica running again', async () => (await docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } })).length === 3, 60_000);
  const plannedRun = await waitFor('a planned move onto the third host', async () => {
    const r = await runCli(['hosts', 'rebalance', '--dry-run', '--json', '--api', first.api]);
    const moves = r.code === 0 ? (JSON.parse(r.stdout) as MoveResult[]) : [];
    return moves.length === 1 && moves[0]!.to === third ? moves[0] : undefined;
  }, 30_000);
  const replica = `${plannedRun.replica.split('/')[0]}/${plannedRun.node.split('/')[1]}/${plannedRun.replica.split('/')[1]}`;
  const before = await placements();

  // The mover runs in a process of its own, killed once the new copy has started on the target.
  const mover = spawn(process.execPath, ['--input-type=module', '-e', `
    const { rebalance } = await import(${JSON.stringify(REBALANCE_JS)});
    const { connectEtcd } = await import(${JSON.stringify(CLIENT_JS)});
    await rebalance(connectEtcd(${JSON.stringify(etcd.url)}), { emit: (s, m) => console.log(m) });
  `], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  mover.stdout.on('data', (d: Buffer) => (out += d.toString()));
  mover.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => mover.once('exit', r));
  await waitFor('the new copy running on the target', async () => (await copiesOf(replica)) === 2, 60_000);
  mover.kill('SIGKILL');
  await exited;
  assert.doesNotMatch(out, /moved/, out);
  // Its lock lives on until the lease ends: a second rebalance meanwhile is refused, not run beside it.
  const busy = await runCli(['hosts', 'rebalance', '--api', first.api]);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /VIKING_E_REBALANCE_BUSY/, busy.stderr + busy.stdout);

  // Within the move lease's TTL (10 s) the target's deploy key goes, and its slave removes the copy.
  const t0 = Date.now();
  await waitFor('the orphaned new copy removed', async () => (await copiesOf(replica)) === 1, 30_000, 100);
  console.log(`orphaned copy of ${replica} removed ${Date.now() - t0} ms after the mover was killed`);
  const client = connectEtcd(etcd.url);
  try {
    const deploys = await client.getAll().prefix(`${PREFIX.deploy}${third}/${stack}/`).keys();
    assert.deepEqual(deploys, [], 'no deploy key left on the target');
  } finally {
    client.close();
  }
  assert.deepEqual(await placements(), before, '/run unchanged: the old copy kept the replica');
});

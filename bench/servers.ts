/**
 * bench/servers: how long it takes a server to join and take work, and
 * push-to-serving of vikingfiles/hello at scale 3 across three servers,
 * on servers made of network namespaces (test/helpers/servers.ts): each
 * with its own address, dockerd and disk, installed by bootstrap.sh with
 * the packages already installed (VIKING_SKIP_INSTALL=1: no apt, no npm).
 *
 *   node dist/bench/servers.js
 *
 * Joins: the clock starts when `bootstrap.sh --join` starts. HOST KEY = its
 * host key appears in etcd (the leader may place on it from then); BOOTSTRAP
 * = bootstrap exits (it has printed `viking hosts`); TAKES WORK = a replica
 * of a busybox probe stack, scaled up by one at bootstrap's exit, runs in
 * the new server's dockerd (spread puts it on the empty server; busybox is
 * one of the base images bootstrap makes, so nothing is pulled).
 *
 * Pushes: hello at scale 3, one replica per server (RUNNING: the stack's
 * containers per server when serving began; after the warm push the old
 * release's are still being stopped). PUSH = `viking push`
 * until the CLI exits (every replica healthy, release switched); SERVING =
 * until the router of every server has answered with the new body. Cold:
 * the app image is on no server yet (built on the seed, pulled by the
 * others). Warm: a one-line change of message.txt (one small new layer;
 * every other layer already on every server).
 *
 * Everything it makes is removed at the end, also on failure.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServers, PORTS, type Servers, type VikingServer, type RunResult } from '../test/helpers/servers.js';
import { sweepDeadLabs } from '../test/helpers/netns-lab.js';
import { helloCopy } from '../test/helpers/hello.js';
import { routerGet } from '../test/helpers/http.js';
import { waitFor } from '../test/helpers/wait.js';
import { connectEtcd } from '../lib/store/client.js';
import { hostKey } from '../lib/store/keys.js';
import { formatTable } from '../lib/cli/output.js';

const rows: Array<Array<string | number>> = [];
const s = (ms: number): string => (ms / 1000).toFixed(2);

async function must(r: Promise<RunResult>, what: string): Promise<RunResult> {
  const res = await r;
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
  return res;
}

async function runningOf(server: VikingServer, stack: string): Promise<number> {
  return (await server.docker.listContainers({ filters: { label: [`viking.stack=${stack}`], status: ['running'] } })).length;
}

async function timedJoin(cluster: Servers, seed: VikingServer, probe: string, scaleTo: number, role: string): Promise<VikingServer> {
  const etcd = connectEtcd([seed.etcd]);
  try {
    const index = cluster.servers.length + 2;
    const name = `v${cluster.lab.id}-s${index}`;
    const t0 = performance.now();
    let keyAt = 0;
    let joining = true;
    const watchKey = (async () => {
      while (joining && !keyAt) {
        if ((await etcd.get(hostKey(name)).string().catch(() => null)) !== null) keyAt = performance.now() - t0;
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const server = await cluster.join({ name }).finally(() => (joining = false));
    const bootstrapMs = performance.now() - t0;
    await watchKey;
    await must(seed.viking(['scale', probe, `p=${scaleTo}`]), 'viking scale');
    await waitFor(`a probe replica in ${name}'s dockerd`, async () => (await runningOf(server, probe)) === 1, 60_000, 50);
    rows.push([`join ${index - 1} (${role})`, '', keyAt ? s(keyAt) : '?', s(bootstrapMs), s(performance.now() - t0)]);
    return server;
  } finally {
    etcd.close();
  }
}

async function timedPush(servers: VikingServer[], seed: VikingServer, dir: string, message: string, scenario: string): Promise<void> {
  await writeFile(path.join(dir, 'message.txt'), `${message}\n`);
  const t0 = performance.now();
  await must(seed.viking(['push', dir], { timeoutMs: 300_000 }), `push (${scenario})`);
  const pushMs = performance.now() - t0;
  await Promise.all(servers.map((srv) => waitFor(`${srv.name}'s router to serve '${message}'`, async () => {
    const res = await routerGet({ ip: srv.ip, port: PORTS.router, host: 'hello.local', timeoutMs: 3000 });
    return res.status === 200 && res.body.includes(message);
  }, 60_000, 10)));
  const placed = await Promise.all(servers.map((srv) => runningOf(srv, 'hello')));
  rows.push([`push hello scale 3 (${scenario})`, placed.join('+'), '', s(pushMs), s(performance.now() - t0)]);
}

async function main(): Promise<void> {
  await sweepDeadLabs();
  const cluster = await startServers();
  try {
    const t0 = performance.now();
    const seed = await cluster.seed();
    rows.push(['seed (bootstrap.sh --ip)', '', '', s(seed.bootstrap.ms), s(performance.now() - t0)]);
    const work = path.join(cluster.lab.dir, 'bench');
    await mkdir(path.join(work, 'probe'), { recursive: true });
    const probe = 'probe';
    await writeFile(path.join(work, 'probe', 'Vikingfile'), `viking:\n  name: ${probe}\ndeploy:\n  p:\n    image: viking/busybox\n    run: [sleep, "100000"]\n    scale: 1\n`);
    await must(seed.viking(['push', path.join(work, 'probe')]), 'push probe');
    const s2 = await timedJoin(cluster, seed, probe, 2, 'etcd member');
    const s3 = await timedJoin(cluster, seed, probe, 3, 'etcd member');
    const dir = await helloCopy({ dir: path.join(work, 'hello'), stack: 'hello', message: 'cold', edit: (vf) => vf.replace('scale: 2', 'scale: 3') });
    await timedPush([seed, s2, s3], seed, dir, 'cold one', 'cold');
    await timedPush([seed, s2, s3], seed, dir, 'warm two', 'warm');
    await timedJoin(cluster, seed, probe, 4, 'etcd client');
  } finally {
    await cluster.teardown();
  }
  process.stdout.write(`servers: seconds from the start of each step; node ${process.version}\n`);
  process.stdout.write(`${formatTable(['STEP', 'RUNNING', 'HOST KEY S', 'BOOTSTRAP / PUSH S', 'TAKES WORK / SERVING S'], rows)}\n`);
}

await main();

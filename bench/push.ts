/**
 * bench/push: push-to-serving time of vikingfiles/hello on a real cluster.
 *
 *   node dist/bench/push.js [--hosts 3] [--scale 10] [--runs 3]
 *
 * Starts a 3-member etcd, N `viking host` processes on 127.0.0.2.. (the first
 * runs the cluster registry), then times `viking push` (CLI wall clock, from
 * the command's start to its exit) of a copy of vikingfiles/hello scaled to
 * --scale replicas: cold (first push: new image, base layers into an empty
 * registry), warm (the same source again: every layer cached), and changed
 * (a one-line change: one new layer). Each push is checked by asking the
 * router for the new body. Everything it starts is removed at the end.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../test/helpers/cluster.js';
import { runCli } from '../test/helpers/host-process.js';
import { baseImages, removeStackArtifacts } from '../test/helpers/docker.js';
import { freePort } from '../lib/net.js';
import { formatTable } from '../lib/cli/output.js';
import { helloCopy } from '../test/helpers/hello.js';
import { routerGet } from '../test/helpers/http.js';


function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}


async function main(): Promise<void> {
  const hostsN = arg('hosts', 3);
  const scale = arg('scale', 10);
  const runs = arg('runs', 3);
  await baseImages();
  const work = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-push-'));
  const rows: Array<Array<string | number>> = [];
  const stacks: string[] = [];
  const registry = `127.0.0.1:${await freePort()}`;
  const cluster = await startCluster({
    prefix: `bp${Date.now().toString(36).slice(-4)}`,
    hosts: hostsN,
    extraFor: (i) => (i === 0 ? ['--registry', registry, '--run-registry'] : ['--registry', registry]),
  });
  try {
    const api = cluster.hosts[0]!.api;
    for (let run = 1; run <= runs; run++) {
      const stack = `bench-push-${run}-${Date.now().toString(36).slice(-4)}`;
      stacks.push(stack);
      const dir = await helloCopy({ dir: path.join(work, stack), stack, message: 'one', domain: `${stack}.local`, edit: (vf) => vf.replace('scale: 2', `scale: ${scale}`) });
      for (const [scenario, message] of [['cold', 'one'], ['warm (unchanged)', 'one'], ['changed source', 'two']] as const) {
        await writeFile(path.join(dir, 'message.txt'), `${message}\n`);
        const t0 = performance.now();
        const res = await runCli(['push', dir, '--api', api]);
        const seconds = (performance.now() - t0) / 1000;
        if (res.code !== 0) throw new Error(`push failed:\n${res.stdout}\n${res.stderr}`);
        // Serving means the router of another host answers with the new body.
        const h = cluster.hosts[1] ?? cluster.hosts[0]!;
        let body = '';
        while (!body.includes(message) && performance.now() - t0 < 60_000) {
          body = (await routerGet({ port: h.routerPort, ip: h.ip, host: `${stack}.local` })).body;
          if (!body.includes(message)) await new Promise((r) => setTimeout(r, 10));
        }
        const serving = (performance.now() - t0) / 1000;
        if (!body.includes(message)) throw new Error(`router served ${JSON.stringify(body)} after the ${scenario} push`);
        rows.push([run, scenario, scale, hostsN, seconds.toFixed(2), serving.toFixed(2)]);
      }
    }
  } finally {
    await cluster.stop();
    for (const s of stacks) await removeStackArtifacts(s);
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`push: PUSH S = viking push until the CLI exits (every container healthy, release switched); SERVING S = until another host's router serves the new body; node ${process.version}\n`);
  process.stdout.write(`${formatTable(['RUN', 'SCENARIO', 'CONTAINERS', 'HOSTS', 'PUSH S', 'SERVING S'], rows)}\n`);
}

await main();

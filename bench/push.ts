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
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../test/helpers/cluster.js';
import { runCli } from '../test/helpers/host-process.js';
import { baseImages, removeStackArtifacts } from '../test/helpers/docker.js';
import { freePort } from '../lib/up/etcd-process.js';
import { formatTable } from '../lib/cli/output.js';

const HELLO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../vikingfiles/hello');

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
      const dir = path.join(work, stack);
      await cp(HELLO, dir, { recursive: true });
      const vf = await readFile(path.join(dir, 'Vikingfile'), 'utf8');
      await writeFile(path.join(dir, 'Vikingfile'), vf.replace('name: hello', `name: ${stack}`).replace('viking:hello/app', `viking:${stack}/app`).replace('scale: 2', `scale: ${scale}`).replace('- hello.local', `- ${stack}.local`));
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
          body = await new Promise<string>((resolve, reject) => {
            http.get({ host: h.ip, port: h.routerPort, path: '/', headers: { host: `${stack}.local` }, agent: false }, (r) => {
              let b = '';
              r.on('data', (d: Buffer) => (b += d.toString()));
              r.on('end', () => resolve(b));
            }).on('error', reject);
          });
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

/**
 * The builder on the real Docker Engine: inheritance chains build in order,
 * a failing step fails with its output, an unchanged rebuild hits the layer
 * cache for every step, and images land in a real cluster registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { baseImages, docker, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName } from '../helpers/wait.js';
import { buildImages } from '../../lib/builder/builder.js';
import { parseVikingfile } from '../../lib/vikingfile/index.js';
import { freePort } from '../../lib/net.js';
import { startRegistry, type RegistryProcess } from '../../lib/registry/registry-process.js';
import { isVikingError } from '../../lib/errors.js';

const stack = uniqueName('bld');
let dir: string;
let registry: RegistryProcess;

before(async () => {
  await baseImages();
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-build-'));
  await writeFile(path.join(dir, 'hello.txt'), 'from the source\n');
  registry = await startRegistry({ address: `127.0.0.1:${await freePort()}`, dataDir: dir });
});
after(async () => {
  await registry?.stop();
  await removeStackArtifacts(stack);
  await rm(dir, { recursive: true, force: true });
});

/** Runs `cmd` in the image and returns what it printed. */
async function runIn(image: string, cmd: string[]): Promise<string> {
  const c = await docker.createContainer({ Image: image, Cmd: cmd, Labels: { 'viking.stack': stack } });
  try {
    await c.start();
    await c.wait();
    const buf = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    const { demuxLogs } = await import('../../lib/slave/containers.js');
    return demuxLogs(buf);
  } finally {
    await c.remove({ force: true });
  }
}

/** A three-level chain written child first: the builder must build base, then mid, then top. */
const chain = (): string => `
viking: { name: ${stack} }
build:
  top: |
    FROM viking:${stack}/mid
    RUN echo top >> /layers
  mid: |
    FROM viking:${stack}/base
    RUN echo mid >> /layers
  base: |
    FROM viking/busybox
    COPY hello.txt /hello.txt
    RUN echo base > /layers
deploy:
  app: { image: viking:${stack}/top, run: cat /layers }
`;

test('a three-level inheritance chain builds in order, and its top image runs with all layers', async () => {
  const vf = parseVikingfile(chain());
  const order: string[] = [];
  const refs = await buildImages({
    docker, stack, tag: 'v1', images: vf.images, contextDir: dir,
    resolveOther: () => Promise.reject(new Error('no other stacks')),
    onLine: (image, line) => {
      if (order.at(-1) !== image) order.push(image);
      void line;
    },
  });
  assert.deepEqual(order, ['base', 'mid', 'top']);
  assert.equal(await runIn(refs.top!, ['cat', '/layers', '/hello.txt']), 'base\nmid\ntop\nfrom the source\n');
});

test('an unchanged rebuild hits the layer cache at every step and makes the same image', async () => {
  const vf = parseVikingfile(chain());
  const lines: string[] = [];
  const first = await buildImages({ docker, stack, tag: 'v2', images: vf.images, contextDir: dir, resolveOther: () => Promise.reject(new Error('x')) });
  const t0 = Date.now();
  const second = await buildImages({
    docker, stack, tag: 'v3', images: vf.images, contextDir: dir, resolveOther: () => Promise.reject(new Error('x')),
    onLine: (_image, line) => lines.push(line),
  });
  const steps = lines.filter((l) => /^Step \d+\/\d+ : /.test(l) && !/ : FROM /.test(l)).length;
  const cached = lines.filter((l) => l.includes('Using cache')).length;
  assert.ok(steps >= 6, `steps seen: ${steps}`);
  assert.equal(cached, steps, `every step after FROM is cached:\n${lines.join('\n')}`);
  assert.equal((await docker.getImage(second.top!).inspect()).Id, (await docker.getImage(first.top!).inspect()).Id);
  assert.ok(Date.now() - t0 < 10_000);
});

test('a failing RUN step fails the build with that step\'s output', async () => {
  const vf = parseVikingfile(`
viking: { name: ${stack} }
build:
  broken: |
    FROM viking/busybox
    RUN echo "compiling the thing" && echo "error: the thing is broken" >&2 && exit 7
deploy:
  app: { image: viking:${stack}/broken }
`);
  await assert.rejects(
    buildImages({ docker, stack, tag: 'v4', images: vf.images, contextDir: dir, resolveOther: () => Promise.reject(new Error('x')) }),
    (err: unknown) => {
      assert.ok(isVikingError(err));
      assert.equal(err.code, 'VIKING_E_BUILD_FAILED');
      assert.match(err.message, /image broken failed to build: .*returned a non-zero code: 7/);
      const output = (err.details?.output ?? []) as string[];
      assert.ok(output.some((l) => l.includes('error: the thing is broken')), output.join('\n'));
      return true;
    },
  );
});

test('with a cluster registry, images are named after it and pushed there', async () => {
  const vf = parseVikingfile(chain());
  const pushed: string[] = [];
  const refs = await buildImages({
    docker, stack, tag: 'v5', images: vf.images, contextDir: dir, registry: registry.address,
    resolveOther: () => Promise.reject(new Error('x')), onPush: (image, line) => pushed.push(`${image}: ${line}`),
  });
  assert.equal(refs.top, `${registry.address}/${stack}/top:v5`);
  for (const image of ['base', 'mid', 'top']) {
    const res = await fetch(`http://${registry.address}/v2/${stack}/${image}/tags/list`);
    assert.deepEqual(await res.json(), { name: `${stack}/${image}`, tags: ['v5'] });
  }
  assert.ok(pushed.some((l) => /top: v5: digest: sha256:/.test(l)), pushed.join('\n'));
});

/**
 * Two hosts, two Docker daemons, one cluster registry: the image is built
 * on the host whose API took the push, pushed to the registry the master
 * runs, and pulled from there by the other host, whose daemon never saw it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { startSecondDocker, type SecondDocker } from '../helpers/second-docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePort } from '../../lib/net.js';
import { demuxLogs } from '../../lib/slave/containers.js';

const stack = uniqueName('reg');
let etcd: TestEtcd;
let d2: SecondDocker;
let master: HostProcess;
let second: HostProcess;
let work: string;
let registry: string;

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-reg-'));
  etcd = await startTestEtcd();
  d2 = await startSecondDocker();
  registry = `127.0.0.1:${await freePort()}`;
  master = await startHostProcess({
    name: uniqueName('ma'), etcd: etcd.url, ip: '127.0.0.2', master: true, dataDir: path.join(work, 'a'),
    extra: ['--registry', registry, '--run-registry'],
  });
  second = await startHostProcess({
    name: uniqueName('mb'), etcd: etcd.url, ip: '127.0.0.3', dataDir: path.join(work, 'b'),
    extra: ['--docker-socket', d2.socket, '--tags', 'second'],
  });
});

after(async () => {
  await second?.stop();
  await master?.stop();
  await d2?.stop();
  if (master) await removeHostContainers(master.name);
  await removeStackArtifacts(stack);
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('the second host pulls the image from the cluster registry and runs it', async () => {
  const dir = path.join(work, 'src');
  await rm(dir, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  await writeFile(path.join(dir, 'note.txt'), 'shipped through the registry\n');
  await writeFile(
    path.join(dir, 'Vikingfile'),
    `viking: { name: ${stack} }
build:
  worker: |
    FROM viking/busybox
    COPY note.txt /note.txt
deploy:
  worker:
    image: viking:${stack}/worker
    tags: [second]
    run: cat /note.txt && echo "running on $VIKING_HOST" && exec sleep 3600
`,
  );
  assert.deepEqual(await d2.docker.listImages(), [], 'the second daemon starts empty');
  const push = await runCli(['push', dir, '--api', master.api]);
  assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
  assert.match(push.stdout, new RegExp(`worker -> registry: The push refers to repository \\[${registry.replace(/\./g, '\\.')}/${stack}/worker\\]`));

  const image = `${registry}/${stack}/worker:v1`;
  const images = await d2.docker.listImages();
  assert.ok(images.some((i) => i.RepoTags?.includes(image)), `pulled into the second daemon: ${JSON.stringify(images.map((i) => i.RepoTags))}`);
  const [container] = await d2.docker.listContainers({ filters: { label: [`viking.host=${second.name}`] } });
  assert.ok(container, 'the worker runs on the second host');
  assert.equal(container.Image, image);
  const logs = await waitFor('the worker output', async () => {
    const text = demuxLogs((await d2.docker.getContainer(container.Id).logs({ stdout: true, stderr: true })) as unknown as Buffer);
    return text.includes('running on') ? text : undefined;
  });
  assert.equal(logs, `shipped through the registry\nrunning on ${second.name}\n`);
});

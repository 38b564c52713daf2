/**
 * The lab harness itself (test/helpers/netns-lab.ts, netns-server.ts): two
 * servers talk over the bridge only; a pulled cable silences one and putting
 * it back restores it; a power off kills the dockerd and the containers at
 * once and power on brings the daemon back on the same disk; teardown leaves
 * no namespace, link, iptables rule, cgroup, mount or file behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, sweepDeadLabs, type Lab } from '../helpers/netns-lab.js';
import type { NetnsServer } from '../helpers/netns-server.js';
import { labLeftovers } from '../helpers/lab-leftovers.js';

const run = promisify(execFile);
let lab: Lab;
let a: NetnsServer;
let b: NetnsServer;

const ping = (from: NetnsServer, to: string): Promise<boolean> =>
  from.exec('busybox', ['ping', '-c1', '-W1', to]).then(() => true, () => false);

before(async () => {
  await sweepDeadLabs();
  lab = await startLab();
  [a, b] = await Promise.all([lab.addServer(), lab.addServer({ baseImages: false, trustLab: false })]);
});

after(async () => {
  await lab?.teardown();
});

test('servers reach each other over the bridge; a cut cable silences one until it is put back', async () => {
  assert.match(a.ip, /^10\.213\.\d+\.2$/);
  assert.ok(await ping(a, b.ip), 'A reaches B');
  assert.ok(await ping(b, lab.gateway), 'B reaches the bridge');
  await b.cutCable();
  assert.equal(await ping(a, b.ip), false, 'B is unreachable while its cable is out');
  await b.restoreCable();
  assert.ok(await ping(a, b.ip), 'B is back');
});

test('each server has its own dockerd: base images where asked, none elsewhere', async () => {
  const tags = (await a.docker.listImages()).flatMap((i) => i.RepoTags ?? []).sort();
  assert.deepEqual(tags, ['viking/busybox:latest', 'viking/node:latest']);
  assert.deepEqual(await b.docker.listImages(), []);
  // (Their daemon IDs are equal: dockerd 20.10 derives it from /etc/docker/key.json, which every daemon here shares.)
  const infoA = await a.docker.info();
  const infoB = await b.docker.info();
  assert.equal(infoA.DockerRootDir, `${a.dir}/data`);
  assert.equal(infoB.DockerRootDir, `${b.dir}/data`);
});

test('power off kills the daemon and its containers at once; power on brings the daemon back', async () => {
  const c = await a.docker.createContainer({ Image: 'viking/busybox', Cmd: ['sleep', '600'], Labels: { test: 'netns-lab' } });
  await c.start();
  const pid = (await c.inspect()).State.Pid;
  assert.ok(pid > 0);
  const off = await a.powerOff();
  assert.ok(off.killed >= 4, `dockerd, containerd, shim and the container died: ${off.killed}`);
  const state = await readFile(`/proc/${pid}/stat`, 'utf8').then((st) => /\) (\S) /.exec(st)?.[1], () => 'gone');
  assert.ok(state === 'gone' || state === 'Z', `the container process is dead (state ${state})`);
  await assert.rejects(a.docker.ping(), 'the daemon is down');
  await a.powerOn();
  const after = await a.docker.getContainer(c.id).inspect();
  assert.equal(after.State.Running, false, 'the container did not survive the power loss');
  assert.ok((await a.docker.listImages()).length >= 2, 'the disk (images) survived');
});

test('dockerd.sh restart makes the daemon read daemon.json again; start is a no-op while it answers', async () => {
  const registries = async (s: NetnsServer): Promise<string[]> => {
    const info = (await s.docker.info()) as { RegistryConfig?: { IndexConfigs?: Record<string, { Secure: boolean }> } };
    return Object.entries(info.RegistryConfig?.IndexConfigs ?? {}).filter(([, c]) => !c.Secure).map(([k]) => k);
  };
  const pid = await readFile(`${b.dir}/docker.pid`, 'utf8');
  await run('bash', [b.dockerdScript, 'start']);
  assert.equal(await readFile(`${b.dir}/docker.pid`, 'utf8'), pid, 'start left the running daemon alone');
  assert.equal((await registries(b)).includes(`${a.ip}:5000`), false);
  await writeFile(b.daemonJson, JSON.stringify({ 'insecure-registries': [`${a.ip}:5000`] }));
  const { stdout } = await b.exec('bash', [b.dockerdScript, 'restart']);
  assert.match(stdout, /restarted/);
  assert.notEqual(await readFile(`${b.dir}/docker.pid`, 'utf8'), pid, 'a new daemon');
  assert.ok((await registries(b)).includes(`${a.ip}:5000`), `trusts ${a.ip}:5000 after the restart: ${(await registries(b)).join(' ')}`);
});

test('teardown removes everything the lab made', async () => {
  const { id, dir } = lab;
  const t0 = Date.now();
  await lab.teardown();
  const ms = Date.now() - t0;
  assert.deepEqual(await labLeftovers(id, dir), []);
  process.stdout.write(`netns lab teardown of 2 servers: ${ms} ms\n`);
});

/**
 * Issue 9, item 7: stacks stay apart. Replayed against a real `viking host`
 * (etcd, Docker Engine, router, API), driven through the CLI:
 *
 *   - `<p>-g`/`h-web` and `<p>-g-h`/`web` used to share one Docker volume
 *     (`viking-<p>-g-h-web-data`): the second read the first one's data;
 *   - after `viking rm`, a stack pushed again under the same name mounted
 *     the old stack's volume; rm now says what it kept and where, and
 *     `rm --volumes` removes them; rm removes the stack's images;
 *   - two pushes claiming one domain at once both went live;
 *   - `*.x.test` served `a.b.x.test`;
 *   - `*.co.uk` was accepted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { runCli, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { demuxLogs } from '../../lib/slave/containers.js';
import { parseVikingfile, VikingfileError } from '../../lib/vikingfile/index.js';
import { claimAndSwitch } from '../../lib/rollout/rollout.js';
import { reserveDomains } from '../../lib/rollout/domain-claims.js';
import type { ReleaseRecord } from '../../lib/store/records.js';
import type { VikingError } from '../../lib/errors.js';

let etcd: TestEtcd;
let client: Etcd3;
let host: HostProcess;
let work: string;
const hostName = uniqueName('apart');
// Stack and node names chosen so the old volume names collide: viking-<p>-g-h-web-data.
const p = uniqueName('sa');
const stackA = `${p}-g`;
const stackB = `${p}-g-h`;
const racers = [`${p}-c1`, `${p}-c2`];
const wild = `${p}-w`;
const stacks = [stackA, stackB, ...racers, wild];

/**
 * A busybox node with a volume at /data: it logs what it found there
 * (`saw:<owner>`), writes its own stack name if the volume was empty, then
 * serves HTTP on 80.
 */
function volumeVikingfile(stack: string, node: string, build: boolean): string {
  return [
    `viking: {name: ${stack}}`,
    ...(build ? ['build:', '  app: |', '    FROM viking/busybox', `    LABEL test.stack=${stack}`] : []),
    'deploy:',
    `  ${node}:`,
    `    image: ${build ? `viking:${stack}/app` : 'viking/busybox'}`,
    '    expose: [80]',
    '    volume: [/data]',
    `    run: 'echo "saw:$(cat /data/owner 2>/dev/null)"; [ -f /data/owner ] || echo "$VIKING_STACK" > /data/owner; exec httpd -f -p 80 -h /data'`,
    '',
  ].join('\n');
}

function webVikingfile(stack: string, domain: string): string {
  return [
    `viking: {name: ${stack}}`,
    'deploy:',
    '  web:',
    '    image: viking/busybox',
    '    expose: [80]',
    `    domains: ["${domain}"]`,
    `    run: 'mkdir -p /www && echo "${stack}" > /www/index.html && exec httpd -f -p 80 -h /www'`,
    '',
  ].join('\n');
}

async function stackDir(name: string, vikingfile: string): Promise<string> {
  const dir = path.join(work, `${name}-${Math.random().toString(36).slice(2, 6)}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'Vikingfile'), vikingfile);
  return dir;
}

const api = (): string[] => ['--api', host.api];

async function push(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['push', dir, ...api()]);
}

/** What the running container of a stack logged: its `saw:` line says what the volume held when it started. */
async function sawLine(stack: string): Promise<string> {
  const found = await waitFor(`the saw: line of ${stack}`, async () => {
    const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`, `viking.host=${hostName}`] } });
    if (list.length !== 1) return undefined;
    const buf = (await docker.getContainer(list[0]!.Id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const m = /^saw:(.*)$/m.exec(demuxLogs(buf));
    return m ? { saw: m[1]! } : undefined;
  });
  return found.saw;
}

async function volumesOf(stack: string): Promise<string[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`viking.stack=${stack}`] } });
  return (Volumes ?? []).map((v) => v.Name).sort();
}

async function mountsOf(stack: string): Promise<string[]> {
  const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`, `viking.host=${hostName}`] } });
  const out: string[] = [];
  for (const c of list) for (const m of (await docker.getContainer(c.Id).inspect()).Mounts) if (m.Name) out.push(m.Name);
  return out.sort();
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-apart-'));
  etcd = await startTestEtcd('apart');
  client = connectEtcd(etcd.url);
  host = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data') });
});

after(async () => {
  await host?.stop();
  await removeHostContainers(hostName);
  for (const s of stacks) await removeStackArtifacts(s);
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('two stacks whose old volume names collided get separate volumes: one never reads the other\'s data', async () => {
  const a = await push(await stackDir('a', volumeVikingfile(stackA, 'h-web', true)));
  assert.equal(a.code, 0, `push ${stackA}:\n${a.stdout}\n${a.stderr}`);
  assert.equal(await sawLine(stackA), '', 'the first stack starts on an empty volume');
  const b = await push(await stackDir('b', volumeVikingfile(stackB, 'web', false)));
  assert.equal(b.code, 0, `push ${stackB}:\n${b.stdout}\n${b.stderr}`);
  assert.equal(await sawLine(stackB), '', `${stackB} must not see what ${stackA} wrote`);
  const [ma, mb] = [await mountsOf(stackA), await mountsOf(stackB)];
  assert.equal(ma.length, 1);
  assert.equal(mb.length, 1);
  assert.notEqual(ma[0], mb[0], 'each stack mounts its own volume');
  const vol = await docker.getVolume(ma[0]!).inspect();
  assert.equal(vol.Labels['viking.stack'], stackA);
  assert.equal(vol.Labels['viking.node'], 'h-web');
  assert.equal(vol.Labels['viking.volume'], '/data');
  assert.match(vol.Labels['viking.incarnation'] ?? '', /^[0-9a-f]{16}$/);
});

test('rm says which volumes it kept and where, removes the images; the same name pushed again starts empty; rm --volumes removes them', async () => {
  const images = await docker.listImages({ filters: { label: [`viking.stack=${stackA}`] } });
  assert.ok(images.length >= 1, 'the build made an image for the stack');
  const firstVolumes = await volumesOf(stackA);
  assert.equal(firstVolumes.length, 1);

  const removed = await runCli(['rm', stackA, '--yes', ...api()]);
  assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`);
  assert.match(removed.stdout, new RegExp(`${hostName}\\s+${firstVolumes[0]}\\s+h-web\\s+/data`), `rm lists the kept volume with its host:\n${removed.stdout}`);
  assert.deepEqual(await volumesOf(stackA), firstVolumes, 'kept');
  assert.deepEqual(await docker.listImages({ filters: { label: [`viking.stack=${stackA}`] } }), [], 'the images built for the stack are gone');

  const again = await push(await stackDir('a2', volumeVikingfile(stackA, 'h-web', true)));
  assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
  assert.equal(await sawLine(stackA), '', 'a stack made again after rm does not get the old one\'s data');
  const secondVolumes = (await volumesOf(stackA)).filter((v) => !firstVolumes.includes(v));
  assert.equal(secondVolumes.length, 1);
  assert.deepEqual(await mountsOf(stackA), secondVolumes);

  const purge = await runCli(['rm', stackA, '--yes', '--volumes', ...api()]);
  assert.equal(purge.code, 0, `${purge.stdout}\n${purge.stderr}`);
  assert.match(purge.stdout, /1 Docker volume\(s\) removed/);
  assert.deepEqual(await volumesOf(stackA), firstVolumes, "--volumes removed this incarnation's volume; the first one's stays as rm said");
  // The other stack was not touched.
  assert.equal((await mountsOf(stackB)).length, 1);
});

test('two pushes that claim one domain at the same time: exactly one goes live, the other fails with VIKING_E_DOMAIN_TAKEN', async () => {
  const domain = `${p}-claim.test`;
  const dirs = await Promise.all(racers.map((s) => stackDir(s, webVikingfile(s, domain))));
  const results = await Promise.all(dirs.map((d) => push(d)));
  const won = results.map((r) => r.code === 0);
  assert.equal(won.filter(Boolean).length, 1, results.map((r) => `${r.code}: ${r.stdout}\n${r.stderr}`).join('\n----\n'));
  const winner = racers[won.indexOf(true)]!;
  const loser = racers[won.indexOf(false)]!;
  assert.match(results[won.indexOf(false)]!.stderr, /VIKING_E_DOMAIN_TAKEN/);

  const record = JSON.parse((await client.get(`/domains/${domain}`).string()) ?? '{}') as { stack?: string };
  assert.equal(record.stack, winner);
  const listed = JSON.parse((await runCli(['stacks', '--json', ...api()])).stdout) as Array<{ name: string; current: string | null; domains: string[] }>;
  const claiming = listed.filter((s) => s.domains.includes(domain)).map((s) => s.name);
  assert.deepEqual(claiming, [winner], 'only the winner lists the domain');
  assert.equal(listed.find((s) => s.name === loser)?.current ?? null, null, 'the loser never went live');
  // Refused before it took a release number or built anything: the domain was reserved by the winner's push.
  assert.doesNotMatch(results[won.indexOf(false)]!.stdout, /release v1|scheduled/);
  assert.equal(await client.get(`/stack/${loser}`).string(), null);
  await waitFor(`${loser}'s containers withdrawn`, async () => (await docker.listContainers({ filters: { label: [`viking.stack=${loser}`] } })).length === 0);
  const res = await routerGet({ port: host.routerPort, path: '/', host: domain });
  assert.equal(res.status, 200);
  assert.equal(res.body.trim(), winner);
});

test('a wildcard covers exactly one label through the real router', async () => {
  const pushed = await push(await stackDir('w', webVikingfile(wild, `*.${p}.test`)));
  assert.equal(pushed.code, 0, `${pushed.stdout}\n${pushed.stderr}`);
  const one = await routerGet({ port: host.routerPort, path: '/', host: `x.${p}.test` });
  assert.equal(one.status, 200);
  assert.equal(one.body.trim(), wild);
  for (const deeper of [`x.a.${p}.test`, `a.b.c.${p}.test`]) {
    const res = await routerGet({ port: host.routerPort, path: '/', host: deeper });
    assert.equal(res.status, 404, `${deeper} is not covered by *.${p}.test`);
    assert.doesNotMatch(res.body, new RegExp(wild));
  }
});

test('a wildcard on a public suffix is refused with line and column; one under a registrable domain is fine', async () => {
  const vf = (domain: string): string =>
    ['viking: {name: ps}', 'deploy:', '  web:', '    image: viking/busybox', '    expose: [80]', '    domains:', '      - example.org', `      - "${domain}"`, ''].join('\n');
  for (const domain of ['*.com', '*.co.uk', '*.github.io', '*.test']) {
    assert.throws(
      () => parseVikingfile(vf(domain)),
      (e: VikingfileError) =>
        e.problems.length === 1 && e.problems[0]!.kind === 'bad-domain' && e.problems[0]!.line === 8 && e.problems[0]!.column === 9 &&
        /public suffix/.test(e.message) && e.message.startsWith('Vikingfile:8:9:'),
      domain,
    );
  }
  for (const domain of ['*.example.co.uk', '*.shop.example.com', `*.${p}.test`]) assert.doesNotThrow(() => parseVikingfile(vf(domain)), domain);
  // And the push is refused before anything is uploaded.
  const refused = await push(await stackDir('ps', vf('*.co.uk').replace('name: ps', `name: ${p}-ps`)));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /VIKING_E_VIKINGFILE_INVALID: Vikingfile:8:9: .*public suffix 'co\.uk'/);
});

test('the claim transaction on etcd: dropped domains go, a taken one refuses the switch, 101 domains are refused by the parser', async () => {
  const s1 = `${p}-tx1`;
  const s2 = `${p}-tx2`;
  const rel = (tag: string): ReleaseRecord => ({ tag, number: Number(tag.slice(1)), at: new Date().toISOString(), by: 'test', images: {}, source: '/x', builtOn: hostName });
  const owner = async (d: string): Promise<string | undefined> => (JSON.parse((await client.get(`/domains/${d}`).string()) ?? '{}') as { stack?: string }).stack;
  const [a, b, c] = ['a', 'b', 'c'].map((x) => `${x}.${p}-tx.test`) as [string, string, string];
  await claimAndSwitch(client, s1, rel('v1'), { domains: { web: [a, b] }, websites: {} });
  assert.deepEqual([await owner(a), await owner(b)], [s1, s1]);
  await claimAndSwitch(client, s1, rel('v2'), { domains: { web: [b, c] }, websites: {} });
  assert.deepEqual([await owner(a), await owner(b), await owner(c)], [undefined, s1, s1], 'a dropped, c claimed');
  const before = await client.get(`/stack/${s2}`).string();
  await assert.rejects(claimAndSwitch(client, s2, rel('v1'), { domains: { web: [a, c] }, websites: {} }), (e: VikingError) => e.code === 'VIKING_E_DOMAIN_TAKEN' && e.message.includes(c));
  assert.equal(await owner(a), undefined, 'nothing of the refused claim was written');
  assert.equal(await client.get(`/stack/${s2}`).string(), before);
  await client.delete().key(`/stack/${s1}`);
  for (const d of [a, b, c]) await client.delete().key(`/domains/${d}`);

  // A push reserves a new domain for its whole run: a second stack is refused at once, and may take it once the first ends.
  const end = await reserveDomains(client, s1, { web: [a] });
  await assert.rejects(reserveDomains(client, s2, { web: [b, a] }), (e: VikingError) => e.code === 'VIKING_E_DOMAIN_TAKEN' && e.message.includes(`being claimed by a push of ${s1}`));
  assert.equal(await client.get(`/claims/${b}`).string(), null, 'the refused push reserved nothing');
  await end();
  const end2 = await reserveDomains(client, s2, { web: [b, a] });
  await end2();
  assert.equal(await client.getAll().prefix('/claims/').count(), 0);

  const many = Array.from({ length: 101 }, (_, i) => `      - d${i}.example.org`);
  assert.throws(
    () => parseVikingfile(['viking: {name: many}', 'deploy:', '  web:', '    image: viking/busybox', '    expose: [80]', '    domains:', ...many, ''].join('\n')),
    (e: VikingfileError) => e.problems.length === 1 && e.problems[0]!.line === 107 && /at most 100 domains/.test(e.message),
  );
});

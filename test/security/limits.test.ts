/**
 * Issue 9, item 8: limits. Replayed against dowding (pure), the parser, and a
 * real `viking host` (etcd, API, slave, Docker Engine):
 *
 *   - `scale: 1e9` was accepted by the Vikingfile (the API capped at 100);
 *   - 1,000 jobs were placed on one host whose capacity read "unlimited":
 *     a job without `memory:` counted nothing;
 *   - containers had no pids limit, and no memory limit unless asked, so a
 *     fork bomb in one stack could exhaust the host.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { runCli, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { placeJobs, type PlanHost, type PlanJob } from '../../lib/dowding/index.js';
import { parseVikingfile, VikingfileError } from '../../lib/vikingfile/index.js';
import { hostKey, procKey } from '../../lib/store/keys.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';
import { writeJobs } from '../../lib/rollout/rollout.js';
import { waitForJobs } from '../../lib/rollout/wait.js';
import type { VikingError } from '../../lib/errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const job = (id: string, over: Partial<PlanJob> = {}): PlanJob => {
  const [stack = 's', , node = 'web'] = id.split('/');
  return { id, stack, node, memory: 0, cpu: 0, tags: [], prefer: [], ...over };
};
const host = (name: string, over: Partial<PlanHost> = {}): PlanHost => ({
  name, tags: [], capacity: { memory: 8 * GiB, cpu: 4, containers: 0 }, draining: false, jobs: [], defaultMemory: 512 * MiB, ...over,
});
const jobs = (n: number, over: Partial<PlanJob> = {}): PlanJob[] =>
  Array.from({ length: n }, (_, i) => job(`big/v1/web/${String(i + 1).padStart(4, '0')}`, over));

describe('dowding refuses what does not fit, with the reason', () => {
  test('the attack: 1,000 jobs without memory: on one host of 24 GiB place only what its default limit lets fit', () => {
    const plan = placeJobs({ hosts: [host('one', { capacity: { memory: 24 * GiB, cpu: 2, containers: 0 } })] }, jobs(1000));
    assert.equal(plan.placements.length, 48, '24 GiB / 512 MiB');
    assert.equal(plan.unplaced.length, 952);
    assert.deepEqual(plan.unplaced[0]!.reasons, ['1 host: not enough memory']);
  });

  const cases: Array<{ name: string; hosts: PlanHost[]; jobs: PlanJob[]; placed: number; reasons?: string[] }> = [
    { name: 'default memory counts for jobs without memory:', hosts: [host('a', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 } })], jobs: jobs(3), placed: 2, reasons: ['1 host: not enough memory'] },
    { name: 'memory: asked wins over the default', hosts: [host('a', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 } })], jobs: jobs(5, { memory: 200 * MiB }), placed: 5 },
    { name: 'already placed jobs without memory: count the default too', hosts: [host('a', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 }, jobs: [job('old/v1/x/1'), job('old/v1/x/2')] })], jobs: jobs(1), placed: 0, reasons: ['1 host: not enough memory'] },
    { name: 'a host without a default limit (older host) keeps counting 0', hosts: [host('a', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 }, defaultMemory: 0 })], jobs: jobs(10), placed: 10 },
    { name: 'cpu is the real count of the host', hosts: [host('a', { capacity: { memory: 64 * GiB, cpu: 2, containers: 0 } })], jobs: jobs(5, { cpu: 0.5 }), placed: 4, reasons: ['1 host: not enough cpu'] },
    { name: '--max-containers still caps', hosts: [host('a', { capacity: { memory: 64 * GiB, cpu: 2, containers: 3 } })], jobs: jobs(5), placed: 3, reasons: ['1 host: no container slots left'] },
    {
      name: 'each host counts its own default',
      hosts: [host('a', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 }, defaultMemory: 256 * MiB }), host('b', { capacity: { memory: 1 * GiB, cpu: 0, containers: 0 }, defaultMemory: 1 * GiB })],
      jobs: jobs(6),
      placed: 5,
      reasons: ['2 hosts: not enough memory'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = placeJobs({ hosts: c.hosts }, c.jobs);
      assert.equal(plan.placements.length, c.placed);
      if (c.reasons) assert.deepEqual(plan.unplaced[0]?.reasons, c.reasons);
      else assert.equal(plan.unplaced.length, 0);
    });
  }

  test('property: no host is ever planned past its memory, counting each job at what it asked or the host default', () => {
    const hostArb = fc.record({
      memory: fc.integer({ min: 1, max: 64 }).map((n) => n * 256 * MiB),
      defaultMemory: fc.constantFrom(0, 64 * MiB, 512 * MiB, 2 * GiB),
      existing: fc.array(fc.constantFrom(0, 100 * MiB, 1 * GiB), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(hostArb, { minLength: 1, maxLength: 8 }), fc.array(fc.constantFrom(0, 0, 128 * MiB, 1 * GiB, 4 * GiB), { maxLength: 120 }), (hs, asks) => {
        const planHosts = hs.map((h, i) =>
          host(`h${i}`, { capacity: { memory: h.memory, cpu: 0, containers: 0 }, defaultMemory: h.defaultMemory, jobs: h.existing.map((m, k) => job(`old/v1/x${i}/${k + 1}`, { memory: m })) }),
        );
        const plan = placeJobs({ hosts: planHosts }, asks.map((m, i) => job(`s/v1/web/${i + 1}`, { memory: m })));
        for (const ph of planHosts) {
          const count = (j: PlanJob): number => (j.memory > 0 ? j.memory : ph.defaultMemory ?? 0);
          const before = ph.jobs.reduce((a, j) => a + count(j), 0);
          const added = plan.placements.filter((pl) => pl.host === ph.name).reduce((a, pl) => a + count(pl.job), 0);
          if (added > 0) assert.ok(before + added <= ph.capacity.memory, `${ph.name}: ${before} + ${added} > ${ph.capacity.memory}`);
        }
        for (const u of plan.unplaced) assert.ok(u.reasons.length > 0 && u.reasons.every((r) => /^\d+ hosts?: /.test(r)), JSON.stringify(u.reasons));
        assert.equal(plan.placements.length + plan.unplaced.length, asks.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('scale beyond the cluster maximum', () => {
  const vf = (scale: string): string =>
    ['viking: {name: big}', 'deploy:', '  web:', '    image: viking/busybox', `    scale: ${scale}`, ''].join('\n');

  test('the parser refuses scale: 1e9 at its line and column; the default maximum is 100', () => {
    for (const scale of ['1e9', '101', '1000000000']) {
      assert.throws(
        () => parseVikingfile(vf(scale)),
        (e: VikingfileError) => e.problems.length === 1 && e.problems[0]!.kind === 'bad-scale' && e.problems[0]!.line === 5 && e.problems[0]!.column === 12 && /at most|more than the 100/.test(e.message),
        scale,
      );
    }
    assert.equal((parseVikingfile(vf('100')).nodes[0] as { scale: number }).scale, 100);
    assert.throws(() => parseVikingfile(vf('8'), 'Vikingfile', { maxScale: 5 }), /Vikingfile:5:12: scale 8 is more than the 5 replicas per node/);
  });
});

describe('a real host: the cluster max-scale, and the limits every container gets', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  let h: HostProcess;
  let work: string;
  const hostName = uniqueName('lim');
  const stack = uniqueName('bomb');
  const big = uniqueName('big');

  before(async () => {
    await baseImages();
    work = await mkdtemp(path.join(os.tmpdir(), 'viking-limits-'));
    etcd = await startTestEtcd('limits');
    client = connectEtcd(etcd.url);
    h = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data'), extra: ['--pids-limit', '64', '--default-memory', '96m'] });
  });

  after(async () => {
    await h?.stop();
    await removeHostContainers(hostName);
    await removeStackArtifacts(stack);
    client?.close();
    await etcd?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function dir(name: string, text: string): Promise<string> {
    const d = path.join(work, name);
    await mkdir(d, { recursive: true });
    await writeFile(path.join(d, 'Vikingfile'), text);
    return d;
  }

  test('the host publishes its real memory and CPUs and its container limits', async () => {
    const rec = JSON.parse((await client.get(hostKey(hostName)).string()) ?? '{}') as HostRecord;
    const info = (await docker.info()) as { MemTotal: number; NCPU: number };
    assert.equal(rec.capacity.memory, info.MemTotal);
    assert.equal(rec.capacity.cpu, info.NCPU);
    assert.deepEqual(rec.limits, { defaultMemory: 96 * MiB, pidsLimit: 64 });
    const hosts = await runCli(['hosts', '--api', h.api]);
    assert.doesNotMatch(hosts.stdout, /unlimited/);
    assert.match(hosts.stdout, /\d+\.\d GiB, \d+ cpu/);
  });

  test('the API refuses a push with scale over the cluster maximum at its line, and scale over it with VIKING_E_SCALE_LIMIT', async () => {
    const vf = (scale: number): string =>
      [`viking: {name: ${big}}`, 'deploy:', '  web:', '    image: viking/busybox', `    scale: ${scale}`, "    run: 'sleep 100000'", ''].join('\n');
    // The CLI checks only the ceiling; the API checks the cluster's setting.
    const set = await runCli(['settings', 'max-scale=2', '--api', h.api]);
    assert.equal(set.code, 0, set.stderr);
    const refused = await runCli(['push', await dir('big3', vf(3)), '--api', h.api]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /VIKING_E_VIKINGFILE_INVALID: Vikingfile:5:12: scale 3 is more than the 2 replicas per node this cluster allows/);
    const bomb = await runCli(['push', await dir('big1e9', vf(1e9).replace('scale: 1000000000', 'scale: 1e9')), '--api', h.api]);
    assert.equal(bomb.code, 1);
    assert.match(bomb.stderr, /Vikingfile:5:12: scale 1e9 is more than/);
    assert.equal(await client.getAll().prefix(`/proc/${big}/`).count(), 0, 'nothing was scheduled');

    const ok = await runCli(['push', await dir('big1', vf(1)), '--api', h.api]);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    const tooMany = await fetch(`${h.api}/v1/scale/${big}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ nodes: { web: 3 } }),
    });
    assert.equal(tooMany.status, 400);
    const body = (await tooMany.json()) as { code: string; message: string };
    assert.equal(body.code, 'VIKING_E_SCALE_LIMIT');
    assert.match(body.message, /at most 2 replicas/);
    assert.equal(await client.getAll().prefix(`/proc/${big}/`).count(), 1, 'still one replica');
    await runCli(['settings', 'max-scale=100', '--api', h.api]);
    const gone = await runCli(['rm', big, '--yes', '--api', h.api]);
    assert.equal(gone.code, 0, gone.stderr);
  });

  test('a job no host can hold waits with dowding\'s reason, shown while it waits and in the timeout', async () => {
    const tooBig: JobSpec = {
      stack: big, tag: 'v9', node: 'huge', instance: 1, image: 'viking/busybox', expose: [], volumes: [], env: {}, service: false,
      tags: [], prefer: [], memory: 1024 * GiB, cpu: 0, scale: 1,
    };
    await writeJobs(client, [tooBig]);
    const seen: string[] = [];
    try {
      await assert.rejects(
        waitForJobs(client, [tooBig], { timeoutMs: 3500, onChange: (_j, what) => seen.push(what) }),
        (e: VikingError) => e.code === 'VIKING_E_DEPLOY_TIMEOUT' && /huge\/1: no host fits \(1 host: not enough memory\)/.test(e.message),
      );
      assert.ok(seen.includes('no host fits: 1 host: not enough memory'), seen.join(' | '));
      assert.equal(await client.get(`/run/${big}/v9/huge/1`).string(), null, 'dispatch did not place it either');
    } finally {
      await client.delete().key(procKey(tooBig));
    }
  });

  test('a container the slave starts has the pids and memory limits, a fork bomb stays under the pids limit, and no raw sockets', async (t) => {
    const text = [
      `viking: {name: ${stack}}`,
      'deploy:',
      '  bomb:',
      '    image: viking/busybox',
      '    expose: [80]',
      // The inner shell forks until the pids limit stops it (a failed fork ends it); then httpd serves.
      `    run: 'sh -c "for i in \\$(seq 1000); do sleep 100000 & done"; exec httpd -f -p 80'`,
      '  sized:',
      '    image: viking/busybox',
      '    memory: 48m',
      "    run: 'exec sleep 100000'",
      // A raw packet socket (arping) is what ARP spoofing on the shared bridge needs.
      '  raw:',
      '    image: viking/busybox',
      "    run: 'if arping -c1 -w1 -I eth0 127.0.0.1; then echo RAW-SOCKET-OPEN; else echo RAW-SOCKET-REFUSED; fi; exec sleep 100000'",
      '',
    ].join('\n');
    const pushed = await runCli(['push', await dir('bomb', text), '--api', h.api]);
    assert.equal(pushed.code, 0, `${pushed.stdout}\n${pushed.stderr}`);
    const byNode = async (node: string) => {
      const list = await docker.listContainers({ filters: { label: [`viking.stack=${stack}`, `viking.node=${node}`, `viking.host=${hostName}`] } });
      assert.equal(list.length, 1);
      return docker.getContainer(list[0]!.Id);
    };
    const bomb = await byNode('bomb');
    const info = await bomb.inspect();
    assert.equal(info.HostConfig.PidsLimit, 64);
    assert.equal(info.HostConfig.Memory, 96 * MiB, 'the host default memory limit');
    // The loop ends (fork fails past the limit) and httpd serves: count what runs.
    const top = await waitFor('the fork loop done', async () => {
      const t = (await bomb.top()) as { Processes: string[][] };
      return t.Processes.some((row) => row.join(' ').includes('httpd')) ? t : undefined;
    });
    t.diagnostic(`fork loop of 1000 under --pids-limit 64: ${top.Processes.length} processes in the container`);
    assert.ok(top.Processes.length <= 64, `${top.Processes.length} processes`);
    assert.ok(top.Processes.length >= 32, `the loop did fork up to the limit (${top.Processes.length})`);
    const sized = await (await byNode('sized')).inspect();
    assert.equal(sized.HostConfig.Memory, 48 * MiB, "the node's memory: wins");
    assert.equal(sized.HostConfig.PidsLimit, 64);
    // No stack may forge packets on the bridge it shares with others, nor gain privileges through setuid.
    const raw = await byNode('raw');
    const rawInfo = await raw.inspect();
    assert.deepEqual(rawInfo.HostConfig.CapDrop, ['NET_RAW']);
    assert.deepEqual(rawInfo.HostConfig.SecurityOpt, ['no-new-privileges']);
    const said = await waitFor('the raw socket probe', async () => {
      const log = ((await raw.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('latin1');
      return /RAW-SOCKET-(OPEN|REFUSED)/.exec(log)?.[0];
    });
    assert.equal(said, 'RAW-SOCKET-REFUSED');
  });
});

/**
 * Runs alone: 4-second ticks and a leader killed at a tick; a loaded machine delays the ticks past the test's waits.
 *
 * Cron end to end on the real parts: one etcd, two master `viking host`
 * processes sharing one Docker Engine, a pushed Vikingfile whose cron nodes
 * tick every 4 seconds (croner's seconds field compresses the clock; nothing
 * in viking is faked). The leader is SIGKILLed right at a tick.
 *
 * What must hold, counted independently from two sources:
 *   - etcd: exactly one history record (the claim) per tick of the schedule,
 *     with no tick missing between the first and the last, across the failover;
 *   - Docker: at most one container started per tick (its events, labelled
 *     with the run), and exactly one for every tick that ran to the end.
 * Then the history, `viking cron`, `viking ps` and /metrics show a failing job.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { currentLeader } from '../../lib/leader/election.js';
import { cronRunsStackPrefix, parseCronPath, cronRunsPrefix } from '../../lib/store/keys.js';
import { nextTick } from '../../lib/cron/schedule.js';
import type { CronRunRecord } from '../../lib/store/records.js';
import type { Etcd3 } from 'etcd3';

const SCHEDULE = '*/4 * * * * *';
const stack = uniqueName('cron');
const names = [uniqueName('cr-a'), uniqueName('cr-b')];
let etcd: TestEtcd;
let client: Etcd3;
let work: string;
const hosts = new Map<string, HostProcess>();
/** Both hosts use one copy of the secrets key (the first one makes it), as an operator would copy it. */
const hostFlags = (): string[] => ['--lease-ttl', '2', '--leader-ttl', '2', '--secrets-key', path.join(work, 'secrets.key')];
/** Container starts seen on the daemon, by run label (`stack/node/tick`). */
const starts = new Map<string, number>();
let events: NodeJS.ReadableStream | undefined;

async function runs(): Promise<Array<CronRunRecord & { tickMs: number }>> {
  const kvs = await client.getAll().prefix(cronRunsStackPrefix(stack)).strings();
  return Object.entries(kvs).map(([k, v]) => ({ ...(JSON.parse(v) as CronRunRecord), tickMs: parseCronPath(k.slice(cronRunsPrefix.length))!.tick }));
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-cron-'));
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  for (const [i, name] of names.entries()) {
    hosts.set(name, await startHostProcess({
      name, etcd: etcd.url, ip: `127.0.0.${i + 2}`, master: true, dataDir: path.join(work, name),
      extra: hostFlags(),
    }));
  }
  events = (await docker.getEvents({ filters: { type: ['container'], event: ['start'], label: [`viking.stack=${stack}`] } })) as NodeJS.ReadableStream;
  let buf = '';
  events.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const run = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.['viking.cron.run'];
      if (run) starts.set(run, (starts.get(run) ?? 0) + 1);
    }
  });
  const dir = path.join(work, 'src');
  await mkdir(dir);
  await writeFile(path.join(dir, 'Vikingfile'), [
    'viking:',
    `  name: ${stack}`,
    'deploy:',
    '  tick:',
    '    image: viking/busybox',
    `    schedule: '${SCHEDULE}'`,
    '    concurrency: allow',
    '    run: echo "tick $VIKING_CRON_TICK on $VIKING_HOST"; [ -z "$CRON_TOKEN" ] || echo "token $(printf %s "$CRON_TOKEN" | md5sum | cut -c1-8)"',
    '  broken:',
    '    image: viking/busybox',
    `    schedule: '${SCHEDULE}'`,
    '    run: echo "boom at $VIKING_CRON_TICK" >&2; exit 3',
    '',
  ].join('\n'));
  const api = hosts.get(names[0]!)!.api;
  const push = await runCli(['push', dir, '--api', api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);
});

after(async () => {
  (events as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  for (const h of hosts.values()) await h.stop('SIGKILL');
  for (const name of names) {
    await removeHostContainers(name);
    const list = await docker.listContainers({ all: true, filters: { label: [`viking.cron.host=${name}`] } });
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  }
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('every tick runs exactly once, including the tick at which the leader is SIGKILLed', async () => {
  // Two ticks run normally first.
  await waitFor('two finished runs of tick', async () => (await runs()).filter((r) => r.node === 'tick' && r.state === 'succeeded').length >= 2, 30_000, 200);
  const leader = await currentLeader(client);
  assert.ok(leader && hosts.has(leader), `leader ${leader}`);
  const survivor = names.find((n) => n !== leader)!;
  // Kill it at the instant of a tick at least 1.5 s away: the race between its timer and its death.
  const tick = nextTick({ schedule: SCHEDULE, concurrency: 'allow' }, Date.now() + 1500)!;
  await new Promise((r) => setTimeout(r, tick - Date.now()));
  hosts.get(leader)!.child.kill('SIGKILL');
  const killedAt = Date.now();
  // The survivor leads, and two more ticks after the failover tick finish.
  await waitFor('the survivor to lead', async () => (await currentLeader(client)) === survivor, 15_000, 100);
  await waitFor('two runs after the failover tick', async () => (await runs()).filter((r) => r.node === 'tick' && r.tickMs > tick + 4000 && r.state === 'succeeded').length >= 2, 30_000, 200);
  await waitFor('no run of the killed leader still unfinished', async () => (await runs()).every((r) => r.state !== 'placed' && r.state !== 'running'), 20_000, 200);

  const all = (await runs()).filter((r) => r.node === 'tick').sort((a, b) => a.tickMs - b.tickMs);
  const ticks = all.map((r) => r.tickMs);
  // One record per tick (keys are unique by construction; the point is no gap): consecutive ticks of the schedule.
  for (let i = 1; i < ticks.length; i++) {
    assert.equal(ticks[i], nextTick({ schedule: SCHEDULE, concurrency: 'allow' }, ticks[i - 1]!), `tick missing between ${new Date(ticks[i - 1]!).toISOString()} and ${new Date(ticks[i]!).toISOString()}`);
  }
  assert.ok(ticks.includes(tick), `the failover tick ${new Date(tick).toISOString()} has a record: ${ticks.map((t) => new Date(t).toISOString()).join(', ')}`);
  const atKill = all.find((r) => r.tickMs === tick)!;
  // It ran: claimed late by the survivor, or claimed by the dying leader and run (or moved off the dead host) once.
  // Only a run the dead host had already begun before it died may be `lost` instead.
  if (atKill.state !== 'succeeded') {
    assert.equal(atKill.state, 'lost', JSON.stringify(atKill));
    assert.ok(atKill.startedAt && Date.parse(atKill.startedAt) <= killedAt + 50, `lost although never begun: ${JSON.stringify(atKill)}`);
  }
  // Containers: never two for one tick; exactly one for each that ran to the end.
  for (const r of all) {
    const n = starts.get(`${stack}/tick/${r.tickMs}`) ?? 0;
    assert.ok(n <= 1, `tick ${r.tick} started ${n} containers`);
    if (r.state === 'succeeded') assert.equal(n, 1, `tick ${r.tick} succeeded with ${n} container starts`);
  }
  // Ticks claimed after the kill are the survivor's.
  for (const r of all.filter((x) => Date.parse(x.claimedAt) > killedAt + 100)) assert.equal(r.claimedBy, survivor);
  const after = all.filter((r) => r.tickMs > tick);
  assert.ok(after.every((r) => r.state === 'succeeded' && r.exitCode === 0 && r.logs?.some((l) => l.startsWith('tick '))), JSON.stringify(after));
  process.stdout.write(`# failover tick ${atKill.tick}: ${atKill.state} (claimed by ${atKill.claimedBy} at +${Date.parse(atKill.claimedAt) - tick} ms; leader killed at +${killedAt - tick} ms); ${all.length} ticks, each once\n`);
});

test('a tick the dying leader already claimed is carried out or marked lost, never claimed again by the next leader', async () => {
  // Bring the killed host back: two hosts again.
  const dead = names.find((n) => hosts.get(n)!.child.exitCode !== null || hosts.get(n)!.child.signalCode !== null)!;
  const i = names.indexOf(dead);
  hosts.set(dead, await startHostProcess({
    name: dead, etcd: etcd.url, ip: `127.0.0.${i + 2}`, master: true, dataDir: path.join(work, dead),
    extra: hostFlags(),
  }));
  const leader = (await currentLeader(client))!;
  const tick = nextTick({ schedule: SCHEDULE, concurrency: 'allow' }, Date.now() + 1500)!;
  await new Promise((r) => setTimeout(r, tick - Date.now()));
  // Kill it just after its claim is in etcd.
  const claimed = await waitFor('the leader to claim the tick', async () => (await runs()).find((r) => r.node === 'tick' && r.tickMs === tick), 3000, 5);
  hosts.get(leader)!.child.kill('SIGKILL');
  const killedAt = Date.now();
  assert.equal(claimed.claimedBy, leader);
  await waitFor('another leader', async () => { const l = await currentLeader(client); return l !== undefined && l !== leader; }, 15_000, 100);
  await waitFor('two runs after that tick', async () => (await runs()).filter((r) => r.node === 'tick' && r.tickMs > tick && r.state === 'succeeded').length >= 2, 30_000, 200);
  await waitFor('the claimed run to finish or be marked lost', async () => !['placed', 'running'].includes((await runs()).find((r) => r.node === 'tick' && r.tickMs === tick)!.state), 20_000, 200);
  const rec = (await runs()).find((r) => r.node === 'tick' && r.tickMs === tick)!;
  assert.equal(rec.claimedBy, leader, 'the record is still the dead leader\'s claim: nobody claimed the tick again');
  const n = starts.get(`${stack}/tick/${tick}`) ?? 0;
  assert.ok(n <= 1, `${n} containers for one tick`);
  if (rec.state === 'succeeded') assert.equal(n, 1);
  else assert.equal(rec.state, 'lost', JSON.stringify(rec));
  process.stdout.write(`# tick claimed ${Date.parse(rec.claimedAt) - tick} ms after it by ${leader}, killed at +${killedAt - tick} ms: ${rec.state} on ${rec.host}, ${n} container start(s)\n`);
});

test('a failing cron job shows its exit code, output and duration in viking cron, viking ps and /metrics', async () => {
  const api = hosts.get(names.find((n) => hosts.get(n)!.child.exitCode === null && hosts.get(n)!.child.signalCode === null)!)!;
  await waitFor('a failed run of broken', async () => (await runs()).some((r) => r.node === 'broken' && r.state === 'failed'), 20_000, 200);
  const cron = await runCli(['cron', stack, '--api', api.api, '--json']);
  assert.equal(cron.code, 0, cron.stderr);
  const view = JSON.parse(cron.stdout) as { nodes: Array<{ node: string; schedule: string; next: string; runs: CronRunRecord[] }> };
  const broken = view.nodes.find((n) => n.node === 'broken')!;
  assert.equal(broken.schedule, SCHEDULE);
  const failed = broken.runs.find((r) => r.state === 'failed')!;
  assert.equal(failed.exitCode, 3);
  assert.ok(failed.durationMs !== undefined && failed.durationMs >= 0 && failed.durationMs < 10_000);
  assert.ok(failed.logs?.some((l) => /^boom at \d{4}-/.test(l)), JSON.stringify(failed.logs));
  assert.ok(broken.runs.length <= 20, 'history is bounded');

  const table = await runCli(['cron', stack, '--api', api.api, '--logs']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /NODE\s+SCHEDULE\s+TIMEZONE\s+CONCURRENCY/);
  assert.match(table.stdout, /broken\s+\S+\s+failed\s+\S+\s+3\s+/);
  assert.match(table.stdout, /boom at/);

  const ps = await runCli(['ps', stack, '--api', api.api, '--json']);
  const rows = JSON.parse(ps.stdout) as Array<{ node: string; state: string; reason: string; logs: string[] }>;
  const row = rows.find((r) => r.node === 'broken')!;
  assert.equal(row.state, 'cron-failed');
  assert.match(row.reason, /exit 3/);

  const scale = await runCli(['scale', stack, 'tick=2', '--api', api.api]);
  assert.notEqual(scale.code, 0);
  assert.match(scale.stderr + scale.stdout, /VIKING_E_CRON_NODE/);

  const metrics = await (await fetch(`${api.api}/metrics`, { headers: { authorization: `Bearer ${api.token}` } })).text();
  assert.match(metrics, new RegExp(`viking_cron_last_failed\\{stack="${stack}",node="broken"\\} 1`));
  assert.match(metrics, new RegExp(`viking_cron_last_failed\\{stack="${stack}",node="tick"\\} 0`));
  assert.match(metrics, new RegExp(`viking_cron_last_exit_code\\{stack="${stack}",node="broken"\\} 3`));
});

test('a cron run gets the stack\'s secrets, opened on the host that runs it', async () => {
  const api = [...hosts.values()].find((h) => h.child.exitCode === null && h.child.signalCode === null)!;
  const value = `cron-secret-${Date.now()}`;
  const set = await runCli(['secrets', stack, 'set', `CRON_TOKEN=${value}`, '--api', api.api]);
  assert.equal(set.code, 0, `${set.stdout}\n${set.stderr}`);
  const digest = createHash('md5').update(value).digest('hex').slice(0, 8);
  const run = await waitFor('a run that saw the secret', async () => (await runs()).find((r) => r.node === 'tick' && r.logs?.includes(`token ${digest}`)), 30_000, 200);
  assert.equal(run.state, 'succeeded');
  const everything = Object.values(await client.getAll().prefix('').strings()).join('\n');
  assert.ok(!everything.includes(value), 'the value is nowhere in etcd in clear (the cron placement carries it sealed)');
});

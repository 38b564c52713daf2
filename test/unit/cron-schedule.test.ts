/**
 * Cron as plain data: the Vikingfile keys (with line and column), which tick
 * is due when, the forbid/allow decision, history pruning, and the property
 * that makes a tick run once: every instant of a window maps to at most one
 * due tick, and a leader that looks again later finds the same tick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VikingfileError, parseVikingfile, type VikingfileProblem } from '../../lib/vikingfile/index.js';
import { CRON_CATCH_UP_MS, decideTick, dueTick, historyToPrune, nextTick, scheduleProblem, type CronSchedule } from '../../lib/cron/schedule.js';
import { cronNodesOf } from '../../lib/cron/scheduler.js';
import { jobsFromTemplate, nodeTemplate } from '../../lib/rollout/jobs.js';
import { cronRunKey, cronHostKey, parseCronPath, cronRunsPrefix } from '../../lib/store/keys.js';
import type { ContainerNodeSpec } from '../../lib/vikingfile/types.js';
import type { StackRecord } from '../../lib/store/records.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const every5min: CronSchedule = { schedule: '*/5 * * * *', concurrency: 'forbid' };
const every5s: CronSchedule = { schedule: '*/5 * * * * *', concurrency: 'forbid' };

function problemsOf(text: string): VikingfileProblem[] {
  try {
    parseVikingfile(text);
  } catch (e) {
    assert.ok(e instanceof VikingfileError);
    return e.problems;
  }
  return [];
}

const file = (...node: string[]): string => ['viking:', '  name: demo', 'deploy:', '  job:', '    image: viking/node', ...node].join('\n');

test('a cron node parses into the node spec and its release template, and makes no /proc replicas', () => {
  const vf = parseVikingfile(file("    schedule: '*/5 * * * *'", '    timezone: Europe/Oslo', '    concurrency: allow', '    run: echo hi'));
  const node = vf.nodes[0] as ContainerNodeSpec;
  assert.deepEqual(node.cron, { schedule: '*/5 * * * *', timezone: 'Europe/Oslo', concurrency: 'allow' });
  const t = nodeTemplate(node, 'img');
  assert.deepEqual(t.cron, node.cron);
  assert.deepEqual(jobsFromTemplate(t, 'demo', 'v1'), []);
  const plain = parseVikingfile(file("    schedule: '0 3 * * *'")).nodes[0] as ContainerNodeSpec;
  assert.equal(plain.cron?.concurrency, 'forbid');
  assert.equal(plain.cron?.timezone, undefined);
});

const BAD: Array<{ name: string; lines: string[]; expect: Array<[string, number, number, RegExp]> }> = [
  { name: 'not a cron expression', lines: ["    schedule: 'every day'"], expect: [['bad-value', 6, 15, /schedule 'every day' has 2 fields/]] },
  { name: 'a field out of range', lines: ["    schedule: '*/5 25 * * *'"], expect: [['bad-value', 6, 15, /not a cron expression/]] },
  { name: 'seven fields', lines: ["    schedule: '0 0 0 * * * 2027'"], expect: [['bad-value', 6, 15, /has 7 fields/]] },
  { name: 'a number', lines: ['    schedule: 5'], expect: [['wrong-type', 6, 15, /schedule must be a string/]] },
  { name: 'unknown time zone', lines: ["    schedule: '0 * * * *'", '    timezone: Mars/Olympus'], expect: [['bad-value', 7, 15, /not an IANA time zone/]] },
  { name: 'bad concurrency', lines: ["    schedule: '0 * * * *'", '    concurrency: replace'], expect: [['bad-value', 7, 18, /'forbid'.*or 'allow'/]] },
  { name: 'timezone without schedule', lines: ['    timezone: UTC'], expect: [['bad-value', 6, 5, /only applies to a cron job/]] },
  { name: 'concurrency without schedule', lines: ['    concurrency: allow'], expect: [['bad-value', 6, 5, /only applies to a cron job/]] },
  {
    name: 'routed and replicated keys',
    lines: ["    schedule: '0 * * * *'", '    scale: 2', '    expose: 80', '    domains: [a.example.com]', '    volume: /data', '    service: true', '    health: /'],
    expect: [
      ['unknown-key', 7, 5, /not allowed on a cron node.*once per tick/],
      ['unknown-key', 8, 5, /not allowed on a cron node.*not routed/],
      ['unknown-key', 9, 5, /not allowed on a cron node.*not routed/],
      ['unknown-key', 10, 5, /pin the job to one host/],
      ['unknown-key', 11, 5, /runs to completion/],
      ['unknown-key', 12, 5, /exit code/],
    ],
  },
];

for (const c of BAD) {
  test(`Vikingfile cron problem: ${c.name}, at its line and column`, () => {
    const got = problemsOf(file(...c.lines));
    const text = got.map((p) => `${p.kind} ${p.line}:${p.column} ${p.message}`).join('\n');
    assert.equal(got.length, c.expect.length, text);
    c.expect.forEach(([kind, line, column, re], i) => {
      assert.deepEqual([got[i]!.kind, got[i]!.line, got[i]!.column], [kind, line, column], text);
      assert.match(got[i]!.message, re);
    });
  });
}

test('scheduleProblem accepts five and six fields and refuses what never fires', () => {
  assert.equal(scheduleProblem('*/5 * * * *'), undefined);
  assert.equal(scheduleProblem('*/2 * * * * *'), undefined);
  assert.match(scheduleProblem('0 0 30 2 *') ?? '', /never fires|not a cron/);
});

test('nextTick and dueTick: five-minute and five-second schedules, time zones', () => {
  assert.equal(nextTick(every5min, T0), T0 + 5 * 60_000);
  assert.equal(nextTick(every5min, T0 - 1), T0);
  assert.equal(dueTick(every5min, T0, 0), T0, 'due exactly at the tick');
  assert.equal(dueTick(every5min, T0 - 1, 0), undefined, 'not a millisecond before (the last one is > 60 s old)');
  assert.equal(dueTick(every5min, T0 + 59_000, 0), T0, 'still due 59 s late (a failover)');
  assert.equal(dueTick(every5min, T0 + CRON_CATCH_UP_MS + 1, 0), undefined, 'too late: skipped, never run in a burst');
  assert.equal(dueTick(every5min, T0 + 1000, T0 + 500), undefined, 'a tick before the release that declared the node is not run');
  assert.equal(dueTick(every5s, T0 + 7000, 0), T0 + 5000, 'the latest of several ticks in the window');
  const oslo: CronSchedule = { schedule: '0 9 * * *', timezone: 'Europe/Oslo', concurrency: 'forbid' };
  assert.equal(new Date(nextTick(oslo, Date.parse('2026-06-01T00:00:00Z'))!).toISOString(), '2026-06-01T07:00:00.000Z');
  assert.equal(new Date(nextTick(oslo, Date.parse('2026-12-01T00:00:00Z'))!).toISOString(), '2026-12-01T08:00:00.000Z');
});

test('property: the due tick is a real tick, at or before now, within the window, and stable while no new tick comes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 0, max: 4_000 }), fc.constantFrom(every5s, every5min, { schedule: '*/7 * * * * *', concurrency: 'allow' as const }), (offset, later, s) => {
      const now = T0 + offset;
      const due = dueTick(s, now, 0);
      if (due === undefined) return;
      assert.ok(due <= now && now - due <= CRON_CATCH_UP_MS);
      assert.equal(nextTick(s, due - 1), due, 'a tick of the schedule');
      // A second leader looking a little later sees the same tick unless the next one has come.
      const again = dueTick(s, now + later, 0);
      const next = nextTick(s, due)!;
      if (now + later < next) assert.equal(again, now + later - due <= CRON_CATCH_UP_MS ? due : undefined);
      else assert.ok(again === undefined || again >= next);
    }),
    { numRuns: 300 },
  );
});

test('decideTick: forbid skips while a run goes on, allow always runs', () => {
  assert.deepEqual(decideTick('forbid', []), { action: 'run' });
  const d = decideTick('forbid', [{ tick: T0 }]);
  assert.equal(d.action, 'skip');
  assert.match((d as { reason: string }).reason, /still going/);
  assert.deepEqual(decideTick('allow', [{ tick: T0 }]), { action: 'run' });
});

test('historyToPrune keeps the newest finished runs, every unfinished one and every claim inside the catch-up window', () => {
  const runs = Array.from({ length: 30 }, (_, i) => ({ tick: T0 + i * 60_000, finished: i !== 3 }));
  const now = T0 + 30 * 60_000;
  const pruned = historyToPrune(runs, now, 20);
  assert.equal(pruned.length, 9);
  assert.ok(pruned.every((r) => r.finished && r.tick < T0 + 10 * 60_000));
  const young = [{ tick: now - 1000, finished: true }, { tick: now - 2 * CRON_CATCH_UP_MS + 1, finished: true }];
  assert.deepEqual(historyToPrune(young, now, 0), [], 'claims younger than twice the catch-up window are never pruned');
});

test('cron keys sort by tick and parse back; names cannot reach another key', () => {
  const a = cronRunKey('s', 'n', 999), b = cronRunKey('s', 'n', 1_000_000_000_000);
  assert.ok(a < b);
  assert.deepEqual(parseCronPath(b.slice(cronRunsPrefix.length)), { stack: 's', node: 'n', tick: 1_000_000_000_000 });
  assert.equal(parseCronPath('s/n/12'), null);
  assert.equal(parseCronPath('s/n/x/000000000000001'), null);
  assert.ok(cronHostKey('h', 's', 'n', 5).startsWith('/cron/host/h/s/n/'));
});

test('cronNodesOf: only the live release\'s cron nodes, with the stack env and the release time', () => {
  const t = { ...nodeTemplate(parseVikingfile(file("    schedule: '* * * * *'")).nodes[0] as ContainerNodeSpec, 'img') };
  const web = { ...t, node: 'web', cron: undefined };
  const stack: StackRecord = {
    name: 'demo', current: 'v2', lastRelease: 2, domains: {}, websites: {}, env: { A: '1' },
    releases: [
      { tag: 'v1', number: 1, at: '2026-11-30T10:00:00Z', by: 'x', images: {}, source: '', builtOn: '', nodes: { job: t } },
      { tag: 'v2', number: 2, at: '2026-11-30T11:00:00Z', by: 'x', images: {}, source: '', builtOn: '', nodes: { job: t, web } },
    ],
  };
  const nodes = cronNodesOf([stack, { ...stack, name: 'idle', current: null }]);
  assert.deepEqual(nodes.map((n) => [n.stack, n.node, n.tag, n.notBefore, n.env.A]), [['demo', 'job', 'v2', Date.parse('2026-11-30T11:00:00Z'), '1']]);
});

/**
 * Spread restored: placeJobs prefers a host that came back (or joined) for
 * new replicas, and planRebalance moves placed replicas so each node is
 * spread again and load evens out. Table cases, then fast-check properties:
 * a volume job never moves, spread never gets worse, no target is draining
 * or over capacity, and planning again after applying the moves gives none.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyMoves, colocatedPairs, placeJobs, planRebalance, type BalanceHost, type BalanceJob, type Move } from '../../lib/dowding/index.js';

const UNLIMITED = { memory: 0, cpu: 0, containers: 0 };

function host(name: string, jobs: BalanceJob[] = [], over: Partial<BalanceHost> = {}): BalanceHost {
  return { name, tags: [], capacity: { ...UNLIMITED }, draining: false, jobs, ...over };
}

function job(id: string, over: Partial<BalanceJob> = {}): BalanceJob {
  const [stack = 's', , node = 'web'] = id.split('/');
  return { id, stack, node, memory: 0, cpu: 0, tags: [], prefer: [], ...over };
}

const web = (n: number, over: Partial<BalanceJob> = {}): BalanceJob => job(`s/t1/web/${n}`, over);
const moved = (moves: Move[]): string[] => moves.map((m) => `${m.job.id}:${m.from}->${m.to}`);

describe('new placements use a host that came back', () => {
  const cases: Array<[string, BalanceHost[], BalanceJob[], Record<string, string>]> = [
    ['the replacement of a lost replica goes to the empty returning host, not beside a sibling',
      [host('a', [web(1)]), host('b', [web(2)]), host('c')], [web(3)], { 's/t1/web/3': 'c' }],
    ['scale 3 -> 6 after two hosts joined an all-on-one cluster: new replicas fill the new hosts',
      [host('a', [web(1), web(2), web(3)]), host('b'), host('c')], [web(4), web(5), web(6)], { 's/t1/web/4': 'b', 's/t1/web/5': 'c', 's/t1/web/6': 'b' }],
    ['a new host with no jobs is least loaded for another stack too',
      [host('a', [job('o/t/api/1'), job('o/t/db/1')]), host('b', [job('o/t/api/2')]), host('new')], [job('n/t/x/1')], { 'n/t/x/1': 'new' }],
    ['a returning host that is draining still gets nothing',
      [host('a', [web(1)]), host('b', [], { draining: true })], [web(2)], { 's/t1/web/2': 'a' }],
  ];
  for (const [name, hosts, jobs, expected] of cases) {
    test(name, () => {
      const plan = placeJobs({ hosts }, jobs);
      assert.deepEqual(Object.fromEntries(plan.placements.map((p) => [p.job.id, p.host])), expected);
    });
  }
});

describe('planRebalance', () => {
  const cases: Array<[string, BalanceHost[], string[]]> = [
    ['scale 3 piled on one host, two empty hosts: one move to each',
      [host('a', [web(1), web(2), web(3)]), host('b'), host('c')], ['s/t1/web/1:a->b', 's/t1/web/2:a->c']],
    ['already spread: nothing moves', [host('a', [web(1)]), host('b', [web(2)]), host('c', [web(3)])], []],
    ['two replicas on two hosts of three: spread is fine, load 1/1/0 is even enough', [host('a', [web(1)]), host('b', [web(2)]), host('c')], []],
    ['a volume job never moves, even piled', [host('a', [web(1, { pinnedTo: 'a' }), web(2, { pinnedTo: 'a' })]), host('b')], []],
    ['a fixed (not running) job stays; its running sibling moves',
      [host('a', [web(1, { fixed: true }), web(2)]), host('b')], ['s/t1/web/2:a->b']],
    ['a draining host takes nothing', [host('a', [web(1), web(2)]), host('b', [], { draining: true })], []],
    ['jobs on a draining host are left to dispatch', [host('a', [], {}), host('b', [web(1), web(2)], { draining: true })], []],
    ['a full host takes nothing', [host('a', [web(1), web(2)]), host('b', [job('o/t/x/1', { pinnedTo: 'b' })], { capacity: { memory: 0, cpu: 0, containers: 1 } })], []],
    ['a host without a required tag takes nothing', [host('a', [web(1, { tags: ['ssd'] }), web(2, { tags: ['ssd'] })]), host('b')], []],
    ['load evens out across nodes: 4 singletons on one host, one empty host',
      [host('a', [job('s/t/a/1'), job('s/t/b/1'), job('s/t/c/1'), job('s/t/d/1')]), host('b')], ['s/t/a/1:a->b', 's/t/b/1:a->b']],
    ['load never moves a replica beside a sibling',
      [host('a', [job('s/t/a/1'), job('s/t/b/1'), job('s/t/c/1')]), host('b', [job('s/t/a/2'), job('s/t/b/2'), job('s/t/c/2')]), host('c', [job('s/t/a/3'), job('s/t/b/3'), job('s/t/c/3')])], []],
    ['two releases of one node spread apart from each other (only the same release counts as siblings)',
      [host('a', [job('s/t1/web/1'), job('s/t2/web/1')]), host('b', [job('s/t1/web/2'), job('s/t2/web/2')])], []],
  ];
  for (const [name, hosts, expected] of cases) {
    test(name, () => {
      const moves = planRebalance(hosts);
      assert.deepEqual(moved(moves), expected);
      assert.deepEqual(planRebalance(applyMoves(hosts, moves)), [], 'planning again after the moves gives none');
    });
  }

  test('maxMoves stops the plan early, in the same order', () => {
    const hosts = [host('a', [web(1), web(2), web(3), web(4)]), host('b'), host('c'), host('d')];
    const all = planRebalance(hosts);
    assert.equal(all.length, 3);
    assert.deepEqual(moved(planRebalance(hosts, { maxMoves: 2 })), moved(all.slice(0, 2)));
  });
});

// ---- properties ------------------------------------------------------------

const TAGS = ['ssd', 'eu'];
const worldArb = fc
  .array(
    fc.record({
      tags: fc.subarray(TAGS),
      containers: fc.integer({ min: 0, max: 6 }),
      memory: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 }).map((n) => n * 256)),
      draining: fc.boolean(),
      jobs: fc.array(
        fc.record({
          stack: fc.constantFrom('s', 'o'),
          node: fc.constantFrom('web', 'api', 'db'),
          memory: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 8 }).map((n) => n * 256)),
          tag: fc.option(fc.constantFrom(...TAGS), { nil: undefined, freq: 3 }),
          pinned: fc.integer({ min: 0, max: 5 }),
          fixed: fc.integer({ min: 0, max: 7 }),
        }),
        { maxLength: 7 },
      ),
    }),
    { minLength: 1, maxLength: 7 },
  )
  .map((hosts) => {
    let n = 0;
    return hosts.map((h, i): BalanceHost => {
      const name = `h${i}`;
      return {
        name,
        tags: h.tags,
        capacity: { memory: h.memory, cpu: 0, containers: h.containers },
        draining: h.draining,
        jobs: h.jobs.map((j) => {
          const bj = job(`${j.stack}/t/${j.node}/${++n}`, { memory: j.memory, ...(j.tag ? { tags: [j.tag] } : {}) });
          if (j.pinned === 0) bj.pinnedTo = name;
          if (j.fixed === 0) bj.fixed = true;
          return bj;
        }),
      };
    });
  });

describe('planRebalance properties', () => {
  test('never moves a volume or fixed job; never onto a draining host, off one, or against a filter', () => {
    fc.assert(
      fc.property(worldArb, (hosts) => {
        const moves = planRebalance(hosts);
        const draining = new Set(hosts.filter((h) => h.draining).map((h) => h.name));
        for (const m of moves) {
          assert.equal(m.job.pinnedTo, undefined);
          assert.notEqual(m.job.fixed, true);
          assert.ok(!draining.has(m.to) && !draining.has(m.from));
          assert.notEqual(m.from, m.to);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('never makes spread worse, each move included; never fills a host past what it had room for', () => {
    fc.assert(
      fc.property(worldArb, (hosts) => {
        let world = hosts;
        const caps = new Map(hosts.map((h) => [h.name, h.capacity]));
        const before = new Map(hosts.map((h) => [h.name, h.jobs.length]));
        for (const m of planRebalance(hosts)) {
          const next = applyMoves(world, [m]);
          assert.ok(colocatedPairs(next) <= colocatedPairs(world), `move ${m.job.id} ${m.from}->${m.to} made spread worse`);
          world = next;
          const target = world.find((h) => h.name === m.to)!;
          const cap = caps.get(m.to)!;
          if (cap.containers > 0) assert.ok(target.jobs.length <= Math.max(cap.containers, before.get(m.to)!), `${m.to} over its container slots`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('idempotent: planning again after applying the moves gives no moves; every job is still placed once', () => {
    fc.assert(
      fc.property(worldArb, (hosts) => {
        const moves = planRebalance(hosts);
        const after = applyMoves(hosts, moves);
        assert.deepEqual(planRebalance(after), []);
        const ids = (w: BalanceHost[]): string[] => w.flatMap((h) => h.jobs.map((j) => j.id)).sort();
        assert.deepEqual(ids(after), ids(hosts));
      }),
      { numRuns: 300 },
    );
  });

  test('deterministic: the same input gives the same plan', () => {
    fc.assert(fc.property(worldArb, (hosts) => assert.deepEqual(moved(planRebalance(hosts)), moved(planRebalance(structuredClone(hosts))))), { numRuns: 100 });
  });
});

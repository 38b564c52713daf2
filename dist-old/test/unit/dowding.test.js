/**
 * dowding, the pure planner: table tests for each filter and scorer as seen
 * through placeJobs, and fast-check properties for the plan invariants.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { placeJobs, summariseReasons } from '../../lib/dowding/index.js';
const UNLIMITED = { memory: 0, cpu: 0, containers: 0 };
function host(name, over = {}) {
    return { name, tags: [], capacity: { ...UNLIMITED }, draining: false, jobs: [], ...over };
}
function job(id, over = {}) {
    const [stack = 's', , node = 'web'] = id.split('/');
    return { id, stack, node, memory: 0, cpu: 0, tags: [], prefer: [], ...over };
}
/** `n` replicas of one node: s/t1/<node>/1..n */
const replicas = (node, n, over = {}) => Array.from({ length: n }, (_, i) => job(`s/t1/${node}/${i + 1}`, over));
const hostOf = (plan, id) => plan.placements.find((p) => p.job.id === id)?.host;
const countBy = (xs) => {
    const m = new Map();
    for (const x of xs)
        m.set(x, (m.get(x) ?? 0) + 1);
    return m;
};
describe('summariseReasons', () => {
    const cases = [
        ['no hosts', [], 0, ['no hosts are up']],
        ['one host', ['draining'], 1, ['1 host: draining']],
        ['grouped, most common first', ['not enough memory', 'missing tag ssd', 'not enough memory'], 3, ['2 hosts: not enough memory', '1 host: missing tag ssd']],
        ['ties sorted by reason', ['b', 'a'], 2, ['1 host: a', '1 host: b']],
    ];
    for (const [name, rejections, count, expected] of cases) {
        test(name, () => assert.deepEqual(summariseReasons(rejections, count), expected));
    }
});
describe('placeJobs tables', () => {
    test('least loaded host is chosen first', () => {
        const cap = { memory: 1000, cpu: 4, containers: 10 };
        const snap = {
            hosts: [
                host('a', { capacity: cap, jobs: [job('o/t/x/1', { memory: 600 })] }),
                host('b', { capacity: cap, jobs: [job('o/t/x/2', { memory: 100 })] }),
                host('c', { capacity: cap, jobs: [job('o/t/x/3', { cpu: 3 })] }),
            ],
        };
        const plan = placeJobs(snap, [job('s/t1/web/1')]);
        assert.equal(hostOf(plan, 's/t1/web/1'), 'b');
    });
    test('existing jobs on hosts count toward load (containers)', () => {
        const cap = { memory: 0, cpu: 0, containers: 4 };
        const snap = {
            hosts: [
                host('a', { capacity: cap, jobs: [job('o/t/x/1'), job('o/t/x/2')] }),
                host('b', { capacity: cap, jobs: [job('o/t/y/1')] }),
            ],
        };
        const plan = placeJobs(snap, [job('s/t1/web/1')]);
        assert.equal(hostOf(plan, 's/t1/web/1'), 'b');
        // A full host takes nothing, whatever its name order.
        const full = placeJobs({ hosts: [host('a', { capacity: { ...cap, containers: 2 }, jobs: [job('o/t/x/1'), job('o/t/x/2')] }), host('z')] }, [job('s/t1/web/1')]);
        assert.equal(hostOf(full, 's/t1/web/1'), 'z');
    });
    const spreadCases = [
        // [scale, hosts, max replicas on one host]
        [3, 3, 1],
        [4, 3, 2],
        [6, 3, 2],
        [2, 5, 1],
    ];
    for (const [scale, nHosts, maxPer] of spreadCases) {
        test(`spread: scale ${scale} over ${nHosts} hosts -> at most ${maxPer} per host`, () => {
            const hosts = Array.from({ length: nHosts }, (_, i) => host(`h${i}`));
            const plan = placeJobs({ hosts }, replicas('web', scale));
            assert.equal(plan.placements.length, scale);
            const per = countBy(plan.placements.map((p) => p.host));
            assert.equal(Math.max(...per.values()), maxPer);
            assert.equal(per.size, Math.min(scale, nHosts));
        });
    }
    test('spread is per release: replicas of an older release (about to retire) do not crowd the new one', () => {
        const snap = { hosts: [host('a', { jobs: [job('s/t1/web/1'), job('s/t1/web/2')] }), host('b')] };
        const plan = placeJobs(snap, [job('s/t2/web/1'), job('s/t2/web/2')]);
        assert.deepEqual(new Set([hostOf(plan, 's/t2/web/1'), hostOf(plan, 's/t2/web/2')]), new Set(['a', 'b']));
    });
    test('spread beats least loaded: a sibling replica costs more than load', () => {
        const cap = { memory: 1000, cpu: 0, containers: 0 };
        const snap = { hosts: [host('a', { capacity: cap }), host('b', { capacity: cap, jobs: [job('o/t/x/1', { memory: 900 })] })] };
        const plan = placeJobs(snap, replicas('web', 2));
        assert.deepEqual(plan.placements.map((p) => p.host).sort(), ['a', 'b']);
    });
    test('hard tags filter with a reason', () => {
        const snap = { hosts: [host('a', { tags: ['hdd'] }), host('b'), host('c', { tags: ['ssd', 'gpu'] })] };
        const ok = placeJobs(snap, [job('s/t1/db/1', { tags: ['ssd'] })]);
        assert.equal(hostOf(ok, 's/t1/db/1'), 'c');
        const none = placeJobs(snap, [job('s/t1/db/1', { tags: ['nvme'] })]);
        assert.equal(none.placements.length, 0);
        assert.deepEqual(none.unplaced[0]?.reasons, ['3 hosts: missing tag nvme']);
    });
    test('preferred tags only nudge', () => {
        const snap = { hosts: [host('a'), host('b', { tags: ['ssd'] })] };
        assert.equal(hostOf(placeJobs(snap, [job('s/t1/db/1', { prefer: ['ssd'] })]), 's/t1/db/1'), 'b');
        // Only host without the preferred tag: still placed.
        const only = placeJobs({ hosts: [host('a')] }, [job('s/t1/db/1', { prefer: ['ssd'] })]);
        assert.equal(hostOf(only, 's/t1/db/1'), 'a');
        // Spread outweighs a preference: the second replica goes to the untagged host.
        const two = placeJobs(snap, replicas('db', 2, { prefer: ['ssd'] }));
        assert.deepEqual(two.placements.map((p) => p.host).sort(), ['a', 'b']);
    });
    const capacityCases = [
        {
            name: 'memory',
            hosts: [host('a', { capacity: { memory: 100, cpu: 0, containers: 0 } }), host('b', { capacity: { memory: 150, cpu: 0, containers: 0 } })],
            jobs: replicas('web', 3, { memory: 100 }),
            placed: 2,
            reasons: ['2 hosts: not enough memory'],
        },
        {
            name: 'cpu',
            hosts: [host('a', { capacity: { memory: 0, cpu: 1, containers: 0 } }), host('b', { capacity: { memory: 0, cpu: 1, containers: 0 } })],
            jobs: replicas('web', 5, { cpu: 0.5 }),
            placed: 4,
            reasons: ['2 hosts: not enough cpu'],
        },
        {
            name: 'containers',
            hosts: [host('a', { capacity: { memory: 0, cpu: 0, containers: 1 } }), host('b', { capacity: { memory: 0, cpu: 0, containers: 2 } })],
            jobs: replicas('web', 4),
            placed: 3,
            reasons: ['2 hosts: no container slots left'],
        },
        {
            name: 'mixed reasons, grouped',
            hosts: [
                host('a', { capacity: { memory: 50, cpu: 0, containers: 0 } }),
                host('b', { capacity: { memory: 50, cpu: 0, containers: 0 } }),
                host('c', { tags: [] }),
                host('d', { draining: true, tags: ['ssd'] }),
            ],
            jobs: [job('s/t1/db/1', { memory: 100, tags: ['ssd'] })],
            placed: 0,
            reasons: ['3 hosts: missing tag ssd', '1 host: draining'],
        },
    ];
    for (const c of capacityCases) {
        test(`capacity respected: ${c.name}`, () => {
            const plan = placeJobs({ hosts: c.hosts }, c.jobs);
            assert.equal(plan.placements.length, c.placed);
            assert.equal(plan.unplaced.length, c.jobs.length - c.placed);
            for (const u of plan.unplaced)
                assert.deepEqual(u.reasons, c.reasons);
        });
    }
    test('draining hosts take nothing', () => {
        const plan = placeJobs({ hosts: [host('a', { draining: true }), host('b')] }, replicas('web', 3));
        assert.deepEqual(plan.placements.map((p) => p.host), ['b', 'b', 'b']);
        const none = placeJobs({ hosts: [host('a', { draining: true })] }, [job('s/t1/web/1')]);
        assert.deepEqual(none.unplaced[0]?.reasons, ['1 host: draining']);
    });
    test('pinnedTo is honoured', () => {
        const hosts = [host('a'), host('b'), host('c')];
        const plan = placeJobs({ hosts }, replicas('db', 2, { pinnedTo: 'c' }));
        assert.deepEqual(plan.placements.map((p) => p.host), ['c', 'c']);
        const gone = placeJobs({ hosts }, [job('s/t1/db/1', { pinnedTo: 'x' })]);
        assert.deepEqual(gone.unplaced[0]?.reasons, ['3 hosts: volume pinned to host x']);
    });
    test('no hosts -> no hosts are up', () => {
        const plan = placeJobs({ hosts: [] }, [job('s/t1/web/1'), job('s/t1/web/2')]);
        assert.equal(plan.placements.length, 0);
        assert.deepEqual(plan.unplaced.map((u) => u.reasons), [['no hosts are up'], ['no hosts are up']]);
    });
});
// ---- properties ------------------------------------------------------------
const TAGS = ['ssd', 'gpu', 'eu'];
const tagsArb = fc.subarray(TAGS);
const capArb = fc.record({
    memory: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }).map((n) => n * 128)),
    cpu: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 }).map((n) => n * 0.25)),
    containers: fc.integer({ min: 0, max: 8 }),
});
const jobFields = fc.record({
    node: fc.constantFrom('web', 'api', 'db', 'worker'),
    memory: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 }).map((n) => n * 128)),
    cpu: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 8 }).map((n) => n * 0.25)),
    tags: fc.subarray(TAGS, { maxLength: 1 }),
    prefer: tagsArb,
    pin: fc.option(fc.integer({ min: 0, max: 21 }), { nil: undefined, freq: 4 }),
});
const worldArb = fc
    .record({
    hosts: fc.array(fc.record({ tags: tagsArb, capacity: capArb, draining: fc.boolean(), existing: fc.array(jobFields, { maxLength: 3 }) }), { minLength: 1, maxLength: 20 }),
    jobs: fc.array(jobFields, { maxLength: 60 }),
})
    .map(({ hosts, jobs }) => {
    const planHosts = hosts.map((h, i) => ({
        name: `h${String(i).padStart(2, '0')}`,
        tags: h.tags,
        capacity: h.capacity,
        draining: h.draining,
        jobs: h.existing.map((e, k) => job(`o/t/${e.node}/${i * 10 + k + 1}`, { memory: e.memory, cpu: e.cpu })),
    }));
    const planJobs = jobs.map((j, i) => {
        const pj = job(`s/t1/${j.node}/${i + 1}`, { memory: j.memory, cpu: j.cpu, tags: j.tags, prefer: j.prefer });
        if (j.pin !== undefined)
            pj.pinnedTo = `h${String(j.pin).padStart(2, '0')}`;
        return pj;
    });
    return { snapshot: { hosts: planHosts }, jobs: planJobs };
});
describe('placeJobs properties', () => {
    test('never over any capacity dimension', () => {
        fc.assert(fc.property(worldArb, ({ snapshot, jobs }) => {
            const plan = placeJobs(snapshot, jobs);
            const used = new Map(snapshot.hosts.map((h) => [h.name, {
                    memory: h.jobs.reduce((s, j) => s + j.memory, 0),
                    cpu: h.jobs.reduce((s, j) => s + j.cpu, 0),
                    containers: h.jobs.length,
                }]));
            const caps = new Map(snapshot.hosts.map((h) => [h.name, h.capacity]));
            for (const p of plan.placements) {
                const u = used.get(p.host);
                const cap = caps.get(p.host);
                u.memory += p.job.memory;
                u.cpu += p.job.cpu;
                u.containers += 1;
                if (cap.containers > 0)
                    assert.ok(u.containers <= cap.containers, `${p.host} containers ${u.containers} > ${cap.containers}`);
                if (cap.memory > 0 && p.job.memory > 0)
                    assert.ok(u.memory <= cap.memory, `${p.host} memory ${u.memory} > ${cap.memory}`);
                if (cap.cpu > 0 && p.job.cpu > 0)
                    assert.ok(u.cpu <= cap.cpu + 1e-9, `${p.host} cpu ${u.cpu} > ${cap.cpu}`);
            }
            // Placements only on live, non-draining hosts carrying the required tags.
            for (const p of plan.placements) {
                const h = snapshot.hosts.find((x) => x.name === p.host);
                assert.equal(h.draining, false);
                for (const t of p.job.tags)
                    assert.ok(h.tags.includes(t));
            }
        }), { numRuns: 200 });
    });
    test('pinned jobs are only placed on their pin', () => {
        fc.assert(fc.property(worldArb, ({ snapshot, jobs }) => {
            for (const p of placeJobs(snapshot, jobs).placements)
                if (p.job.pinnedTo !== undefined)
                    assert.equal(p.host, p.job.pinnedTo);
        }), { numRuns: 200 });
    });
    test('every job is placed or unplaced exactly once, with reasons when unplaced', () => {
        fc.assert(fc.property(worldArb, ({ snapshot, jobs }) => {
            const plan = placeJobs(snapshot, jobs);
            const seen = [...plan.placements.map((p) => p.job.id), ...plan.unplaced.map((u) => u.job.id)].sort();
            assert.deepEqual(seen, jobs.map((j) => j.id).sort());
            for (const u of plan.unplaced)
                assert.ok(u.reasons.length > 0);
        }), { numRuns: 200 });
    });
    test('deterministic: same input, and shuffled hosts/jobs, give a deep-equal plan', () => {
        fc.assert(fc.property(worldArb, fc.infiniteStream(fc.nat()), ({ snapshot, jobs }, rand) => {
            const plan = placeJobs(snapshot, jobs);
            assert.deepEqual(placeJobs(structuredClone(snapshot), structuredClone(jobs)), plan);
            const shuffle = (xs) => {
                const out = [...xs];
                const it = rand[Symbol.iterator]();
                for (let i = out.length - 1; i > 0; i--) {
                    const k = it.next().value % (i + 1);
                    [out[i], out[k]] = [out[k], out[i]];
                }
                return out;
            };
            assert.deepEqual(placeJobs({ hosts: shuffle(snapshot.hosts) }, shuffle(jobs)), plan);
        }), { numRuns: 200 });
    });
    test('spread: scale <= eligible unlimited hosts -> no host gets 2 replicas', () => {
        fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(tagsArb, { minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 20 }), tagsArb, fc.array(fc.constantFrom('api', 'worker'), { maxLength: 30 }), (nHosts, hostTags, scaleRaw, prefer, others) => {
            const hosts = Array.from({ length: nHosts }, (_, i) => host(`h${String(i).padStart(2, '0')}`, { tags: hostTags[i] ?? [] }));
            const scale = Math.min(scaleRaw, nHosts);
            const jobs = [...replicas('web', scale, { prefer }), ...others.map((n, i) => job(`s/t1/${n}/${i + 1}`, { prefer }))];
            const plan = placeJobs({ hosts }, jobs);
            const web = plan.placements.filter((p) => p.job.node === 'web').map((p) => p.host);
            assert.equal(web.length, scale);
            assert.equal(new Set(web).size, scale, `replicas doubled up: ${web.join(',')}`);
        }), { numRuns: 200 });
    });
});
//# sourceMappingURL=dowding.test.js.map
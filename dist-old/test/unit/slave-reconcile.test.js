/**
 * The slave's pure decisions (planSlave, afterFailure) and the pure helpers
 * of containers.ts (specHash, names, log demultiplexing).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { afterFailure, planSlave, MAX_FAILURES } from '../../lib/slave/reconcile.js';
import { containerName, demuxLogs, specHash, volumeName } from '../../lib/slave/containers.js';
import { jobPath } from '../../lib/store/keys.js';
const NOW = 1_000_000;
function jobId(n, node = 'web') {
    return { stack: 's', tag: 't1', node, instance: n };
}
function spec(n, over = {}) {
    return {
        ...jobId(n),
        image: 'registry/s/web:t1', expose: [80], volumes: [], env: { A: '1' }, service: true, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2,
        ...over,
    };
}
function desired(n, s = spec(n)) {
    return { job: jobId(n), spec: s, hash: specHash(s) };
}
/** /deploy still names the job but /proc has no spec any more. */
const specless = (n) => ({ job: jobId(n), spec: undefined, hash: specHash(spec(n)) });
function container(n, over = {}) {
    return { id: `c${n}`, name: `viking-h-s-t1-web-${n}`, job: jobId(n), specHash: specHash(spec(n)), running: true, ports: new Map([[80, 32768 + n]]), ...over };
}
function view(over) {
    return { desired: [], actual: [], published: new Set(), busy: new Set(), memory: new Map(), now: NOW, ...over };
}
/** Compact form of the actions: 'start s/t1/web/1', 'remove c1 outdated', ... */
function summary(actions) {
    return actions
        .map((a) => {
        switch (a.type) {
            case 'start': return `start ${jobPath(a.spec)}`;
            case 'publish': return `publish ${a.container.id}`;
            case 'crashed': return `crashed ${a.container.id}`;
            case 'remove': return `remove ${a.container.id} ${a.why}`;
        }
    })
        .sort();
}
const P1 = jobPath(jobId(1));
/** Published sets hold container ids. */
const C1 = 'c1';
describe('planSlave', () => {
    const cases = [
        { name: 'nothing desired, nothing running', view: view({}), expected: [] },
        { name: 'missing container -> start', view: view({ desired: [desired(1)] }), expected: ['start s/t1/web/1'] },
        { name: 'running, unpublished -> publish', view: view({ desired: [desired(1)], actual: [container(1)] }), expected: ['publish c1'] },
        { name: 'running and published -> nothing', view: view({ desired: [desired(1)], actual: [container(1)], published: new Set([C1]) }), expected: [] },
        { name: 'not running -> crashed', view: view({ desired: [desired(1)], actual: [container(1, { running: false })], published: new Set([C1]) }), expected: ['crashed c1'] },
        {
            name: 'spec hash changed -> start the new one, the old keeps serving',
            view: view({ desired: [desired(1, spec(1, { image: 'registry/s/web:t2' }))], actual: [container(1)], published: new Set([C1]) }),
            expected: ['start s/t1/web/1'],
        },
        {
            name: 'spec hash changed and the old one is dead -> remove it and start',
            view: view({ desired: [desired(1, spec(1, { image: 'registry/s/web:t2' }))], actual: [container(1, { running: false })] }),
            expected: ['remove c1 outdated', 'start s/t1/web/1'],
        },
        {
            name: 'new container running but not yet published -> publish it, keep the old',
            view: view({ desired: [desired(1)], actual: [container(1, { id: 'old', specHash: 'deadbeef' }), container(1)], published: new Set(['old']) }),
            expected: ['publish c1'],
        },
        {
            name: 'new container published -> the old one is removed',
            view: view({ desired: [desired(1)], actual: [container(1, { id: 'old', specHash: 'deadbeef' }), container(1)], published: new Set(['old', C1]) }),
            expected: ['remove old outdated'],
        },
        { name: 'container of a job not desired -> remove unwanted', view: view({ actual: [container(7)] }), expected: ['remove c7 unwanted'] },
        {
            name: 'busy jobs are untouched (desired and unwanted)',
            view: view({ desired: [desired(1), desired(2)], actual: [container(2, { running: false }), container(9)], busy: new Set([P1, jobPath(jobId(2)), jobPath(jobId(9))]) }),
            expected: [],
        },
        {
            name: 'spec undefined -> keep the container, start nothing',
            view: view({ desired: [specless(1), specless(2)], actual: [container(1, { running: false })] }),
            expected: [],
        },
        {
            name: 'backoff: retryAt in the future -> no start',
            view: view({ desired: [desired(1)], memory: new Map([[P1, { failures: 2, retryAt: NOW + 1, failed: false }]]) }),
            expected: [],
        },
        {
            name: 'backoff: retryAt reached -> start',
            view: view({ desired: [desired(1)], memory: new Map([[P1, { failures: 2, retryAt: NOW, failed: false }]]) }),
            expected: ['start s/t1/web/1'],
        },
        {
            name: 'failed -> no start even after retryAt',
            view: view({ desired: [desired(1)], memory: new Map([[P1, { failures: 5, retryAt: 0, failed: true }]]) }),
            expected: [],
        },
        {
            name: 'failed memory keeps an outdated container serving (the new spec never came up)',
            view: view({ desired: [desired(1)], actual: [container(1, { specHash: 'old' })], memory: new Map([[P1, { failures: 5, retryAt: 0, failed: true }]]) }),
            expected: [],
        },
        {
            name: 'mixed host: each job judged on its own',
            view: view({
                desired: [desired(1), desired(2), desired(3)],
                actual: [container(1), container(2, { running: false }), container(4)],
                published: new Set([C1]),
            }),
            expected: ['crashed c2', 'remove c4 unwanted', 'start s/t1/web/3'],
        },
    ];
    for (const c of cases)
        test(c.name, () => assert.deepEqual(summary(planSlave(c.view)), c.expected));
    test('start and publish carry the desired spec', () => {
        const s = spec(1, { env: { B: '2' } });
        const [start] = planSlave(view({ desired: [desired(1, s)] }));
        assert.deepEqual(start, { type: 'start', spec: s });
        const c = container(1, { specHash: specHash(s) });
        const [pub] = planSlave(view({ desired: [desired(1, s)], actual: [c] }));
        assert.deepEqual(pub, { type: 'publish', spec: s, container: c });
    });
});
describe('afterFailure', () => {
    test('delay doubles from 1 s, capped at 30 s; failed at the 5th failure', () => {
        const expected = [
            [1, 1000, false], [2, 2000, false], [3, 4000, false], [4, 8000, false], [5, 16000, true],
        ];
        let mem;
        for (const [failures, delay, failed] of expected) {
            mem = afterFailure(mem, NOW);
            assert.deepEqual(mem, { failures, retryAt: NOW + delay, failed });
        }
        assert.equal(MAX_FAILURES, 5);
    });
    test('cap at 30 s with a higher failure limit', () => {
        const delays = [];
        let mem;
        for (let i = 0; i < 8; i++) {
            mem = afterFailure(mem, NOW, 100);
            delays.push(mem.retryAt - NOW);
            assert.equal(mem.failed, false);
        }
        assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    });
    test('custom limit', () => {
        assert.equal(afterFailure(undefined, 0, 1).failed, true);
        assert.equal(afterFailure({ failures: 1, retryAt: 0, failed: false }, 0, 3).failed, false);
        assert.equal(afterFailure({ failures: 2, retryAt: 0, failed: false }, 0, 3).failed, true);
    });
});
describe('specHash', () => {
    test('stable under env key order', () => {
        assert.equal(specHash(spec(1, { env: { A: '1', B: '2' } })), specHash(spec(1, { env: { B: '2', A: '1' } })));
    });
    test('is a 16-hex-digit string', () => assert.match(specHash(spec(1)), /^[0-9a-f]{16}$/));
    const changes = [
        ['image', { image: 'registry/s/web:t2' }],
        ['env value', { env: { A: '2' } }],
        ['env key added', { env: { A: '1', B: '1' } }],
        ['run', { run: 'node server.js' }],
        ['expose', { expose: [8080] }],
        ['volumes', { volumes: ['/data'] }],
        ['memory', { memory: 1 }],
        ['cpu', { cpu: 1 }],
        ['health', { health: { path: '/up' } }],
    ];
    for (const [what, over] of changes)
        test(`changes when ${what} changes`, () => assert.notEqual(specHash(spec(1, over)), specHash(spec(1))));
    test('does not change with instance, tag or scale (placement, not content)', () => {
        assert.equal(specHash(spec(2, { tag: 't9', scale: 7 })), specHash(spec(1)));
    });
});
describe('names', () => {
    test('containerName', () => {
        assert.equal(containerName('h1', { stack: 'shop', tag: 't3', node: 'web', instance: 2 }, '0123456789abcdef'), 'viking-h1-shop-t3-web-2-01234567');
    });
    const vols = [
        ['/data', 'viking-s-db-data'],
        ['/var/lib/postgresql/data', 'viking-s-db-var-lib-postgresql-data'],
        ['/data/', 'viking-s-db-data'],
        ['/', 'viking-s-db-root'],
        ['/a b.c', 'viking-s-db-a-b-c'],
    ];
    for (const [p, name] of vols)
        test(`volumeName ${p}`, () => assert.equal(volumeName('s', 'db', p), name));
});
describe('demuxLogs', () => {
    const frame = (stream, text) => {
        const body = Buffer.from(text, 'utf8');
        const head = Buffer.alloc(8);
        head[0] = stream;
        head.writeUInt32BE(body.length, 4);
        return Buffer.concat([head, body]);
    };
    test('multiplexed stdout/stderr frames are joined without headers', () => {
        const buf = Buffer.concat([frame(1, 'hello\n'), frame(2, 'oops: bad\n'), frame(1, 'bye\n')]);
        assert.equal(demuxLogs(buf), 'hello\noops: bad\nbye\n');
    });
    test('an empty frame is fine', () => assert.equal(demuxLogs(Buffer.concat([frame(1, ''), frame(1, 'x')])), 'x'));
    test('a plain (TTY) buffer is returned as is', () => {
        const text = 'server listening on :80\nsecond line\n';
        assert.equal(demuxLogs(Buffer.from(text)), text);
    });
    test('a truncated frame falls back to the raw text', () => {
        const buf = frame(1, 'hello');
        const cut = buf.subarray(0, buf.length - 2);
        assert.equal(demuxLogs(cut), cut.toString('utf8'));
    });
    test('empty buffer -> empty string', () => assert.equal(demuxLogs(Buffer.alloc(0)), ''));
    test('a plain buffer shorter than one header is returned as is', () => {
        assert.equal(demuxLogs(Buffer.from('died\n')), 'died\n');
    });
});
//# sourceMappingURL=slave-reconcile.test.js.map
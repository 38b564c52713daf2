/**
 * The slave's pure decisions (planSlave, afterFailure) and the pure helpers
 * of containers.ts (specHash, names, log demultiplexing).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, afterFailure, failedState, memoryFromState, planSlave, MAX_FAILURES, type DesiredJob, type JobMemory, type SlaveAction, type SlaveView } from '../../lib/slave/reconcile.js';
import { containerName, demuxLogs, specHash, volumeName, type OwnedContainer } from '../../lib/slave/containers.js';
import { jobPath } from '../../lib/store/keys.js';
import type { JobId, JobSpec } from '../../lib/store/records.js';

const NOW = 1_000_000;

function jobId(n: number, node = 'web'): JobId {
  return { stack: 's', tag: 't1', node, instance: n };
}

function spec(n: number, over: Partial<JobSpec> = {}): JobSpec {
  return {
    ...jobId(n),
    image: 'registry/s/web:t1', expose: [80], volumes: [], env: { A: '1' }, service: true, tags: [], prefer: [], memory: 0, cpu: 0, scale: 2,
    ...over,
  };
}

function desired(n: number, s: JobSpec = spec(n)): DesiredJob {
  return { job: jobId(n), spec: s, hash: specHash(s) };
}

/** /deploy still names the job but /proc has no spec any more. */
const specless = (n: number): DesiredJob => ({ job: jobId(n), spec: undefined, hash: specHash(spec(n)) });

function container(n: number, over: Partial<OwnedContainer> = {}): OwnedContainer {
  return { id: `c${n}`, name: `viking-h-s-t1-web-${n}`, job: jobId(n), specHash: specHash(spec(n)), running: true, ports: new Map([[80, 32768 + n]]), ...over };
}

function view(over: Partial<SlaveView>): SlaveView {
  return { desired: [], actual: [], published: new Set(), busy: new Set(), memory: new Map(), now: NOW, ...over };
}

/** Compact form of the actions: 'start s/t1/web/1', 'remove c1 outdated', ... */
function summary(actions: SlaveAction[]): string[] {
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
  const cases: Array<{ name: string; view: SlaveView; expected: string[] }> = [
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
      view: view({ desired: [desired(1)], memory: new Map<string, JobMemory>([[P1, { failures: 2, restarts: 2, retryAt: NOW + 1 }]]) }),
      expected: [],
    },
    {
      name: 'backoff: retryAt reached -> start',
      view: view({ desired: [desired(1)], memory: new Map<string, JobMemory>([[P1, { failures: 2, restarts: 2, retryAt: NOW }]]) }),
      expected: ['start s/t1/web/1'],
    },
    {
      name: 'crash loop: never given up, started again once the longest backoff ends',
      view: view({ desired: [desired(1)], memory: new Map<string, JobMemory>([[P1, { failures: 500, restarts: 500, retryAt: NOW }]]) }),
      expected: ['start s/t1/web/1'],
    },
    {
      name: 'crash loop waiting: an outdated container keeps serving while the new spec backs off',
      view: view({ desired: [desired(1)], actual: [container(1, { specHash: 'old' })], memory: new Map<string, JobMemory>([[P1, { failures: 9, restarts: 9, retryAt: NOW + 1 }]]) }),
      expected: [],
    },
    {
      name: 'crash loop retried: the outdated container still serves beside the new try',
      view: view({ desired: [desired(1)], actual: [container(1, { specHash: 'old' })], memory: new Map<string, JobMemory>([[P1, { failures: 9, restarts: 9, retryAt: NOW }]]) }),
      expected: ['start s/t1/web/1'],
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
  for (const c of cases) test(c.name, () => assert.deepEqual(summary(planSlave(c.view)), c.expected));

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
  test('delay doubles from 1 s and stays at 30 s for ever; crash-loop from the 5th failure in a row', () => {
    const expected: Array<[number, number, string]> = [
      [1, 1000, 'backoff'], [2, 2000, 'backoff'], [3, 4000, 'backoff'], [4, 8000, 'backoff'], [5, 16000, 'crash-loop'],
      [6, 30000, 'crash-loop'], [7, 30000, 'crash-loop'], [100, 30000, 'crash-loop'],
    ];
    let mem: JobMemory | undefined;
    let n = 0;
    for (const [failures, delay, state] of expected) {
      while (n < failures) {
        mem = afterFailure(mem, NOW);
        n++;
      }
      assert.deepEqual(mem, { failures, restarts: failures, retryAt: NOW + delay });
      assert.equal(failedState(mem!), state);
    }
    assert.equal(MAX_FAILURES, 5);
  });

  test('a container healthy for resetAfterMs forgets its failures in a row, not its restarts', () => {
    const policy = { ...DEFAULT_BACKOFF, resetAfterMs: 600_000 };
    const prev: JobMemory = { failures: 7, restarts: 12, retryAt: 0, healthySince: NOW - 600_000 };
    assert.deepEqual(afterFailure(prev, NOW, policy), { failures: 1, restarts: 13, retryAt: NOW + 1000 });
    const shortRun: JobMemory = { ...prev, healthySince: NOW - 599_999 };
    assert.deepEqual(afterFailure(shortRun, NOW, policy), { failures: 8, restarts: 13, retryAt: NOW + 30_000 });
  });

  test('custom policy: base, cap and crash-loop threshold', () => {
    const policy = { baseMs: 100, maxMs: 250, maxFailures: 2, resetAfterMs: 1000 };
    const a = afterFailure(undefined, 0, policy);
    const b = afterFailure(a, 0, policy);
    const c = afterFailure(b, 0, policy);
    assert.deepEqual([a.retryAt, b.retryAt, c.retryAt], [100, 200, 250]);
    assert.deepEqual([failedState(a, policy), failedState(b, policy), failedState(c, policy)], ['backoff', 'crash-loop', 'crash-loop']);
  });

  test('no overflow after a very long loop', () => {
    let mem: JobMemory | undefined;
    for (let i = 0; i < 5000; i++) mem = afterFailure(mem, NOW);
    assert.equal(mem!.retryAt, NOW + 30_000);
  });
});

describe('memoryFromState (a restarted host remembers its backoff from /deploy)', () => {
  const cases: Array<[string, Parameters<typeof memoryFromState>[0], JobMemory | undefined]> = [
    ['nothing reported yet', undefined, undefined],
    ['a fresh deploy key', { state: 'starting' }, undefined],
    ['backoff with its next try', { state: 'backoff', failures: 3, restarts: 4, retryAt: new Date(NOW + 5000).toISOString() }, { failures: 3, restarts: 4, retryAt: NOW + 5000 }],
    ['crash-loop', { state: 'crash-loop', failures: 9, restarts: 9, retryAt: new Date(NOW).toISOString() }, { failures: 9, restarts: 9, retryAt: NOW }],
    ['running again keeps the counts, owes no wait', { state: 'running', failures: 2, restarts: 5, retryAt: new Date(NOW + 9000).toISOString() }, { failures: 2, restarts: 5, retryAt: 0 }],
    ['an older host wrote only failures', { state: 'failed', failures: 5 }, { failures: 5, restarts: 5, retryAt: 0 }],
    ['garbage counts are ignored', { state: 'backoff', failures: -1, restarts: 1.5 }, undefined],
  ];
  for (const [name, state, expected] of cases) test(name, () => assert.deepEqual(memoryFromState(state), expected));
});

describe('specHash', () => {
  test('stable under env key order', () => {
    assert.equal(specHash(spec(1, { env: { A: '1', B: '2' } })), specHash(spec(1, { env: { B: '2', A: '1' } })));
  });
  test('is a 16-hex-digit string', () => assert.match(specHash(spec(1)), /^[0-9a-f]{16}$/));
  const changes: Array<[string, Partial<JobSpec>]> = [
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
  for (const [what, over] of changes) test(`changes when ${what} changes`, () => assert.notEqual(specHash(spec(1, over)), specHash(spec(1))));
  test('does not change with instance, tag or scale (placement, not content)', () => {
    assert.equal(specHash(spec(2, { tag: 't9', scale: 7 })), specHash(spec(1)));
  });
});

describe('names', () => {
  test('containerName', () => {
    assert.equal(
      containerName({ cluster: 'c0ffee0123456789', host: 'h1' }, { stack: 'shop', tag: 't3', node: 'web', instance: 2 }, '0123456789abcdef'),
      'viking-c0ffee01-h1-shop-t3-web-2-01234567',
    );
  });
  const vols: Array<[string, string]> = [
    ['/data', 'viking-s-db-data'],
    ['/var/lib/postgresql/data', 'viking-s-db-var-lib-postgresql-data'],
    ['/data/', 'viking-s-db-data'],
    ['/', 'viking-s-db-root'],
    ['/a b.c', 'viking-s-db-a-b-c'],
  ];
  // Jobs of releases made before stack incarnations keep their old volume names.
  for (const [p, name] of vols) test(`legacy volumeName ${p}`, () => assert.equal(volumeName({ stack: 's', node: 'db' }, p), name));
  test('volumeName with an incarnation: readable, and no two (stack, node, path, incarnation) share one', () => {
    const name = volumeName({ stack: 'rt-g', node: 'h-web', incarnation: 'abc' }, '/data');
    assert.match(name, /^viking_rt-g_h-web_[0-9a-f]{20}$/);
    const others = [
      volumeName({ stack: 'rt-g-h', node: 'web', incarnation: 'abc' }, '/data'),
      volumeName({ stack: 'rt-g', node: 'h-web', incarnation: 'abd' }, '/data'),
      volumeName({ stack: 'rt-g', node: 'h-web', incarnation: 'abc' }, '/data/'),
      volumeName({ stack: 'rt-g', node: 'h-web', incarnation: 'abc' }, '/da/ta'),
    ];
    assert.equal(new Set([name, ...others]).size, 5);
  });
});

describe('demuxLogs', () => {
  const frame = (stream: number, text: string): Buffer => {
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

/**
 * dispatch's pure parts: diffDispatch (wanted vs placed, given live hosts)
 * and the snapshot -> dowding conversion, on ClusterSnapshots built by hand.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { diffDispatch, jobState } from '../../lib/dispatch/reconcile.js';
import { toPlanHosts, toPlanJob, type ClusterSnapshot, type PlacedJob } from '../../lib/dispatch/snapshot.js';
import { jobPath } from '../../lib/store/keys.js';
import type { HostRecord, JobId, JobSpec } from '../../lib/store/records.js';

function hostRec(name: string, over: Partial<HostRecord> = {}): HostRecord {
  return {
    name,
    ip: '127.0.0.2',
    tags: [],
    capacity: { memory: 0, cpu: 0, containers: 0 },
    master: false,
    api: `http://${name}:7000`,
    routerPort: 8080,
    draining: false,
    startedAt: '2024-01-01T00:00:00Z',
    version: '0.1.0',
    ...over,
  };
}

function spec(id: string, over: Partial<JobSpec> = {}): JobSpec {
  const [stack = 's', tag = 't1', node = 'web', n = '1'] = id.split('/');
  return {
    stack, tag, node, instance: Number(n),
    image: 'img', expose: [80], volumes: [], env: {}, service: true, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
    ...over,
  };
}

function placed(id: string, host: string, createRevision = '5'): PlacedJob {
  const [stack = 's', tag = 't1', node = 'web', n = '1'] = id.split('/');
  const job: JobId = { stack, tag, node, instance: Number(n) };
  return { job, host, createRevision };
}

function snap(opts: { hosts?: string[]; wanted?: JobSpec[]; placed?: PlacedJob[]; extra?: PlacedJob[]; pins?: Record<string, string>; hostRecs?: HostRecord[] }): ClusterSnapshot {
  const hosts = new Map<string, HostRecord>();
  for (const h of opts.hostRecs ?? (opts.hosts ?? []).map((n) => hostRec(n))) hosts.set(h.name, h);
  return {
    revision: '10',
    hosts,
    wanted: new Map((opts.wanted ?? []).map((s) => [jobPath(s), { spec: s, modRevision: '3' }])),
    placed: new Map((opts.placed ?? []).map((p) => [jobPath(p.job), p])),
    extra: opts.extra ?? [],
    run: new Map(),
    legacy: false, print: '',
    pins: new Map(Object.entries(opts.pins ?? {})),
  };
}

const paths = (xs: Array<JobSpec | PlacedJob>): string[] => xs.map((x) => jobPath('job' in x ? x.job : x)).sort();

describe('diffDispatch', () => {
  const cases: Array<{ name: string; snap: ClusterSnapshot; toPlace: string[]; toRemove: string[]; toMove: string[]; waiting: string[] }> = [
    { name: 'empty cluster: nothing to do', snap: snap({ hosts: ['a'] }), toPlace: [], toRemove: [], toMove: [], waiting: [] },
    {
      name: 'a job placed twice: the second placement is removed, the first stays',
      snap: snap({ hosts: ['a', 'b'], wanted: [spec('s/t1/web/1')], placed: [placed('s/t1/web/1', 'a', '5')], extra: [placed('s/t1/web/1', 'b', '9')] }),
      toPlace: [], toRemove: ['s/t1/web/1'], toMove: [], waiting: [],
    },
    {
      name: 'new job -> toPlace',
      snap: snap({ hosts: ['a'], wanted: [spec('s/t1/web/1'), spec('s/t1/web/2')] }),
      toPlace: ['s/t1/web/1', 's/t1/web/2'], toRemove: [], toMove: [], waiting: [],
    },
    {
      name: 'placed on a live host -> nothing',
      snap: snap({ hosts: ['a'], wanted: [spec('s/t1/web/1')], placed: [placed('s/t1/web/1', 'a')] }),
      toPlace: [], toRemove: [], toMove: [], waiting: [],
    },
    {
      name: '/run without /proc -> toRemove (even on a dead host)',
      snap: snap({ hosts: ['a'], placed: [placed('s/t0/web/1', 'a'), placed('s/t0/web/2', 'gone')] }),
      toPlace: [], toRemove: ['s/t0/web/1', 's/t0/web/2'], toMove: [], waiting: [],
    },
    {
      name: 'job on a dead host -> toMove + toPlace',
      snap: snap({ hosts: ['a'], wanted: [spec('s/t1/web/1'), spec('s/t1/web/2')], placed: [placed('s/t1/web/1', 'dead'), placed('s/t1/web/2', 'a')] }),
      toPlace: ['s/t1/web/1'], toRemove: [], toMove: ['s/t1/web/1'], waiting: [],
    },
    {
      name: 'volume job on a dead host -> waiting, not moved',
      snap: snap({ hosts: ['a'], wanted: [spec('s/t1/db/1', { volumes: ['/data'] })], placed: [placed('s/t1/db/1', 'dead')], pins: { 's/db': 'dead' } }),
      toPlace: [], toRemove: [], toMove: [], waiting: ['s/t1/db/1'],
    },
    {
      name: 'volume job on a dead host whose pin was removed (hosts rm) -> moved',
      snap: snap({ hosts: ['a'], wanted: [spec('s/t1/db/1', { volumes: ['/data'] })], placed: [placed('s/t1/db/1', 'dead')] }),
      toPlace: ['s/t1/db/1'], toRemove: [], toMove: ['s/t1/db/1'], waiting: [],
    },
    {
      name: 'draining host: stateless jobs move, volume jobs stay',
      snap: snap({
        hostRecs: [hostRec('a', { draining: true }), hostRec('b')],
        wanted: [spec('s/t1/web/1'), spec('s/t1/db/1', { volumes: ['/data'] })],
        placed: [placed('s/t1/web/1', 'a'), placed('s/t1/db/1', 'a')],
        pins: { 's/db': 'a' },
      }),
      toPlace: ['s/t1/web/1'], toRemove: [], toMove: ['s/t1/web/1'], waiting: [],
    },
    {
      name: 'no live hosts at all: stateless moves, volume waits',
      snap: snap({
        hosts: [],
        wanted: [spec('s/t1/web/1'), spec('s/t1/db/1', { volumes: ['/data'] })],
        placed: [placed('s/t1/web/1', 'a'), placed('s/t1/db/1', 'a')],
        pins: { 's/db': 'a' },
      }),
      toPlace: ['s/t1/web/1'], toRemove: [], toMove: ['s/t1/web/1'], waiting: ['s/t1/db/1'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = diffDispatch(c.snap);
      assert.deepEqual(paths(d.toPlace), c.toPlace, 'toPlace');
      assert.deepEqual(paths(d.toRemove), c.toRemove, 'toRemove');
      assert.deepEqual(paths(d.toMove), c.toMove, 'toMove');
      assert.deepEqual(paths(d.waiting), c.waiting, 'waiting');
    });
  }

  test('toMove carries the create revision of the deploy key and the old host; toPlace the full spec', () => {
    const s = spec('s/t1/web/1', { memory: 64 });
    const d = diffDispatch(snap({ hosts: ['a'], wanted: [s], placed: [placed('s/t1/web/1', 'dead', '42')] }));
    assert.deepEqual(d.toMove, [{ job: { stack: 's', tag: 't1', node: 'web', instance: 1 }, host: 'dead', createRevision: '42' }]);
    assert.deepEqual(d.toPlace, [s]);
  });
});

describe('toPlanJob', () => {
  const pins = new Map([['s/db', 'b'], ['s/web', 'c']]);

  test('maps the spec fields and the id', () => {
    const j = toPlanJob(spec('s/t1/web/2', { memory: 256, cpu: 0.5, tags: ['ssd'], prefer: ['eu'] }), new Map());
    assert.deepEqual(j, { id: 's/t1/web/2', stack: 's', node: 'web', memory: 256, cpu: 0.5, tags: ['ssd'], prefer: ['eu'] });
    assert.equal('pinnedTo' in j, false);
  });

  const pinCases: Array<[string, JobSpec, string | undefined]> = [
    ['volume job with a pin -> pinned', spec('s/t1/db/1', { volumes: ['/data'] }), 'b'],
    ['job without volumes ignores a pin for its node', spec('s/t1/web/1'), undefined],
    ['volume job without a pin -> free', spec('s/t1/cache/1', { volumes: ['/c'] }), undefined],
    ['pin of another stack does not apply', spec('x/t1/db/1', { volumes: ['/data'] }), undefined],
  ];
  for (const [name, s, expected] of pinCases) test(name, () => assert.equal(toPlanJob(s, pins).pinnedTo, expected));
});

describe('toPlanHosts', () => {
  test('live hosts with their wanted placed jobs; unwanted and dead-host placements left out', () => {
    const sn = snap({
      hostRecs: [hostRec('a', { tags: ['ssd'], capacity: { memory: 1024, cpu: 2, containers: 5 } }), hostRec('b', { draining: true })],
      wanted: [spec('s/t1/web/1', { memory: 100 }), spec('s/t1/web/2'), spec('s/t1/db/1', { volumes: ['/d'] }), spec('s/t1/web/3')],
      placed: [placed('s/t1/web/1', 'a'), placed('s/t1/db/1', 'a'), placed('s/t1/web/2', 'dead'), placed('s/t0/old/1', 'b')],
      pins: { 's/db': 'a' },
    });
    const hosts = toPlanHosts(sn).sort((x, y) => x.name.localeCompare(y.name));
    assert.deepEqual(hosts.map((h) => h.name), ['a', 'b']);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    assert.deepEqual(a.tags, ['ssd']);
    assert.deepEqual(a.capacity, { memory: 1024, cpu: 2, containers: 5 });
    assert.equal(a.draining, false);
    assert.deepEqual(a.jobs.map((j) => j.id).sort(), ['s/t1/db/1', 's/t1/web/1']);
    assert.equal(a.jobs.find((j) => j.id === 's/t1/web/1')?.memory, 100);
    assert.equal(a.jobs.find((j) => j.id === 's/t1/db/1')?.pinnedTo, 'a');
    assert.equal(b.draining, true);
    assert.deepEqual(b.jobs, [], 'a /run without /proc does not load the host');
  });
});

describe('jobState: the one verdict diffDispatch acts on and ps/allocate report', () => {
  const vol = spec('s/t1/db/1', { volumes: ['/data'] });
  const web = spec('s/t1/web/1');
  const hostRecs = [hostRec('a'), hostRec('d', { draining: true })];
  const cases: Array<{ name: string; snap: ClusterSnapshot; path: string; held?: string[]; want: ReturnType<typeof jobState> }> = [
    { name: 'wanted, not placed', snap: snap({ hosts: ['a'], wanted: [web] }), path: 's/t1/web/1', want: { state: 'pending' } },
    { name: 'on a live host', snap: snap({ hosts: ['a'], wanted: [web], placed: [placed('s/t1/web/1', 'a')] }), path: 's/t1/web/1', want: { state: 'placed', host: 'a' } },
    { name: 'on a draining host: moves', snap: snap({ hostRecs, wanted: [web], placed: [placed('s/t1/web/1', 'd')] }), path: 's/t1/web/1', want: { state: 'moving', host: 'd', hostGone: false } },
    { name: 'volume job on a draining host: stays', snap: snap({ hostRecs, wanted: [vol], placed: [placed('s/t1/db/1', 'd')] }), path: 's/t1/db/1', want: { state: 'placed', host: 'd' } },
    { name: 'on a dead host: moves', snap: snap({ hosts: ['a'], wanted: [web], placed: [placed('s/t1/web/1', 'x')] }), path: 's/t1/web/1', want: { state: 'moving', host: 'x', hostGone: true } },
    { name: 'on a dead host that is held: waits', snap: snap({ hosts: ['a'], wanted: [web], placed: [placed('s/t1/web/1', 'x')] }), path: 's/t1/web/1', held: ['x'], want: { state: 'waiting-host', host: 'x' } },
    { name: 'volume job on its pinned dead host: waits', snap: snap({ hosts: ['a'], wanted: [vol], placed: [placed('s/t1/db/1', 'x')], pins: { 's/db': 'x' } }), path: 's/t1/db/1', want: { state: 'waiting-host', host: 'x' } },
    { name: 'volume job on a dead host, pin removed: moves', snap: snap({ hosts: ['a'], wanted: [vol], placed: [placed('s/t1/db/1', 'x')] }), path: 's/t1/db/1', want: { state: 'moving', host: 'x', hostGone: true } },
    { name: 'placed, no longer wanted', snap: snap({ hosts: ['a'], placed: [placed('s/t1/web/1', 'a')] }), path: 's/t1/web/1', want: { state: 'unwanted', host: 'a' } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(jobState(c.snap, c.path, new Set(c.held ?? [])), c.want);
      // diffDispatch puts the job where its state says.
      const d = diffDispatch(c.snap, new Set(c.held ?? []));
      const where = d.toRemove.length ? 'unwanted' : d.waiting.length ? 'waiting-host' : d.toMove.length ? 'moving' : d.toPlace.length ? 'pending' : 'placed';
      assert.equal(where, c.want.state);
    });
  }
});

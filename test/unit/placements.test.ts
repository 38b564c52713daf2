/**
 * Placements read from /deploy alone (lib/store/placements.ts): which deploy
 * keys are where a job is, which are a rebalance's copies, which are extras
 * dispatch removes. Plain data: etcd's key-values as the range answer gives them.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IKeyValue } from 'etcd3';
import { sortPlacements, jobsPerHost } from '../../lib/store/placements.js';
import { diffDispatch } from '../../lib/dispatch/reconcile.js';
import { fingerprintOf, type ClusterSnapshot } from '../../lib/dispatch/snapshot.js';

function kv(key: string, create: number, lease = '0', value = ''): IKeyValue {
  return {
    key: Buffer.from(key), value: Buffer.from(value), create_revision: String(create), mod_revision: String(create + 1),
    version: '1', lease,
  };
}

describe('sortPlacements', () => {
  test('a lease-free key is the placement; a leased one is a copy; a second lease-free key is an extra, the oldest stays', () => {
    const read = sortPlacements([
      kv('/deploy/b/s/t1/web/1', 20),
      kv('/deploy/a/s/t1/web/1', 9),
      kv('/deploy/c/s/t1/web/1', 30, '7587'),
      kv('/deploy/a/s/t1/web/2', 11, '0', '{"state":"running"}'),
    ], '40');
    assert.deepEqual([...read.placed].map(([p, x]) => [p, x.host, x.createRevision, x.value]), [
      ['s/t1/web/1', 'a', '9', ''],
      ['s/t1/web/2', 'a', '11', '{"state":"running"}'],
    ]);
    assert.deepEqual(read.extra.map((x) => [x.host, x.createRevision]), [['b', '20']]);
    assert.deepEqual([...read.copies].map(([p, xs]) => [p, xs.map((x) => x.host)]), [['s/t1/web/1', ['c']]]);
    assert.deepEqual([...jobsPerHost(read)], [['a', 2]]);
  });

  test('revisions compare as numbers, not as text (9 before 10)', () => {
    const read = sortPlacements([kv('/deploy/late/s/t1/web/1', 10), kv('/deploy/early/s/t1/web/1', 9)], '11');
    assert.equal(read.placed.get('s/t1/web/1')?.host, 'early');
  });

  test('a stack filter keeps only that stack; keys that are not job paths are skipped', () => {
    const read = sortPlacements([kv('/deploy/a/s/t1/web/1', 3), kv('/deploy/a/other/t1/web/1', 4), kv('/deploy/a/junk', 5), kv('/deploy/a/s/t1/web/0', 6)], '9', 's');
    assert.deepEqual([...read.placed.keys()], ['s/t1/web/1']);
  });

  test('property: every job has at most one placement, the lease-free key with the lowest create revision', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const kvs: IKeyValue[] = [];
      const used = new Set<string>();
      for (let i = 0; i < 1 + rnd(20); i++) {
        const key = `/deploy/h${rnd(4)}/s/t1/n${rnd(3)}/${1 + rnd(2)}`;
        if (used.has(key)) continue;
        used.add(key);
        kvs.push(kv(key, 1 + rnd(1000) * 10 + i, rnd(3) === 0 ? '99' : '0'));
      }
      const read = sortPlacements(kvs, '100000');
      const free = kvs.filter((k) => k.lease === '0');
      const byJob = new Map<string, IKeyValue[]>();
      for (const k of free) {
        const path = k.key.toString().split('/').slice(3).join('/');
        byJob.set(path, [...(byJob.get(path) ?? []), k]);
      }
      assert.equal(read.placed.size, byJob.size);
      for (const [path, ks] of byJob) {
        const oldest = ks.reduce((a, b) => (Number(a.create_revision) <= Number(b.create_revision) ? a : b));
        assert.equal(read.placed.get(path)?.createRevision, oldest.create_revision, path);
      }
      assert.equal(read.extra.length, free.length - byJob.size);
      assert.equal([...read.copies.values()].flat().length, kvs.length - free.length);
    }
  });
});

test('diffDispatch removes the extra placement of a job placed twice, never the one it keeps', () => {
  const read = sortPlacements([kv('/deploy/a/s/t1/web/1', 5), kv('/deploy/b/s/t1/web/1', 9)], '10');
  const spec = {
    stack: 's', tag: 't1', node: 'web', instance: 1, image: 'img', expose: [80], volumes: [], env: {}, service: true, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1,
  };
  const host = (name: string) => ({ name, ip: '10.0.0.1', tags: [], capacity: { memory: 1e9, cpu: 1, containers: 0 }, master: false, api: '', routerPort: 0, draining: false, startedAt: '', version: '' });
  const snap: ClusterSnapshot = {
    revision: '10', hosts: new Map([['a', host('a')], ['b', host('b')]]), wanted: new Map([['s/t1/web/1', { spec, modRevision: '3' }]]),
    placed: new Map([...read.placed].map(([p, x]) => [p, { job: x.job, host: x.host, createRevision: x.createRevision }])),
    extra: read.extra.map((x) => ({ job: x.job, host: x.host, createRevision: x.createRevision })), run: new Map(), legacy: false, print: '', pins: new Map(),
  };
  const diff = diffDispatch(snap);
  assert.deepEqual(diff.toRemove.map((p) => [p.host, p.createRevision]), [['b', '9']]);
  assert.deepEqual(diff.toPlace, []);
  assert.deepEqual(diff.toMove, []);
});

test('fingerprintOf: count and newest revision per prefix, revisions compared as numbers', () => {
  assert.equal(fingerprintOf([['9', '10', '7'], [], ['100']]), '3@10 0@0 1@100');
});

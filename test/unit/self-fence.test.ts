/**
 * When a host whose lease is gone counts itself cut off: it reaches too
 * few of the other hosts to be on the majority side. A single host never is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fenceAfterMs, isolated } from '../../lib/host/self-fence.js';

const cases: Array<[others: number, reachable: number, cutOff: boolean]> = [
  [0, 0, false], // alone in its cluster: nothing to fence against
  [1, 0, true], // two hosts, the other gone: 1 of 2 is no majority
  [1, 1, false],
  [2, 0, true], // three servers, cable pulled
  [2, 1, false], // three servers, etcd without quorum but the hosts see each other
  [2, 2, false],
  [3, 1, true], // four hosts: 2 of 4 is no majority
  [3, 2, false],
  [4, 1, true],
  [4, 2, false],
];
for (const [others, reachable, cutOff] of cases) {
  test(`${reachable} of ${others} other hosts reachable -> ${cutOff ? 'cut off' : 'stays'}`, () => assert.equal(isolated(others, reachable), cutOff));
}

// A cut-off host checks its peers before etcd can end its lease: the TTL less 1.5 s, never under half the TTL.
for (const [ttl, after] of [[3, 1500], [2, 1000], [10, 8500], [1, 500]] as const) {
  test(`lease TTL ${ttl} s -> peers checked after ${after} ms without a renewal`, () => assert.equal(fenceAfterMs(ttl), after));
}

/**
 * When a host whose lease is gone counts itself cut off: it reaches too
 * few of the other hosts to be on the majority side. A single host never is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isolated } from '../../lib/host/self-fence.js';

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

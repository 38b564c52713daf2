/**
 * The retry and failure-answer rules both proxy engines share
 * (lib/router/forwarding.ts): how many tries, which endpoints the next one
 * skips, and what the client is told when none answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointLabel, failureAnswer, nextTry } from '../../lib/router/forwarding.js';
import type { PortEndpoint } from '../../lib/store/records.js';
import type { ContainerRoute } from '../../lib/router/route-table.js';

const ep = (n: number): PortEndpoint => ({ ip: '127.0.0.1', hostPort: 30000 + n, tag: 'v1', instance: n }) as PortEndpoint;
const route = { stack: 'shop', node: 'web' } as ContainerRoute;

test('nextTry: skips what failed, stops at the endpoint count and at three attempts', () => {
  assert.deepEqual(nextTry(null, ep(1), 3, false, 1), [ep(1)]);
  assert.deepEqual(nextTry([ep(1)], ep(2), 3, false, 2), [ep(1), ep(2)]);
  assert.equal(nextTry([ep(1), ep(2)], ep(3), 3, false, 3), null, 'every endpoint tried');
  assert.equal(nextTry(null, ep(1), 5, false, 3), null, 'three attempts at most');
  assert.equal(nextTry(null, ep(1), 1, false, 1), null, 'a refused connect on the only endpoint');
});

test('nextTry: a broken keep-alive connection on the only endpoint is worth one fresh connection', () => {
  assert.deepEqual(nextTry(null, ep(1), 1, true, 1), []);
  assert.deepEqual(nextTry([ep(1)], ep(2), 2, true, 2), []);
  assert.equal(nextTry(null, ep(1), 1, true, 3), null);
});

test('failureAnswer: 504 for a timeout, 502 naming the cause, the tries and where', () => {
  assert.deepEqual(failureAnswer(route, 'ETIMEDOUT_HEAD', 'no answer in time', 'x', 1), [504, 'Gateway timeout', 'shop/web did not answer in time (x).']);
  const [status, , detail] = failureAnswer(route, 'ECONNREFUSED', 'connection refused', endpointLabel(ep(2)), 3);
  assert.equal(status, 502);
  assert.equal(detail, 'shop/web did not answer after 3 attempts: connection refused (127.0.0.1:30002 (v1/2)). Check it with: viking ps shop');
  assert.equal(endpointLabel(undefined), 'no endpoint');
});

/**
 * The access log's bounds, as plain logic: a worker whose last batch is not
 * taken keeps at most MAX_PENDING lines and counts the rest as dropped; the
 * count goes with the next batch; hostile paths and Hosts stay one JSON
 * line of bounded size; the host's ring keeps the last KEEP lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessLogWriter, MAX_DOMAIN, MAX_PATH, MAX_PENDING, type AccessBatch, type AccessLine } from '../../lib/router/access-log.js';
import { AccessLogHub, KEEP } from '../../lib/router/access-hub.js';
import type { ContainerRoute } from '../../lib/router/route-table.js';

const route = { kind: 'container', stack: 's', node: 'web', domain: 's.test', endpoints: [], slot: -1, balancer: { cursor: 0 }, hsts: '', access: null } as ContainerRoute;

test('a worker whose batch is not taken keeps MAX_PENDING lines and counts the rest; the count goes with the next batch', async () => {
  const batches: AccessBatch[] = [];
  const w = new AccessLogWriter((b) => batches.push(b));
  w.record(route, undefined, 'GET', '/first', 's.test', 200, 1, 10, 20, false);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(batches.length, 1, 'the first batch left');
  // Not taken yet: lines pile up to the cap, then are dropped.
  for (let i = 0; i < MAX_PENDING + 25; i++) w.record(route, undefined, 'GET', `/n${i}`, 's.test', 200, 1, 10, 20, false);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(batches.length, 1, 'nothing more leaves before the last batch is taken');
  assert.equal(w.pending, MAX_PENDING);
  w.taken();
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(batches.length, 2);
  assert.equal(batches[1]!.entries.length, MAX_PENDING);
  assert.equal(batches[1]!.dropped, 25);
});

test('hostile paths and Hosts: one JSON line each, cut to their caps, fields intact', async () => {
  const batches: AccessBatch[] = [];
  const w = new AccessLogWriter((b) => batches.push(b));
  const evil = ['/"},{"status":200', '/\\u0000\r\n{"x":1}\n', `/${'é'.repeat(MAX_PATH * 2)}`, '/\u2028\u2029'];
  for (const p of evil) w.record(route, undefined, 'GET', p, `${'h'.repeat(MAX_DOMAIN * 3)}:8080`, 404, 1, 1, 1, false);
  await new Promise((r) => setTimeout(r, 120));
  const lines = batches[0]!.entries.map(([, , json]) => json);
  for (const [i, json] of lines.entries()) {
    assert.ok(!json.includes('\n') && !json.includes('\r'), 'no line break inside a line');
    const l = JSON.parse(json) as AccessLine;
    assert.equal(l.status, 404);
    assert.equal(l.path, evil[i]!.slice(0, MAX_PATH));
    assert.equal(l.path_cut, evil[i]!.length > MAX_PATH ? true : undefined);
    assert.equal(l.domain.length, MAX_DOMAIN);
  }
});

test('the host keeps the last KEEP lines per stack and filters by node', () => {
  const hub = new AccessLogHub('h1');
  const line = (n: number, node: string): [string, string, string] => ['s', node, JSON.stringify({ time: 't', n, node })];
  hub.add({ entries: Array.from({ length: KEEP + 10 }, (_, i) => line(i, i % 2 ? 'api' : 'web')), dropped: 0 });
  const all = hub.tail('s', undefined, KEEP * 2).map((l) => JSON.parse(l) as { n: number; router: string });
  assert.equal(all.length, KEEP);
  assert.equal(all[0]!.n, 10);
  assert.equal(all.at(-1)!.n, KEEP + 9);
  assert.equal(all[0]!.router, 'h1');
  const api = hub.tail('s', 'api', 5).map((l) => (JSON.parse(l) as { n: number }).n);
  assert.deepEqual(api, [KEEP + 1, KEEP + 3, KEEP + 5, KEEP + 7, KEEP + 9]);
  assert.deepEqual(hub.tail('other', undefined, 5), []);
});

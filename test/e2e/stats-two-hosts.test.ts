/**
 * `viking stats` sums the routers of every host (issue 18): two `viking host`
 * processes share one etcd and route one stack to two real backends; 5
 * requests go through the first host's router and 3 through the second's.
 * `viking stats STACK --json`, asked of the first host's API only, reports 8,
 * split by replica as the backends saw them, and names both hosts; each
 * host's /metrics shows only its own router's requests.
 *
 * The node has access_log: true, so the same cluster checks `viking logs
 * STACK --access`: asked of one host, it shows the lines of both routers,
 * and with follow a request through the other host's router appears live.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { runCli, type HostProcess } from '../helpers/host-process.js';
import { startRoutedHosts, type RoutedHosts } from '../helpers/two-hosts.js';
import { call, endpointFor, putRoute, type Backend } from '../helpers/router-fixtures.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import type { TrafficRow } from '../../lib/stats/traffic-table.js';
import type { AccessLine } from '../../lib/router/access-log.js';
import { linesOf } from '../../lib/ndjson.js';

const stack = uniqueName('stats');
const domain = `web.${stack}.test`;
let cluster: RoutedHosts;
let client: Etcd3;
let a: HostProcess;
let b: HostProcess;
let backends: Backend[];

before(async () => {
  cluster = await startRoutedHosts({ stack, backends: 2, routes: (c, bs) => putRoute(c, { stack, node: 'web', current: 'v1', domains: [domain], endpoints: bs.map((x, i) => endpointFor(stack, 'web', 'v1', i + 1, x.port)), accessLog: ['web'] }) });
  ({ client, a, b, backends } = cluster);
});

after(async () => {
  await cluster?.stop();
});

const metricsOf = async (h: HostProcess): Promise<string> => (await fetch(`${h.api}/metrics`, { headers: { authorization: `Bearer ${h.token}` } })).text();
const routedTotal = (text: string): number =>
  [...text.matchAll(new RegExp(`^viking_router_requests_total\\{stack="${stack}",[^}]*class="2xx"\\} (\\d+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);

test('viking stats sums the counters of both hosts; /metrics shows each host its own', async () => {
  await waitFor('both routers route the stack', async () => (await call(a.routerPort, domain)).status === 200 && (await call(b.routerPort, domain)).status === 200);
  // Those two probes are counted too: 1 + 4 on a, 1 + 2 on b.
  for (let i = 0; i < 4; i++) assert.equal((await call(a.routerPort, domain)).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await call(b.routerPort, domain)).status, 200);
  const hits = backends.map((x) => x.hits);
  assert.equal(hits[0]! + hits[1]!, 8);

  assert.equal(routedTotal(await metricsOf(a)), 5);
  assert.equal(routedTotal(await metricsOf(b)), 3);

  const res = await runCli(['stats', stack, '--json', '--interval', '0.2', '--api', a.api, '--token', a.token]);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { hosts: Array<{ host: string; ok: boolean }>; totals: TrafficRow[]; rows: TrafficRow[] };
  assert.deepEqual(out.hosts.map((h) => [h.host, h.ok]), [[a.name, true], [b.name, true]]);
  const all = out.totals.find((r) => r.node === 'web' && r.replica === 'all')!;
  assert.equal(all.requests, 8);
  assert.equal(all.errorPct, 0);
  assert.ok(all.p50 !== null && all.p99 !== null && all.p99 >= all.p50);
  // Per replica, as the backends counted them.
  for (const [i, x] of backends.entries()) assert.equal(out.totals.find((r) => r.replica === i + 1)?.requests ?? 0, x.hits, `replica ${i + 1}`);
  // Nothing was sent during the command's window.
  assert.equal(out.rows.find((r) => r.replica === 'all')?.requests ?? 0, 0);

  const table = await runCli(['stats', stack, '--interval', '0.2', '--api', b.api, '--token', b.token]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /STACK\s+NODE\s+REPLICA\s+REQ\/S\s+ERRORS\s+P50\s+P99/);
});

test('viking logs --access shows the lines of both hosts\' routers, and -f follows a request through the other host', async () => {
  await waitFor('both routers route the stack', async () => (await call(a.routerPort, domain)).status === 200 && (await call(b.routerPort, domain)).status === 200);
  for (let i = 0; i < 3; i++) assert.equal((await call(a.routerPort, domain, { path: `/via-a-${i}` })).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await call(b.routerPort, domain, { path: `/via-b-${i}` })).status, 200);
  const mine = (out: string): AccessLine[] => out.trim().split('\n').map((l) => JSON.parse(l) as AccessLine).filter((l) => l.path.startsWith('/via-'));
  let lines: AccessLine[] = [];
  await waitFor('the five lines, from both routers', async () => {
    const res = await runCli(['logs', stack, '--access', '--json', '--api', a.api, '--token', a.token]);
    assert.equal(res.code, 0, res.stderr);
    lines = mine(res.stdout);
    return lines.length === 5;
  });
  assert.deepEqual(lines.filter((l) => l.router === a.name).map((l) => l.path).sort(), ['/via-a-0', '/via-a-1', '/via-a-2']);
  assert.deepEqual(lines.filter((l) => l.router === b.name).map((l) => l.path).sort(), ['/via-b-0', '/via-b-1']);
  assert.ok(lines.every((l) => l.status === 200 && l.domain === domain && /^web\.[12]$/.test(l.replica)));
  const times = lines.map((l) => l.time);
  assert.deepEqual(times, [...times].sort(), 'merged in time order');

  const text = await runCli(['logs', stack, 'web', '--access', '-n', '20', '--api', b.api, '--token', b.token]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`${a.name}\\s+web\\.[12]@test\\s+200 GET\\s+${domain.replace(/\./g, '\\.')}/via-a-0 `));

  const refused = await runCli(['logs', stack, 'other', '--access', '--api', a.api, '--token', a.token]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /access_log: true/);

  // Follow through host a's API; the request goes through host b's router.
  const abort = new AbortController();
  try {
    const res = await fetch(`${a.api}/v1/access/${stack}?follow=1&tail=0`, { headers: { authorization: `Bearer ${a.token}` }, signal: abort.signal });
    assert.equal(res.status, 200);
    const others: string[] = [];
    let got: AccessLine | undefined;
    void (async () => {
      for await (const text of linesOf(res)) {
        const l = JSON.parse(text) as AccessLine;
        if (l.path === '/followed') got ??= l;
        else others.push(text);
      }
    })().catch(() => {});
    // Both hosts subscribe as the answer starts; resend until the line shows (one sent before that is not followed).
    await waitFor('a request through b appears in the follow asked of a', async () => {
      await call(b.routerPort, domain, { path: '/followed' });
      return got !== undefined || others.some((t) => t.includes('"error"'));
    });
    assert.equal(got?.router, b.name, others.join('\n'));
  } finally {
    abort.abort();
  }
});

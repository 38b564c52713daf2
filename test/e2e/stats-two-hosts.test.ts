/**
 * `viking stats` sums the routers of every host (issue 18): two `viking host`
 * processes share one etcd and route one stack to two real backends; 5
 * requests go through the first host's router and 3 through the second's.
 * `viking stats STACK --json`, asked of the first host's API only, reports 8,
 * split by replica as the backends saw them, and names both hosts; each
 * host's /metrics shows only its own router's requests.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../lib/store/client.js';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcesses, runCli, type HostProcess } from '../helpers/host-process.js';
import { call, endpointFor, putRoute, startBackend, type Backend } from '../helpers/router-fixtures.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import type { TrafficRow } from '../../lib/stats/traffic-table.js';

const stack = uniqueName('stats');
const domain = `web.${stack}.test`;
let etcd: TestEtcd;
let client: Etcd3;
let work: string;
let a: HostProcess;
let b: HostProcess;
const backends: Backend[] = [];

before(async () => {
  etcd = await startTestEtcd(stack);
  client = connectEtcd(etcd.url);
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-stats-'));
  backends.push(await startBackend('r1'), await startBackend('r2'));
  await putRoute(client, { stack, node: 'web', current: 'v1', domains: [domain], endpoints: backends.map((x, i) => endpointFor(stack, 'web', 'v1', i + 1, x.port)) });
  [a, b] = (await startHostProcesses([
    { name: `${stack}-a`, etcd: etcd.url, master: true, dataDir: path.join(work, 'a') },
    { name: `${stack}-b`, etcd: etcd.url, dataDir: path.join(work, 'b') },
  ])) as [HostProcess, HostProcess];
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all(backends.map((x) => x.close()));
  client?.close();
  await etcd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
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

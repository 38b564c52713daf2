/**
 * The router role (issue 16): only some hosts run a router. Two real
 * `viking host` processes share one etcd: A runs the router, B was started
 * with `--no-router`. B listens on its API port alone, writes no
 * `/routers/<host>` ack (so no rollout waits on it) and says so in its host
 * record; a route change is acknowledged by A alone and served by A.
 * `viking hosts` shows which host routes. `--no-router` with a router flag
 * stops `viking host` and `viking up` before they start anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { readPrefix } from '../../lib/store/client.js';
import { PREFIX, hostKey } from '../../lib/store/keys.js';
import type { HostRecord, RouterAck } from '../../lib/store/records.js';
import { waitRoutersSeen } from '../../lib/router/acks.js';
import { runCli, type HostProcess } from '../helpers/host-process.js';
import { startRoutedHosts, type RoutedHosts } from '../helpers/two-hosts.js';
import { call, endpointFor, putRoute, type Backend } from '../helpers/router-fixtures.js';
import { uniqueName, waitFor } from '../helpers/wait.js';

const stack = uniqueName('role');
const domain = `web.${stack}.test`;
let cluster: RoutedHosts;
let client: Etcd3;
let work: string;
let a: HostProcess;
let b: HostProcess;
let backends: Backend[];

before(async () => {
  cluster = await startRoutedHosts({ stack, backends: 2, routes: (c, bs) => putRoute(c, { stack, node: 'web', current: 'v1', domains: [domain], endpoints: [endpointFor(stack, 'web', 'v1', 1, bs[0]!.port)] }), bExtra: ['--no-router'] });
  ({ client, work, a, b, backends } = cluster);
});

after(async () => {
  await cluster?.stop();
});

/** The TCP ports a process listens on, from `ss`. */
async function listeningPorts(pid: number): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ss', ['-Hltnp']);
  return stdout
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => Number(/:(\d+)$/.exec(l.trim().split(/\s+/)[3] ?? '')?.[1]))
    .sort((x, y) => x - y);
}

const routerAcks = async (): Promise<string[]> => (await readPrefix<RouterAck>(client, PREFIX.routers)).entries.map((e) => e.value?.host ?? '?').sort();

test('a --no-router host listens on its API port alone and leaves no router ack; a route change is acked and served by the router host', async () => {
  assert.equal(b.routerPort, 0, 'ready line: router=0');
  assert.equal(b.httpsPort, 0, 'ready line: https=0');
  assert.deepEqual(await listeningPorts(b.child.pid!), [b.apiPort]);
  const aPorts = await listeningPorts(a.child.pid!);
  assert.ok(aPorts.includes(a.routerPort) && aPorts.includes(a.httpsPort) && aPorts.includes(a.apiPort), `A listens on ${aPorts.join(', ')}`);

  const recordB = JSON.parse((await client.get(hostKey(b.name)).string())!) as HostRecord;
  assert.equal(recordB.router, false);
  assert.equal(recordB.routerPort, 0);
  const recordA = JSON.parse((await client.get(hostKey(a.name)).string())!) as HostRecord;
  assert.equal(recordA.router, true);
  assert.equal(recordA.routerPort, a.routerPort);

  await waitFor('A routes the stack', async () => (await call(a.routerPort, domain)).status === 200);
  // A second replica appears: the revision every router must serve before a slave may stop a container.
  const rev = await putRoute(client, { stack, node: 'web', current: 'v1', domains: [domain], endpoints: [endpointFor(stack, 'web', 'v1', 2, backends[1]!.port)] });
  const seen = await waitRoutersSeen(client, rev, 10_000);
  assert.deepEqual(await routerAcks(), [a.name], 'only the router host acknowledges');
  assert.deepEqual([seen.ok, seen.lagging], [true, []]);
  const names = new Set<string>();
  for (let i = 0; i < 6; i++) names.add((JSON.parse((await call(a.routerPort, domain)).body) as { name: string }).name);
  assert.deepEqual([...names].sort(), ['r1', 'r2'], 'A serves the new replica at once: its ack covers the change');
  assert.match(b.output(), /no router, api :\d+/);
});

test('viking hosts shows which host routes, in the table and in --json', async () => {
  const table = await runCli(['hosts', '--api', b.api, '--token', b.token]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^HOST\s+IP\s+ROLE\s+ETCD\s+STATE\s+JOBS\s+ROUTER\s+CAPACITY/m);
  const row = (name: string): string => table.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '';
  assert.match(row(a.name), new RegExp(`\\s:${a.routerPort} (tls:${a.httpsPort} )?(node|nginx)\\s`));
  assert.match(row(b.name), /\snone\s/);

  const json = await runCli(['hosts', '--json', '--api', a.api, '--token', a.token]);
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ name: string; router?: boolean; routerPort: number }>;
  assert.deepEqual(
    rows.filter((r) => r.name === a.name || r.name === b.name).map((r) => [r.name, r.router, r.routerPort]),
    [[a.name, true, a.routerPort], [b.name, false, 0]],
  );
});

test('--no-router with a router flag is refused before anything starts', async () => {
  // etcd on a port nothing listens on: a refusal that got as far as etcd would say VIKING_E_ETCD_UNAVAILABLE instead.
  const host = await runCli(['host', '--no-router', '--router-port', '8080', '--etcd', 'http://127.0.0.1:1', '--name', uniqueName('nr'), '--ip', '127.0.0.1', '--data-dir', path.join(work, 'nr')]);
  assert.equal(host.code, 1);
  assert.match(host.stderr, /VIKING_E_FLAG_CONFLICT.*--router-port/);
  const up = await runCli(['up', '--no-router', '--https-port', '8443', '--router-workers', '2', '--data-dir', path.join(work, 'nr-up'), '--etcd-port', '1']);
  assert.equal(up.code, 1);
  assert.match(up.stderr, /VIKING_E_FLAG_CONFLICT.*--https-port, --router-workers/);
});

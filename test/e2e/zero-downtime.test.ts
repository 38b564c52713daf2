/**
 * Zero-downtime deploys, end to end on the real parts: etcd, a `viking host`
 * process (router with its default worker processes), Docker, and the CLI.
 *
 * While keep-alive clients hammer the router without pause (GETs, and POSTs
 * with a body, which the router may never replay), the stack is pushed ten
 * times in a row with a changed app; every single request is counted and
 * must be a 200 from some release. Then two broken releases
 * (one failing its health check, one crashing at start) are pushed under the
 * same load: both pushes fail with the reason and the container's last log
 * lines, and the last good release never stops serving. A `service: true`
 * node keeps its one container through all of it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts, docker } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { Load } from '../helpers/load.js';
import { nodeAppVikingfile } from '../helpers/two-hosts.js';

const HELLO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../vikingfiles/hello');
const PUSHES = 10;
const CLIENTS = 16;

let etcd: TestEtcd;
let host: HostProcess;
let work: string;
let app: string;
const hostName = uniqueName('zd');
const stack = uniqueName('zd');
const domain = `${stack}.zero.test`;
let load: Load | undefined;

function vikingfile(): string {
  return nodeAppVikingfile({
    stack,
    domains: [domain],
    scale: 2,
    more: `  cache:
    image: viking/busybox
    expose: [8080]
    run: [httpd, -f, -p, "8080", -h, /tmp]
    service: true
`,
  });
}

/**
 * The app under test answers after 30 ms, so requests are always in flight,
 * and has no SIGTERM handler: like most apps, it dies at once when stopped.
 * Only routers that stopped sending first, plus a drain, make that safe.
 */
const goodServer = `const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const message = fs.readFileSync(__dirname + '/message.txt', 'utf8').trim();
http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); return res.end('ok'); }
  req.resume();
  req.on('end', () => setTimeout(() => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('Hello from ' + os.hostname() + ': ' + message + '\\n');
  }, 30));
}).listen(Number(process.env.PORT || 80));
`;

/** The last release number pushed that serves (-1: none yet) and its tag, so each test can start from whatever ran before it. */
let lastGood = -1;
let lastGoodTag = '';

async function push(n: number, serverJs = goodServer): Promise<{ code: number; stdout: string; stderr: string }> {
  await writeFile(path.join(app, 'message.txt'), `release ${n}\n`);
  await writeFile(path.join(app, 'server.js'), serverJs);
  const res = await runCli(['push', app, '--api', host.api]);
  const tag = /now serves release (v\d+)/.exec(res.stdout)?.[1];
  if (res.code === 0 && tag) [lastGood, lastGoodTag] = [n, tag];
  return res;
}

/** Release 0 pushed and the load running through the router, unless an earlier test left both so. */
async function serving(): Promise<Load> {
  if (lastGood < 0) {
    const first = await push(0);
    assert.equal(first.code, 0, `first push failed:\n${first.stdout}\n${first.stderr}`);
  }
  if (!load) {
    const l = new Load({ port: host.routerPort, host: domain, clients: CLIENTS, ok: /from web-\d-v\d+: release \d+/, by: /from web-\d-v\d+: (release \d+)/ });
    load = l;
    await waitFor(`the load to reach release ${lastGood}`, () => (l.answeredBy.get(`release ${lastGood}`) ?? 0) > 50);
  }
  return load;
}

async function cacheContainers(): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`viking.host=${hostName}`, `viking.node=cache`] } });
  return list.map((c) => c.Id);
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-zd-'));
  app = path.join(work, 'app');
  await cp(HELLO, app, { recursive: true });
  await writeFile(path.join(app, 'Vikingfile'), vikingfile());
  etcd = await startTestEtcd();
  host = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data'), extra: ['--health-timeout', '6'] });
});

after(async () => {
  await load?.stop();
  await host?.stop();
  await removeHostContainers(hostName);
  await removeStackArtifacts(stack);
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test(`${PUSHES} consecutive pushes under continuous load fail no request`, { timeout: 300_000 }, async () => {
  const load = await serving();
  const base = lastGood;
  const service = await cacheContainers();
  assert.equal(service.length, 1);
  const times: number[] = [];
  for (let n = base + 1; n <= base + PUSHES; n++) {
    const started = Date.now();
    const before = load.ok;
    const res = await push(n);
    times.push(Date.now() - started);
    assert.equal(res.code, 0, `push ${n} failed:\n${res.stdout}\n${res.stderr}`);
    assert.equal(lastGood, n, `push ${n} says which release it serves:\n${res.stdout}`);
    assert.ok(load.ok > before, `requests kept being answered during push ${n}`);
    assert.deepEqual(load.failed, [], `failures during push ${n}`);
  }
  await waitFor('the last release to take all traffic', async () => {
    const seen = load.answeredBy.get(`release ${base + PUSHES}`) ?? 0;
    return seen > 50;
  });
  // Let the retired containers of the last push drain and stop under load too.
  await waitFor('only the last release and the service to run', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`viking.host=${hostName}`] } });
    return list.length === 3 && list.filter((c) => c.Labels['viking.node'] === 'web').every((c) => c.Labels['viking.tag'] === lastGoodTag);
  }, 30_000);
  const total = load.total;
  console.log(`# ${total} requests during ${PUSHES} pushes (push took ${times.map((t) => (t / 1000).toFixed(1)).join(', ')} s), failed: ${load.failed.length}`);
  assert.deepEqual(load.failed, [], 'no request failed');
  assert.ok(total > 1000, `enough load to mean something: ${total}`);
  for (let n = base; n <= base + PUSHES; n++) assert.ok((load.answeredBy.get(`release ${n}`) ?? 0) > 0, `release ${n} was served`);
  assert.deepEqual(await cacheContainers(), service, 'the service node was not restarted by the pushes');
});

const unhealthyServer = `const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') { console.log('health: the database is unreachable (on purpose)'); res.writeHead(500); return res.end('sick'); }
  res.end('this release must never be served');
}).listen(Number(process.env.PORT || 80), () => console.log('broken release listening'));
`;

const crashingServer = `console.log('starting the broken release');
console.error('Error: Cannot find module ./missing-config.json');
process.exit(3);
`;

test('a release failing its health check never takes traffic; the push fails with the reason and the logs', { timeout: 120_000 }, async () => {
  const load = await serving();
  const [good, goodTag] = [lastGood, lastGoodTag];
  const before = load.ok;
  const res = await push(good + 1, unhealthyServer);
  assert.equal(res.code, 1, res.stdout);
  assert.match(res.stderr, /error VIKING_E_UNHEALTHY: web\/\d on .*: health check failed: GET \/health: HTTP 500/);
  assert.match(res.stderr, /--- container log \(last \d+ lines\) ---/);
  assert.match(res.stderr, /health: the database is unreachable \(on purpose\)/);
  const crash = await push(good + 2, crashingServer);
  assert.equal(crash.code, 1, crash.stdout);
  assert.match(crash.stderr, /error VIKING_E_UNHEALTHY: web\/\d on .*(exited|health check failed)/);
  assert.match(crash.stderr, /Cannot find module \.\/missing-config\.json/);
  await waitFor('the failed releases to be withdrawn', async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`viking.host=${hostName}`] } });
    return list.length === 3;
  }, 30_000);
  const after = load.ok;
  await waitFor('more answers after the failed pushes', () => load.ok > after + 100);
  await load.stop();
  assert.ok(load.ok > before, 'requests kept being answered');
  assert.deepEqual(load.failed, [], 'no request failed while the broken releases came and went');
  assert.equal(load.answeredBy.get(`release ${good + 1}`), undefined, 'the unhealthy release never served');
  assert.equal(load.answeredBy.get(`release ${good + 2}`), undefined, 'the crashing release never served');
  const record = (await (await fetch(`${host.api}/v1/stack/${stack}`, { headers: { authorization: `Bearer ${host.token}` } })).json()) as { current: string };
  assert.equal(record.current, goodTag, 'the stack still points at the last good release');
});

/**
 * End to end on a running two-host cluster (etcd, a master `viking host` on
 * 127.0.0.1 and a worker on 127.0.0.2, real Docker), driven only through the
 * `viking` CLI, checked through Docker, etcd and HTTP via the routers:
 *
 *   logs -f streams lines from both replicas, on both hosts, as they are written;
 *   scale up and down changes the running containers and the routes;
 *   rollback serves the previous release's body again;
 *   env set restarts the node and the app answers with the new value;
 *   rm removes containers, routes and keys;
 *   and each of these without a token gets 401 and changes nothing.
 *
 * The tests share one cluster and run in order, each starting from the state
 * the previous one left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { NO_CONFIG, VIKING_BIN, runCli, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { placedHosts } from '../../lib/store/placements.js';

const HELLO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../vikingfiles/hello');

let etcd: TestEtcd;
let client: Etcd3;
let h1: HostProcess;
let h2: HostProcess;
let work: string;
const name1 = uniqueName('ops1');
const name2 = uniqueName('ops2');
const stack = uniqueName('ops');
const domain = `${stack}.local`;
const NO_TOKEN = { VIKING_TOKEN: '' };

const get = (port: number, path = '/', host = domain) => routerGet({ port, path, host });

/** vikingfiles/hello under a unique stack and domain, logging every request it answers. */
async function helloCopy(dir: string, message: string): Promise<string> {
  await cp(HELLO, dir, { recursive: true });
  const vf = await readFile(path.join(dir, 'Vikingfile'), 'utf8');
  await writeFile(
    path.join(dir, 'Vikingfile'),
    vf.replace('name: hello', `name: ${stack}`).replace('viking:hello/app', `viking:${stack}/app`).replace('- hello.local', `- ${domain}`),
  );
  const server = await readFile(path.join(dir, 'server.js'), 'utf8');
  await writeFile(
    path.join(dir, 'server.js'),
    server.replace("  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });", "  console.log(`${req.method} ${req.url}`);\n  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });"),
  );
  await writeFile(path.join(dir, 'message.txt'), `${message}\n`);
  return dir;
}

const api = (): string[] => ['--api', h1.api];

/** The stack's containers on the daemon, by tag (label viking.stack). */
async function containers(): Promise<Array<{ tag: string; node: string; instance: string; host: string; running: boolean }>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`viking.stack=${stack}`] } });
  return list.map((c) => ({
    tag: c.Labels['viking.tag'] ?? '',
    node: c.Labels['viking.node'] ?? '',
    instance: c.Labels['viking.instance'] ?? '',
    host: c.Labels['viking.host'] ?? '',
    running: c.State === 'running',
  }));
}

async function currentTag(): Promise<string> {
  const text = await client.get(`/stack/${stack}`).string();
  return (JSON.parse(text ?? '{}') as { current: string }).current;
}

/** Which replicas (hostnames like web-2-v3) answer through a router in `n` requests. */
async function answering(port: number, n = 12): Promise<{ hosts: Set<string>; bodies: string[] }> {
  const hosts = new Set<string>();
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await get(port);
    bodies.push(res.body);
    const m = /from (\S+):/.exec(res.body);
    if (m) hosts.add(m[1]!);
  }
  return { hosts, bodies };
}

function assert401(r: { code: number; stderr: string }, what: string): void {
  assert.equal(r.code, 1, `${what} without a token must fail`);
  assert.match(r.stderr, /error VIKING_E_UNAUTHORIZED/, `${what}: ${r.stderr}`);
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-ops-'));
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  h1 = await startHostProcess({ name: name1, etcd: etcd.url, master: true, dataDir: path.join(work, 'd1') });
  h2 = await startHostProcess({ name: name2, etcd: etcd.url, ip: '127.0.0.2', dataDir: path.join(work, 'd2') });
  await waitFor('both hosts registered', async () => (await client.getAll().prefix('/host/').keys()).length === 2);
});

after(async () => {
  await h2?.stop();
  await h1?.stop();
  await removeHostContainers(name1);
  await removeHostContainers(name2);
  await removeStackArtifacts(stack);
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

test('without a token a push is refused with 401 and deploys nothing; with one it deploys', async () => {
  const v1 = await helloCopy(path.join(work, 'v1'), 'first release');
  assert401(await runCli(['push', v1, ...api()], NO_TOKEN), 'push');
  assert401(await runCli(['push', v1, ...api(), '--token', 'vkt_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']), 'push with a made-up token');
  assert.equal(await client.get(`/stack/${stack}`).string(), null, 'no stack record was made');
  assert.deepEqual(await containers(), []);
  for (const cmd of [['ps'], ['stacks'], ['info'], ['hosts'], ['releases', stack], ['logs', stack, 'web'], ['token', 'list']]) {
    assert401(await runCli([...cmd, ...api()], NO_TOKEN), cmd.join(' '));
  }

  const push1 = await runCli(['push', v1, ...api()]);
  assert.equal(push1.code, 0, `push v1:\n${push1.stdout}\n${push1.stderr}`);
  const push2 = await runCli(['push', await helloCopy(path.join(work, 'v2'), 'second release'), ...api()]);
  assert.equal(push2.code, 0, `push v2:\n${push2.stdout}\n${push2.stderr}`);
  assert.match((await get(h1.routerPort)).body, /second release/);
});

test('hosts, info and releases show the cluster as tables and as JSON', async () => {
  const hosts = await runCli(['hosts', ...api(), '--json']);
  assert.equal(hosts.code, 0, hosts.stderr);
  const rows = JSON.parse(hosts.stdout) as Array<{ name: string; ip: string; leader: boolean }>;
  assert.deepEqual(rows.map((r) => [r.name, r.ip, r.leader]).sort(), [[name1, '127.0.0.1', true], [name2, '127.0.0.2', false]].sort());
  const table = await runCli(['hosts', ...api()]);
  assert.match(table.stdout, /^HOST\s+IP\s+ROLE\s+ETCD\s+STATE\s+JOBS/m);
  // One etcd on 127.0.0.1: the host on that address holds the member, the other is a client of it.
  assert.match(table.stdout, new RegExp(`^${name1}\\s+127\\.0\\.0\\.1\\s+leader\\s+member\\s+up\\s+1`, 'm'));
  assert.match(table.stdout, new RegExp(`^${name2}\\s+127\\.0\\.0\\.2\\s+worker\\s+client\\s+up\\s+1`, 'm'));

  const info = await runCli(['info', ...api(), '--json']);
  const i = JSON.parse(info.stdout) as { leader: string; hosts: { total: number }; jobs: { byState: Record<string, number> } };
  assert.equal(i.leader, name1);
  assert.equal(i.hosts.total, 2);
  assert.equal(i.jobs.byState.running, 2);

  const rel = await runCli(['releases', stack, ...api()]);
  assert.match(rel.stdout, /^v1\s+-\s+/m);
  assert.match(rel.stdout, /^v2\s+\*\s+/m);
});

test('logs -f shows lines from both replicas, on both hosts, as they are written', async () => {
  const ps = JSON.parse((await runCli(['ps', stack, ...api(), '--json'])).stdout) as Array<{ host: string }>;
  assert.deepEqual(ps.map((r) => r.host).sort(), [name1, name2].sort(), 'one replica on each host, so logs cross hosts');

  const child = spawn(process.execPath, [VIKING_BIN, 'logs', stack, 'web', '-f', ...api()], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VIKING_CONFIG: NO_CONFIG, VIKING_TOKEN: h1.token },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // The backlog first: each replica's start-up line, prefixed with its replica.
    await waitFor('both replicas\' start-up lines', () => /^web\.1 \| hello listening/m.test(out) && /^web\.2 \| hello listening/m.test(out), 20_000);
    const marker = `/mark-${Date.now()}`;
    assert.ok(!out.includes(marker));
    // Then new lines, as the app writes them: keep sending until both replicas logged the marker.
    await waitFor('the marker from both replicas', async () => {
      await get(h1.routerPort, marker);
      return new RegExp(`^web\\.1 \\| GET ${marker}$`, 'm').test(out) && new RegExp(`^web\\.2 \\| GET ${marker}$`, 'm').test(out);
    }, 20_000, 100);
    assert.equal(child.exitCode, null, 'logs -f keeps running');
  } finally {
    child.kill('SIGTERM');
  }

  const once = await runCli(['logs', stack, 'web', '--tail', '5', ...api()]);
  assert.equal(once.code, 0, once.stderr);
  assert.match(once.stdout, /^web\.1 \| GET \/mark-/m);
  assert.match(once.stdout, /^web\.2 \| GET \/mark-/m);
});

test('scale up and down changes the running containers and the routes', async () => {
  const tag = await currentTag();
  assert401(await runCli(['scale', stack, 'web=3', ...api()], NO_TOKEN), 'scale');
  assert.equal((await containers()).filter((c) => c.tag === tag).length, 2, 'nothing changed');

  const up = await runCli(['scale', stack, 'web=3', ...api()]);
  assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /web: 2 -> 3 replica\(s\)/);
  const running = (await containers()).filter((c) => c.tag === tag && c.running);
  assert.deepEqual(running.map((c) => c.instance).sort(), ['1', '2', '3']);
  await waitFor('the third replica to answer through the router', async () => (await answering(h1.routerPort)).hosts.has(`web-3-${tag}`));

  const down = await runCli(['scale', stack, 'web=1', ...api()]);
  assert.equal(down.code, 0, `${down.stdout}\n${down.stderr}`);
  // The command returns once the removed replicas left the routes.
  assert.equal((await client.getAll().prefix(`/ports/${stack}/`).keys()).length, 1);
  await waitFor('only web-1 answering', async () => {
    const a = await answering(h1.routerPort);
    return a.hosts.size === 1 && a.hosts.has(`web-1-${tag}`);
  });
  await waitFor('the removed containers to be gone', async () => (await containers()).filter((c) => c.tag === tag).length === 1);

  const back = await runCli(['scale', stack, 'web=2', ...api()]);
  assert.equal(back.code, 0, back.stderr);
  const stackRecord = JSON.parse((await client.get(`/stack/${stack}`).string()) ?? '{}') as { scale?: Record<string, unknown> };
  assert.deepEqual(stackRecord.scale, {}, 'back at the Vikingfile\'s scale: no override kept');
});

test('rollback serves the previous release\'s body again through the router', async () => {
  assert401(await runCli(['rollback', stack, ...api()], NO_TOKEN), 'rollback');
  assert.equal(await currentTag(), 'v2');
  assert.match((await get(h1.routerPort)).body, /second release/);

  const r = await runCli(['rollback', stack, ...api()]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /rolled back to v1 as release v3/);
  assert.equal(await currentTag(), 'v3');
  // Any host's router serves it.
  for (const port of [h1.routerPort, h2.routerPort]) {
    await waitFor('the first release\'s body', async () => /first release/.test((await get(port)).body), 5000);
  }
  await waitFor('v2\'s containers retired', async () => (await containers()).every((c) => c.tag === 'v3'));

  const again = await runCli(['rollback', stack, 'v3', ...api()]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /VIKING_E_NO_PREVIOUS_RELEASE/);
});

test('env set restarts the node and the app sees the new value; unset brings the Vikingfile\'s back', async () => {
  assert401(await runCli(['env', stack, 'set', 'GREETING=Howdy', ...api()], NO_TOKEN), 'env set');
  assert.match((await get(h1.routerPort)).body, /^Hello from/);
  assert.equal(await currentTag(), 'v3');

  const set = await runCli(['env', stack, 'set', 'GREETING=Howdy', ...api()]);
  assert.equal(set.code, 0, `${set.stdout}\n${set.stderr}`);
  assert.match(set.stdout, /runs release v4 with the new environment/);
  await waitFor('the new greeting from both replicas', async () => {
    const a = await answering(h1.routerPort);
    return a.bodies.every((b) => b.startsWith('Howdy from') && b.includes('first release')) && a.hosts.size === 2;
  }, 10_000);
  const shown = JSON.parse((await runCli(['env', stack, ...api(), '--json'])).stdout) as { overrides: Record<string, string> };
  assert.deepEqual(shown.overrides, { GREETING: 'Howdy' });

  const unset = await runCli(['env', stack, 'unset', 'GREETING', ...api()]);
  assert.equal(unset.code, 0, unset.stderr);
  await waitFor('the Vikingfile\'s greeting again', async () => (await answering(h1.routerPort, 4)).bodies.every((b) => b.startsWith('Hello from')), 10_000);
});

test('rm removes containers, routes and keys, by a deployer of the stack; without a token, scope or confirmation nothing changes', async () => {
  assert401(await runCli(['rm', stack, '--yes', ...api()], NO_TOKEN), 'rm');
  const unconfirmed = await runCli(['rm', stack, ...api()]);
  assert.equal(unconfirmed.code, 1);
  assert.match(unconfirmed.stderr, /VIKING_E_CONFIRM_REQUIRED/);
  assert.ok(await client.get(`/stack/${stack}`).string(), 'the stack is still there');
  assert.equal((await get(h1.routerPort)).status, 200);

  // A deployer of other stacks is refused; a deployer of this one removes it, its token asking
  // every host for its containers and their cleanup (the host-local routes check it too).
  const elsewhere = JSON.parse((await runCli(['token', 'create', 'deploy-else', '--role', 'deployer', '--stacks', 'nothing-*', ...api(), '--json'])).stdout) as { token: string };
  const refused = await runCli(['rm', stack, '--yes', ...api()], { VIKING_TOKEN: elsewhere.token });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /VIKING_E_FORBIDDEN: forbidden: needs stack:rm on stack/);
  assert.ok(await client.get(`/stack/${stack}`).string(), 'the stack is still there');
  const deployer = JSON.parse((await runCli(['token', 'create', 'deploy-it', '--role', 'deployer', '--stacks', stack, ...api(), '--json'])).stdout) as { token: string };
  const r = await runCli(['rm', stack, '--yes', ...api()], { VIKING_TOKEN: deployer.token });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /FORBIDDEN|403/, 'no host refused the deployer\'s cleanup');
  assert.deepEqual(await containers(), [], 'every container is gone when rm returns');
  assert.equal((await placedHosts(client, stack)).size, 0, 'no job of the stack is placed');
  for (const prefix of [`/proc/${stack}/`, `/run/${stack}/`, `/ports/${stack}/`, `/images/${stack}/`, `/stack/${stack}`, `/domains/${domain}`]) {
    assert.deepEqual(await client.getAll().prefix(prefix).keys(), [], `${prefix} is empty`);
  }
  await waitFor('the route to be gone', async () => (await get(h1.routerPort)).status === 404, 5000);
  const gone = await runCli(['ps', stack, ...api(), '--json']);
  assert.deepEqual(JSON.parse(gone.stdout), []);
});

test('token create, configure into a 0600 file, and a revoked token gets 401', async () => {
  const made = await runCli(['token', 'create', 'alice', ...api(), '--json']);
  assert.equal(made.code, 0, made.stderr);
  const alice = JSON.parse(made.stdout) as { id: string; token: string };
  assert.match(alice.token, /^vkt_[a-f0-9]{12}_/);
  const stored = await client.get(`/tokens/${alice.id}`).string();
  // The secret is all after the id: it may itself hold '_' (base64url), so no split('_').
  const secret = /^vkt_[a-f0-9]{12}_(.+)$/.exec(alice.token)![1]!;
  assert.ok(stored && secret.length >= 16 && !stored.includes(secret), 'only a hash is stored');

  const config = path.join(work, 'cfg', 'config.json');
  const conf = await runCli(['configure', '--api', h2.api, '--token', alice.token], { VIKING_CONFIG: config, VIKING_TOKEN: '' });
  assert.equal(conf.code, 0, conf.stderr);
  assert.match(conf.stdout, /token 'alice', answered by host/);
  assert.equal((await stat(config)).mode & 0o777, 0o600);
  // No flag, no env: the config file names the API (the worker's) and the token.
  const viaConfig = await runCli(['info', '--json'], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' });
  assert.equal(viaConfig.code, 0, viaConfig.stderr);
  assert.equal((JSON.parse(viaConfig.stdout) as { host: string }).host, name2);

  const revoke = await runCli(['token', 'revoke', alice.id, ...api()]);
  assert.equal(revoke.code, 0, revoke.stderr);
  assert401(await runCli(['info'], { VIKING_CONFIG: config, VIKING_TOKEN: '', VIKING_API: '' }), 'info with a revoked token');
});

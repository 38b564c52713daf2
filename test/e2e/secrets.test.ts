/**
 * Secrets end to end on the real parts: etcd, a master `viking host`
 * process, the hello stack pushed through the CLI and served through the
 * router under continuous load while `viking secrets set` rolls it.
 *
 *   - the running app sees the value (GREETING comes back in its answers);
 *   - no key anywhere in etcd holds a value in clear (the whole keyspace is
 *     read), /v1/stack, /v1/env and the host's log do not either;
 *   - `ls` prints names only, `--reveal` the values;
 *   - the rolling restart drops no request;
 *   - and what stays visible, as the README says: docker inspect on the host.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startHostProcess, runCli, type HostProcess } from '../helpers/host-process.js';
import { baseImages, docker, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { routerGet } from '../helpers/http.js';
import { helloCopy } from '../helpers/hello.js';
import { Load } from '../helpers/load.js';
import { connectEtcd } from '../../lib/store/client.js';
import { secretsKey } from '../../lib/store/keys.js';
import type { SecretsRecord } from '../../lib/store/records.js';
import type { Etcd3 } from 'etcd3';

const stack = uniqueName('sec');
const domain = `${stack}.local`;
const hostName = uniqueName('sec-h');
const greeting = `Sealed${randomBytes(6).toString('hex')}`;
const password = `pw-${randomBytes(9).toString('hex')}`;
let etcd: TestEtcd;
let client: Etcd3;
let host: HostProcess;
let work: string;

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-secrets-'));
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  host = await startHostProcess({ name: hostName, etcd: etcd.url, master: true, dataDir: path.join(work, 'data'), extra: ['--lease-ttl', '2'] });
  const dir = await helloCopy({ dir: path.join(work, 'src'), stack, message: 'with secrets', domain });
  const push = await runCli(['push', dir, '--api', host.api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);
});

after(async () => {
  await host?.stop();
  await removeHostContainers(hostName);
  await removeStackArtifacts(stack);
  client?.close();
  await etcd?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Every key and value in etcd, as text. */
async function wholeEtcd(): Promise<string> {
  const all = await client.getAll().prefix('').strings();
  return Object.entries(all).map(([k, v]) => `${k}=${v}`).join('\n');
}

test('secrets set: the app sees the value after a rolling restart that drops nothing; etcd holds only ciphertext', async () => {
  const load = new Load({ port: host.routerPort, host: domain, ok: /from web-/ });
  await waitFor('load to get answers', () => load.ok > 20);
  const set = await runCli(['secrets', stack, 'set', `GREETING=${greeting}`, `DB_PASSWORD=${password}`, '--api', host.api]);
  await waitFor('some answers after the restart', async () => (await routerGet({ port: host.routerPort, host: domain })).body.startsWith(greeting), 10_000);
  await load.stop();
  assert.equal(set.code, 0, `secrets set failed:\n${set.stdout}\n${set.stderr}`);
  assert.match(set.stdout, /runs release v2 with its secrets: DB_PASSWORD, GREETING/);
  assert.ok(!set.stdout.includes(greeting) && !set.stdout.includes(password), 'progress never prints a value');
  assert.deepEqual(load.failed.slice(0, 5), [], `${load.failed.length} of ${load.ok + load.failed.length} requests failed during the restart`);
  process.stdout.write(`# rolling restart for secrets: ${load.ok} requests answered, ${load.failed.length} failed\n`);

  const res = await routerGet({ port: host.routerPort, host: domain });
  assert.ok(res.body.startsWith(`${greeting} from web-`), res.body);

  const everything = await wholeEtcd();
  assert.ok(!everything.includes(greeting) && !everything.includes(password), 'no etcd key or value holds a secret in clear');
  const record = JSON.parse((await client.get(secretsKey(stack)).string())!) as SecretsRecord;
  assert.deepEqual(record.secrets.map((s) => s.name), ['DB_PASSWORD', 'GREETING']);
  for (const s of record.secrets) {
    assert.ok(!Buffer.from(s.data, 'base64').toString('latin1').includes(password.slice(3)), 'ciphertext, not an encoding of the value');
    assert.equal(Buffer.from(s.iv, 'base64').length, 12);
    assert.equal(Buffer.from(s.tag, 'base64').length, 16);
  }
  const keyFile = await stat(path.join(work, 'data', 'secrets.key'));
  assert.equal(keyFile.mode & 0o777, 0o600, 'the key file is for root only');
});

test('ls prints names only, --reveal the values; /v1/stack, /v1/env and the host log never hold them', async () => {
  const ls = await runCli(['secrets', stack, '--api', host.api]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^NAME\s*\nDB_PASSWORD\s*\nGREETING\s*\n$/);
  const json = await runCli(['secrets', stack, 'ls', '--json', '--api', host.api]);
  assert.deepEqual(JSON.parse(json.stdout).secrets, [{ name: 'DB_PASSWORD' }, { name: 'GREETING' }]);
  const reveal = await runCli(['secrets', stack, 'ls', '--reveal', '--api', host.api]);
  assert.equal(reveal.code, 0, reveal.stderr);
  assert.match(reveal.stdout, new RegExp(`DB_PASSWORD\\s+${password}`));
  assert.match(reveal.stdout, new RegExp(`GREETING\\s+${greeting}`));

  const auth = { authorization: `Bearer ${host.token}` };
  for (const route of [`/v1/stack/${stack}`, `/v1/env/${stack}`, `/v1/ps?stack=${stack}`, `/v1/secrets/${stack}`]) {
    const body = await (await fetch(`${host.api}${route}`, { headers: auth })).text();
    assert.ok(!body.includes(greeting) && !body.includes(password), `${route} shows no value`);
  }
  assert.ok(!host.output().includes(greeting) && !host.output().includes(password), 'the host log holds no value');
  const noToken = await fetch(`${host.api}/v1/secrets/${stack}?reveal=1`);
  assert.equal(noToken.status, 401);

  // What the README says stays visible: root on the host reads a container's env.
  const list = await docker.listContainers({ filters: { label: [`viking.host=${hostName}`, `viking.stack=${stack}`] } });
  const info = await docker.getContainer(list[0]!.Id).inspect();
  assert.ok(info.Config.Env.includes(`DB_PASSWORD=${password}`));
});

test('unset removes a secret and restarts without it; a bad name is refused before anything changes', async () => {
  const bad = await runCli(['secrets', stack, 'set', 'VIKING_X=1', '--api', host.api]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr + bad.stdout, /VIKING_E_BAD_REQUEST/);
  const unset = await runCli(['secrets', stack, 'unset', 'GREETING', '--api', host.api]);
  assert.equal(unset.code, 0, unset.stderr);
  const res = await routerGet({ port: host.routerPort, host: domain });
  assert.ok(res.body.startsWith('Hello from web-'), `the Vikingfile's GREETING is back: ${res.body}`);
  const ls = await runCli(['secrets', stack, '--json', '--api', host.api]);
  assert.deepEqual(JSON.parse(ls.stdout).secrets, [{ name: 'DB_PASSWORD' }]);
});

/**
 * The cluster's secrets key on real etcd and a real file system: the first
 * master makes it (0600, its fingerprint in etcd, never the key); a second
 * master finds the fingerprint and makes no key of its own; a copied file
 * works; a different key is refused; two masters starting at once make one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { connectEtcd } from '../../lib/store/client.js';
import { SECRETS_KEY_ID_KEY } from '../../lib/store/keys.js';
import { loadSecretsKey } from '../../lib/secrets/key-file.js';
import type { Etcd3 } from 'etcd3';

let etcd: TestEtcd;
let client: Etcd3;
let dir: string;

before(async () => {
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  dir = await mkdtemp(path.join(os.tmpdir(), 'viking-seckey-'));
});

after(async () => {
  client?.close();
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the first master makes the key; others find its fingerprint and need a copy', async () => {
  const first = await loadSecretsKey(client, path.join(dir, 'a', 'secrets.key'), true);
  assert.ok(first.key);
  const file = path.join(dir, 'a', 'secrets.key');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').length, 32);
  assert.equal(await client.get(SECRETS_KEY_ID_KEY).string(), first.key.id);
  const everything = Object.values(await client.getAll().prefix('').buffers());
  assert.ok(!everything.some((v) => v.includes(first.key!.bytes)), 'the key itself is not in etcd');

  const second = await loadSecretsKey(client, path.join(dir, 'b', 'secrets.key'), true);
  assert.equal(second.key, undefined, 'a second master makes no key of its own');
  assert.match(second.why, /copy secrets\.key from a master/);

  await copyFile(file, path.join(dir, 'copy.key'));
  const copied = await loadSecretsKey(client, path.join(dir, 'copy.key'), false);
  assert.equal(copied.key?.id, first.key.id);

  await writeFile(path.join(dir, 'other.key'), randomBytes(32).toString('base64'));
  const other = await loadSecretsKey(client, path.join(dir, 'other.key'), false);
  assert.equal(other.key, undefined);
  assert.match(other.why, /not the cluster's/);
});

test('two masters starting at once on an empty cluster end with one key', async () => {
  await client.delete().key(SECRETS_KEY_ID_KEY);
  const [a, b] = await Promise.all([
    loadSecretsKey(client, path.join(dir, 'x', 'secrets.key'), true),
    loadSecretsKey(client, path.join(dir, 'y', 'secrets.key'), true),
  ]);
  assert.equal([a.key, b.key].filter(Boolean).length, 1, `${a.why} / ${b.why}`);
});

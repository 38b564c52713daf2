/**
 * The dashboard's live feed on a real etcd: every tab of a host shares ONE
 * etcd watch (counted by etcd itself), a burst of changes reaches each tab
 * coalesced, a tab hears only about its token's stacks through
 * GET /v1/events, and the watch closes when the last tab leaves. A push's
 * stages reach every tab: /v1/events names its stack, GET /v1/pushes/:stack
 * shows its record, kept under a lease so it vanishes after a grace period.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import type { FastifyInstance } from 'fastify';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { LiveFeed, classifyKey, type LiveChange } from '../../lib/api/live-feed.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { pack } from 'tar-fs';
import { GRACE_S, pushKey, type PushRecord } from '../../lib/api/push-live.js';

let etcd: TestEtcd;
let client: Etcd3;
let app: FastifyInstance;

/** etcd's own count of open watchers. */
async function etcdWatchers(): Promise<number> {
  const text = await (await fetch(`${etcd.url}/metrics`)).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  assert.ok(m, 'etcd reports its watchers');
  return Number(m[1]);
}

before(async () => {
  etcd = await startTestEtcd('livefeed');
  client = connectEtcd(etcd.url);
  app = createApi({ client, docker: new Docker(), dataDir: '/nonexistent', hostName: 'live-feed', maxUploadBytes: 1, routerPort: 1 });
  await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app?.close();
  client?.close();
  await etcd?.stop();
});

test('classifyKey: what a key means to the dashboard', () => {
  const cases: Array<[string, ReturnType<typeof classifyKey>]> = [
    ['/host/h1', { cluster: true }],
    ['/drain/h1', { cluster: true }],
    ['/stack/shop', { stack: 'shop' }],
    ['/locks/shop', { stack: 'shop' }],
    ['/proc/shop/v1/web/1', { cluster: true, stack: 'shop' }],
    ['/run/shop/v1/web/1', { cluster: true, stack: 'shop' }],
    ['/ports/shop/web/80/tcp/127.0.0.1/3000/v1-1', { cluster: true, stack: 'shop' }],
    ['/deploy/h1/shop/v1/web/1', { cluster: true, stack: 'shop' }],
    ['/domains/shop.example.com', { routes: true }],
    ['/certs/status/shop.example.com', { routes: true }],
    ['/stack/__proto__x', {}],
    ['/stack/Not_A_Name', {}],
    ['/pushes/shop/lx1-abc', { stack: 'shop' }],
    ['/audit/000001-1-abc', undefined],
    ['/tokens/abc', undefined],
    ['/certs/acme/account', undefined],
  ];
  for (const [key, want] of cases) assert.deepEqual(classifyKey(key), want, key);
});

test('three tabs share one etcd watch; a burst of changes reaches each of them coalesced', async () => {
  const feed = new LiveFeed(client);
  const before = await etcdWatchers();
  const got: LiveChange[][] = [[], [], []];
  const offs = got.map((list) => feed.subscribe((c) => list.push(c)));
  await waitFor('the watch to open', () => feed.watching, 5000);
  assert.equal((await etcdWatchers()) - before, 1, 'one watch for three tabs');
  for (let i = 0; i < 20; i++) await client.put(`/run/feedstack/v1/web/${i}`).value('h1');
  await waitFor('every tab to hear of it', () => got.every((l) => l.some((c) => c.stacks.includes('feedstack') && c.cluster)), 5000);
  for (const list of got) assert.ok(list.length <= 5, `20 puts coalesced into ${list.length} events`);
  for (const off of offs) off();
  await waitFor('the watch to close with the last tab', async () => !feed.watching && (await etcdWatchers()) === before, 5000);
  await feed.stop();
});

test('GET /v1/events: a token scoped to one stack hears only about that stack', async () => {
  const scoped = (await createToken(client, 'scoped', 'test', { role: 'reader', stacks: ['mine'] })).token;
  const address = app.server.address() as { port: number };
  const abort = new AbortController();
  const res = await fetch(`http://127.0.0.1:${address.port}/v1/events`, { headers: { authorization: `Bearer ${scoped}` }, signal: abort.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  const read = async (until: RegExp): Promise<void> => {
    while (!until.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  };
  await read(/event: hello/);
  await client.put('/stack/theirs').value('{}');
  await client.put('/stack/mine').value('{}');
  await read(/"mine"/);
  assert.doesNotMatch(text, /theirs/);
  assert.doesNotMatch(text, /"cluster":true/);
  abort.abort();
});

test('a push shows its stages to every tab: /v1/events names its stack, /v1/pushes/:stack has them, under a lease', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-livepush-'));
  const pushApi = createApi({ client, docker: new Docker(), dataDir: dir, hostName: 'live-push', maxUploadBytes: 1 << 20, routerPort: 1 });
  try {
    await pushApi.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(pushApi.server.address() as { port: number }).port}`;
    const token = (await createToken(client, 'pusher', 'test')).token;
    const headers = { authorization: `Bearer ${token}` };
    const abort = new AbortController();
    const events = await fetch(`${base}/v1/events`, { headers, signal: abort.signal });
    const reader = events.body!.getReader();
    let text = '';
    const read = async (until: RegExp): Promise<void> => {
      while (!until.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await read(/event: hello/);
    // A real push through the API, of an image nobody built: it gets past the checks, then fails.
    const src = path.join(dir, 'src');
    await mkdir(src);
    await writeFile(path.join(src, 'Vikingfile'), "viking: { name: livepush }\ndeploy:\n  web: { image: 'viking:nowhere/app', expose: [80] }\n");
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => pack(src).on('data', (c: unknown) => chunks.push(c as Buffer)).on('end', resolve).on('error', reject));
    const pushed = await fetch(`${base}/v1/push`, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-tar' }, body: Buffer.concat(chunks) });
    const lines = (await pushed.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string; message: string });
    assert.equal(lines.at(-1)?.type, 'error');
    await read(/"livepush"/);
    abort.abort();
    const records = await waitFor('the ended push record', async () => {
      const r = (await (await fetch(`${base}/v1/pushes/livepush`, { headers })).json()) as PushRecord[];
      return r[0]?.state === 'failed' ? r : undefined;
    });
    assert.equal(records.length, 1);
    const rec = records[0]!;
    assert.equal(rec.stack, 'livepush');
    assert.equal(rec.host, 'live-push');
    assert.equal(rec.stages[0]?.stage, 'vikingfile');
    assert.ok(rec.output.some((l) => l.startsWith('vikingfile: received')), rec.output.join('\n'));
    assert.match(rec.error ?? '', /^VIKING_E_/);
    // The record lives on a lease of its own: it goes GRACE_S after the push ended.
    const kv = (await client.get(pushKey('livepush', rec.id)).exec()).kvs[0]!;
    assert.notEqual(String(kv.lease), '0');
    const left = Number((await (client as any).leaseClient.leaseTimeToLive({ ID: kv.lease })).TTL);
    assert.ok(left > 0 && left <= GRACE_S, `the record's lease has ${left} s left`);
  } finally {
    await pushApi.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * Every host's router serves every domain: two `viking host` processes on
 * 127.0.0.2 and 127.0.0.3 share one etcd; a stack with a two-replica app and
 * a static website is pushed to the first host only. Both routers reach
 * both replicas (one on each host) and serve the website with the same
 * bytes and ETags, the second one from files it fetched from the first.
 * vikingfiles/site (a website-only stack) is pushed to the second host and
 * served by both. When the first host goes away, the second keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, type HostProcess } from '../helpers/host-process.js';
import { startTwoHosts, nodeAppVikingfile, type TwoHosts } from '../helpers/two-hosts.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd, readPrefix } from '../../lib/store/client.js';
import { PREFIX } from '../../lib/store/keys.js';
import type { RouterAck } from '../../lib/store/records.js';

const HELLO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../vikingfiles/hello');
const SITE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../vikingfiles/site');

let cluster: TwoHosts;
let hostA: HostProcess;
let hostB: HostProcess;
let work: string;
const stack = uniqueName('two');
const web = `web.${stack}.test`;
const docs = `docs.${stack}.test`;

async function get(ip: string, port: number, host: string, urlPath = '/'): Promise<{ status: number; body: string; etag: string | undefined }> {
  const res = await routerGet({ ip, port, host, path: urlPath });
  return { status: res.status, body: res.body, etag: res.headers.etag };
}

before(async () => {
  cluster = await startTwoHosts({ prefix: 'rt', stack });
  ({ a: hostA, b: hostB, work } = cluster);
});

after(async () => {
  await cluster?.stop();
});

test('a push to one host is served by the routers of both', { timeout: 180_000 }, async () => {
  const app = path.join(work, 'app');
  await cp(HELLO, app, { recursive: true });
  await mkdir(path.join(app, 'www', 'guide'), { recursive: true });
  await writeFile(path.join(app, 'www', 'index.html'), '<h1>the docs</h1>\n');
  await writeFile(path.join(app, 'www', 'guide', 'index.html'), '<h1>the guide</h1>\n');
  await writeFile(
    path.join(app, 'Vikingfile'),
    nodeAppVikingfile({
      stack,
      domains: [web],
      scale: 2,
      more: `  docs:
    type: website
    document_root: ./www
    domains: [${docs}, "*.docs.${stack}.test"]
`,
    }),
  );
  const push = await runCli(['push', app, '--api', hostA.api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);

  for (const [label, ip, port] of [['A', '127.0.0.2', hostA.routerPort], ['B', '127.0.0.3', hostB.routerPort]] as const) {
    const seen = new Set<string>();
    await waitFor(`router ${label} to reach both replicas`, async () => {
      const res = await get(ip, port, web);
      assert.equal(res.status, 200, res.body);
      seen.add(/from (\S+):/.exec(res.body)?.[1] ?? '');
      return seen.has('web-1-v1') && seen.has('web-2-v1');
    }, 30_000);
  }

  const fromA = await get('127.0.0.2', hostA.routerPort, docs);
  assert.equal(fromA.status, 200);
  assert.match(fromA.body, /the docs/);
  const fromB = await waitFor('router B to serve the website', async () => {
    const r = await get('127.0.0.3', hostB.routerPort, `x.docs.${stack}.test`, '/guide/');
    return r.status === 200 ? r : undefined;
  }, 30_000);
  assert.match(fromB.body, /the guide/);
  const indexB = await get('127.0.0.3', hostB.routerPort, docs);
  assert.equal(indexB.etag, fromA.etag, 'the same ETag on every router');

  const client = connectEtcd(cluster.etcd.url);
  const acks = await readPrefix<RouterAck>(client, PREFIX.routers);
  client.close();
  assert.deepEqual(acks.entries.map((e) => e.value?.host).sort(), [hostA.name, hostB.name].sort(), 'both routers acknowledge what they serve');

});

test('vikingfiles/site pushed to the other host: a website-only stack, served by both routers', { timeout: 60_000 }, async () => {
  const site = path.join(work, 'site');
  await cp(SITE, site, { recursive: true });
  const push = await runCli(['push', site, '--api', hostB.api]);
  assert.equal(push.code, 0, `push failed:\n${push.stdout}\n${push.stderr}`);
  for (const [ip, port] of [['127.0.0.2', hostA.routerPort], ['127.0.0.3', hostB.routerPort]] as const) {
    const page = await waitFor(`router ${ip} to serve the site`, async () => {
      const r = await get(ip, port, 'www.site.local');
      return r.status === 200 ? r : undefined;
    }, 30_000);
    assert.match(page.body, /Served by every viking router/);
    const css = await get(ip, port, 'site.local', '/css/site.css');
    assert.match(css.body, /font-family/);
    const missing = await get(ip, port, 'site.local', '/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /Not here/, "the site's own 404.html");
  }
});

test('when the first host goes away, the second keeps serving the app and the websites', { timeout: 60_000 }, async () => {
  // The first host (the builder of the app, the leader, one replica) stops.
  await hostA.stop();
  await waitFor('router B to keep serving the app after host A left', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await get('127.0.0.3', hostB.routerPort, web);
      if (r.status !== 200 || !/from web-\d-v1/.test(r.body)) return false;
    }
    return true;
  }, 20_000);
  const docsAfter = await get('127.0.0.3', hostB.routerPort, docs);
  assert.equal(docsAfter.status, 200);
  assert.match(docsAfter.body, /the docs/);
  assert.equal((await get('127.0.0.3', hostB.routerPort, 'site.local')).status, 200);
});

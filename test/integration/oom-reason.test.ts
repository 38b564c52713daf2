/**
 * A replica the kernel kills for going over its memory limit says so in
 * `viking ps` (issue 18): a real slave runs a busybox job with a 24 MiB
 * limit that then asks for 96 MiB; Docker reports State.OOMKilled, the slave
 * records "killed: out of memory" and the row `viking ps` prints (GET /v1/ps
 * reads the same listJobs) carries it as the reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '../helpers/etcd.js';
import { baseImages, docker, removeHostContainers } from '../helpers/docker.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { connectEtcd } from '../../lib/store/client.js';
import { deployKey, procKey, runKey } from '../../lib/store/keys.js';
import { HostLease } from '../../lib/host/host-lease.js';
import { Slave } from '../../lib/slave/slave.js';
import { BUSYBOX_IMAGE } from '../../lib/docker/base-images.js';
import { listJobs } from '../../lib/api/status.js';
import { reasonText } from '../../lib/cli/commands/ps.js';
import type { HostRecord, JobSpec } from '../../lib/store/records.js';

const host = uniqueName('oom');
const stack = uniqueName('oomst');
let etcd: TestEtcd;
let client: Etcd3;
let lease: HostLease;
let slave: Slave;

const record: HostRecord = {
  name: host, ip: '127.0.0.1', tags: [], capacity: { memory: 0, cpu: 0, containers: 0 }, master: false,
  api: 'http://127.0.0.1:1', routerPort: 0, draining: false, startedAt: new Date().toISOString(), version: 'test',
};

before(async () => {
  await baseImages();
  etcd = await startTestEtcd();
  client = connectEtcd(etcd.url);
  lease = new HostLease(client, record, 3);
  await lease.start();
  slave = new Slave({ host, ip: '127.0.0.1', client, docker, lease, healthTimeoutMs: 15_000, drainMs: 100, resyncMs: 1000, backoff: { baseMs: 60_000, maxMs: 60_000, maxFailures: 3 } });
  slave.start();
});

after(async () => {
  await slave?.stop();
  await lease?.close();
  client?.close();
  await removeHostContainers(host);
  await etcd?.stop();
});

test('an OOM-killed replica shows "killed: out of memory" as its reason in viking ps', async () => {
  const job: JobSpec = {
    stack, tag: 'v1', node: 'hog', instance: 1, image: BUSYBOX_IMAGE, expose: [], volumes: [],
    // Up first (the slave sees it running), then one 96 MiB buffer under a 24 MiB limit.
    run: 'sleep 1; exec dd if=/dev/zero of=/dev/null bs=96M count=1',
    env: {}, service: false, tags: [], prefer: [], memory: 24 * 1024 * 1024, cpu: 0, scale: 1,
  };
  await client.put(procKey(job)).value(JSON.stringify(job));
  await client.put(runKey(job)).value(host);
  await client.put(deployKey(host, job)).value('');
  const row = await waitFor('the job failed with a reason', async () => (await listJobs(client, stack)).find((r) => r.node === 'hog' && r.reason !== null), 30_000, 200);
  assert.equal(row.reason, 'killed: out of memory');
  assert.match(reasonText(row, Date.now()) ?? '', /^killed: out of memory; next try in \d+s$/);
  assert.ok(['backoff', 'crash-loop'].includes(row.state), row.state);
});

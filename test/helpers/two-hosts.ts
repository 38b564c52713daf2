/**
 * The cluster most e2e tests of routing need: one etcd and two `viking host`
 * processes on 127.0.0.2 (the master) and 127.0.0.3, each with its own data
 * dir, plus the base images; and the Vikingfile of a node app built from
 * `viking/node`, which those tests push with their own domains and keys.
 *
 * stop() takes everything down again, also after a failed start: hosts,
 * their containers, the stack's images, etcd and the work dir.
 *
 * startRoutedHosts() is the lighter pair for tests of the routers
 * themselves: backend processes of the test instead of containers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestEtcd, type TestEtcd } from './etcd.js';
import { startHostProcesses, type HostProcess } from './host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts } from './docker.js';
import { uniqueName } from './wait.js';
import { startBackend, type Backend } from './router-fixtures.js';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../lib/store/client.js';

export interface TwoHosts {
  etcd: TestEtcd;
  a: HostProcess;
  b: HostProcess;
  /** A temporary folder for the test's files, removed by stop(). */
  work: string;
  stop(): Promise<void>;
}

/** Starts etcd and both hosts; `prefix` names the hosts (`<prefix>a-…`, `<prefix>b-…`) and the work dir. */
export async function startTwoHosts(o: { prefix: string; stack: string; extra?: string[] }): Promise<TwoHosts> {
  await baseImages();
  const work = await mkdtemp(path.join(os.tmpdir(), `viking-${o.prefix}-`));
  const names = { a: uniqueName(`${o.prefix}a`), b: uniqueName(`${o.prefix}b`) };
  let etcd: TestEtcd | undefined;
  const stop = async (hosts: HostProcess[] = []): Promise<void> => {
    await Promise.all(hosts.map((h) => h.stop()));
    await Promise.all([removeHostContainers(names.a), removeHostContainers(names.b)]);
    await removeStackArtifacts(o.stack);
    await etcd?.stop();
    await rm(work, { recursive: true, force: true });
  };
  try {
    etcd = await startTestEtcd();
    const [a, b] = (await startHostProcesses([
      { name: names.a, etcd: etcd.url, ip: '127.0.0.2', master: true, dataDir: path.join(work, 'a'), extra: o.extra },
      { name: names.b, etcd: etcd.url, ip: '127.0.0.3', dataDir: path.join(work, 'b'), extra: o.extra },
    ])) as [HostProcess, HostProcess];
    return { etcd, a, b, work, stop: () => stop([a, b]) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The Vikingfile of a stack whose one node `web` runs `node server.js` from
 * the pushed folder, built on viking/node, health-checked on /health.
 * `web` adds keys to that node, `more` adds nodes after it (both as YAML
 * lines, indented as they appear in the file).
 */
export function nodeAppVikingfile(o: { stack: string; domains: string[]; scale?: number; web?: string; more?: string }): string {
  return `viking:
  name: ${o.stack}
build:
  app: |
    FROM viking/node
    COPY . /srv/app
deploy:
  web:
    image: viking:${o.stack}/app
    expose: [80]
    run: node server.js
    cwd: /srv/app
${o.scale ? `    scale: ${o.scale}\n` : ''}    health: /health
    domains: [${o.domains.join(', ')}]
${o.web ?? ''}${o.more ?? ''}`;
}

/** Two hosts whose routers serve backend processes of the test (no Docker, no push): etcd, a client, the backends. */
export interface RoutedHosts {
  etcd: TestEtcd;
  client: Etcd3;
  a: HostProcess;
  b: HostProcess;
  backends: Backend[];
  work: string;
  stop(): Promise<void>;
}

/**
 * Starts etcd, `backends` backend processes, calls `routes` (to put route
 * records before any router starts), then hosts `<stack>-a` (master) and
 * `<stack>-b` on 127.0.0.1, `bExtra` given to the second.
 */
export async function startRoutedHosts(o: { stack: string; backends: number; routes: (client: Etcd3, backends: Backend[]) => Promise<unknown>; bExtra?: string[] }): Promise<RoutedHosts> {
  const etcd = await startTestEtcd(o.stack);
  const client = connectEtcd(etcd.url);
  const work = await mkdtemp(path.join(os.tmpdir(), `viking-${o.stack}-`));
  const backends: Backend[] = [];
  let hosts: HostProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(hosts.map((h) => h.stop()));
    await Promise.all(backends.map((x) => x.close()));
    client.close();
    await etcd.stop();
    await rm(work, { recursive: true, force: true });
  };
  try {
    for (let i = 1; i <= o.backends; i++) backends.push(await startBackend(`r${i}`));
    await o.routes(client, backends);
    hosts = await startHostProcesses([
      { name: `${o.stack}-a`, etcd: etcd.url, master: true, dataDir: path.join(work, 'a') },
      { name: `${o.stack}-b`, etcd: etcd.url, dataDir: path.join(work, 'b'), ...(o.bExtra ? { extra: o.bExtra } : {}) },
    ]);
    return { etcd, client, a: hosts[0]!, b: hosts[1]!, backends, work, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

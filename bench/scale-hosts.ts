/**
 * One child process of bench/scale: a slice of the simulated hosts, each
 * with its own etcd3 client (its own gRPC connections), HostLease, /deploy
 * watch and route feed (bench/sim-host.ts). It talks to bench/scale over
 * the IPC channel:
 *
 *   ← ready {started, failed, ms}       once every host of the slice is up
 *   ← acked {n}                          jobs acked, summed every 100 ms
 *   → probe {id}  ← seen {id, at[]}      when every host's route table holds
 *                                        the endpoint whose container is id
 *                                        (or on collect: the ones so far)
 *   → usage       ← usage {cpuMs, rss}
 *
 *   node dist/bench/scale-hosts.js '<json config>'
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectEtcd } from '../lib/store/client.js';
import type { RouteSnapshot } from '../lib/router/snapshot.js';
import { SimulatedHost } from './sim-host.js';

export interface SliceConfig {
  urls: string[];
  /** Host names are `<prefix><index>`, index from `from` to `from + count - 1`. */
  prefix: string;
  from: number;
  count: number;
  ttl: number;
  /** How many of the slice's hosts run a route feed (the router role); the first ones. */
  feeds: number;
}

export type ParentMessage = { t: 'probe'; id: string } | { t: 'collect'; id: string } | { t: 'usage' };
export type ChildMessage =
  | { t: 'ready'; started: number; failed: number; ms: number; error?: string }
  | { t: 'acked'; n: number }
  | { t: 'seen'; id: string; at: number[] }
  | { t: 'usage'; cpuMs: number; rss: number };

const send = (m: ChildMessage): void => void process.send?.(m);

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as SliceConfig;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'viking-bench-scale-'));
  let acked = 0;
  setInterval(() => {
    if (acked > 0) send({ t: 'acked', n: acked });
    acked = 0;
  }, 100).unref();
  /** Per probe id: when each host's table first held it. */
  const probes = new Map<string, Map<string, number>>();
  const hosts: SimulatedHost[] = [];
  let routers = 0;
  const onSnapshot = (name: string, snap: RouteSnapshot): void => {
    if (probes.size === 0) return;
    const now = Date.now();
    for (const [id, seen] of probes) {
      if (seen.has(name) || !snap.endpoints.some((e) => e.container === id)) continue;
      seen.set(name, now);
      if (seen.size === routers) {
        send({ t: 'seen', id, at: [...seen.values()] });
        probes.delete(id);
      }
    }
  };
  process.on('message', (m: ParentMessage) => {
    if (m.t === 'probe') {
      if (routers === 0) send({ t: 'seen', id: m.id, at: [] });
      else probes.set(m.id, new Map());
    }
    else if (m.t === 'collect') {
      const seen = probes.get(m.id);
      if (seen) send({ t: 'seen', id: m.id, at: [...seen.values()] });
      probes.delete(m.id);
    } else if (m.t === 'usage') {
      const cpu = process.cpuUsage();
      send({ t: 'usage', cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss });
    }
  });
  process.on('disconnect', () => process.exit(0));
  const t0 = performance.now();
  let failed = 0;
  let error: string | undefined;
  const names = Array.from({ length: cfg.count }, (_, i) => `${cfg.prefix}${cfg.from + i}`);
  // 16 at a time: a host start is a lease grant and a claim transaction.
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(
      names.slice(i, i + 16).map(async (name) => {
        const feed = names.indexOf(name) < cfg.feeds;
        const host = new SimulatedHost({
          client: connectEtcd(cfg.urls), name, ttlSeconds: cfg.ttl, memberUrls: cfg.urls, feed, dataDir,
          onAck: (n) => (acked += n), onSnapshot: (snap) => onSnapshot(name, snap),
        });
        try {
          await host.start();
          hosts.push(host);
          if (feed) routers++;
        } catch (err) {
          failed++;
          error = (err as Error).message;
        }
      }),
    );
  }
  send({ t: 'ready', started: hosts.length, failed, ms: performance.now() - t0, ...(error ? { error } : {}) });
}

await main();

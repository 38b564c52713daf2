/**
 * Operator actions on hosts, shared by the API and tests: list the hosts
 * with their jobs and load, drain one (its stateless jobs move away and it
 * takes nothing new), and remove one that is gone for good.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { LEADER_KEY, PREFIX, drainKey, hostKey } from '../store/keys.js';
import { jobsPerHost, readPlacementKeys } from '../store/placements.js';
import type { HostRecord } from '../store/records.js';

export interface HostRow extends HostRecord {
  leader: boolean;
  /** Jobs placed on the host (its lease-free /deploy keys). */
  jobs: number;
  /** jobs / capacity.containers, or jobs alone when unlimited. */
  load: number;
}

export async function listHosts(client: Etcd3): Promise<HostRow[]> {
  const hosts = await readPrefix<HostRecord>(client, PREFIX.host);
  const [placements, drain, leader] = await Promise.all([
    readPlacementKeys(client, { revision: hosts.revision }),
    client.getAll().prefix(PREFIX.drain).revision(hosts.revision).keys(),
    client.get(LEADER_KEY).string(),
  ]);
  const jobs = jobsPerHost(placements);
  const draining = new Set(drain.map((k) => k.slice(PREFIX.drain.length)));
  return hosts.entries
    .map((e) => e.value)
    .filter((h): h is HostRecord => h !== undefined)
    .map((h) => {
      const n = jobs.get(h.name) ?? 0;
      return {
        ...h,
        draining: h.draining || draining.has(h.name),
        leader: leader === h.name,
        jobs: n,
        load: h.capacity.containers > 0 ? n / h.capacity.containers : n,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Marks a host draining: dispatch moves its stateless jobs and places nothing new there. */
export async function drainHost(client: Etcd3, name: string, on = true): Promise<void> {
  if (on) {
    if (!(await client.get(hostKey(name)).exists())) {
      throw new VikingError('VIKING_E_NOT_FOUND', `no live host named ${name}; viking hosts lists them`);
    }
    await client.put(drainKey(name)).value(new Date().toISOString());
  } else {
    await client.delete().key(drainKey(name));
  }
}

/**
 * Forgets a host: its registration, drain mark, failure counters and volume
 * pins go, so even its volume jobs may be placed elsewhere (their data stays
 * behind on that machine). Refused while the host is alive unless forced.
 */
export async function removeHost(client: Etcd3, name: string, force = false): Promise<{ unpinned: string[] }> {
  if (!force && (await client.get(hostKey(name)).exists())) {
    throw new VikingError('VIKING_E_HOST_ALIVE', `host ${name} is alive; drain it and stop its viking host first, or force the removal`);
  }
  const pins = await client.getAll().prefix(PREFIX.fixed).strings();
  const unpinned = Object.entries(pins)
    .filter(([, host]) => host === name)
    .map(([key]) => key.slice(PREFIX.fixed.length));
  for (const node of unpinned) await client.delete().key(`${PREFIX.fixed}${node}`);
  await client.delete().key(hostKey(name));
  await client.delete().key(drainKey(name));
  await client.delete().prefix(`${PREFIX.counter}${name}/`);
  return { unpinned };
}

/**
 * Which servers hold the cluster's etcd members: read from etcd's own
 * member list at the moment of asking (a learner becomes a member while a
 * server joins, so a role written into the host record would go stale), and
 * matched to hosts by name (viking names a server's member after it), then
 * by the address in the member's peer or client URLs.
 */
import type { Etcd3 } from 'etcd3';
import { urlHost } from '../join/addresses.js';
import { listMembers } from '../join/membership.js';
import type { MemberInfo } from '../join/role.js';

export type EtcdRole = 'member' | 'learner' | 'client';

export interface EtcdSummary {
  voting: number;
  learners: number;
  members: Array<{ name: string; learner: boolean; clientURLs: string[]; peerURLs: string[] }>;
}

/** Pure: the etcd role of a host with this name and address. */
export function etcdRoleOf(host: { name: string; ip: string }, members: MemberInfo[]): EtcdRole {
  const m = members.find((x) => x.name === host.name) ?? members.find((x) => [...x.peerURLs, ...x.clientURLs].some((u) => urlHost(u) === host.ip));
  return !m ? 'client' : m.isLearner ? 'learner' : 'member';
}

export function summarise(members: MemberInfo[]): EtcdSummary {
  return {
    voting: members.filter((m) => !m.isLearner).length,
    learners: members.filter((m) => m.isLearner).length,
    members: members.map((m) => ({ name: m.name, learner: m.isLearner, clientURLs: m.clientURLs, peerURLs: m.peerURLs })),
  };
}

/** The member list, or undefined when etcd will not tell (the rows then carry no role rather than a wrong one). */
export async function readMembers(client: Etcd3): Promise<MemberInfo[] | undefined> {
  return listMembers(client).catch(() => undefined);
}

export async function withEtcdRoles<T extends { name: string; ip: string }>(client: Etcd3, rows: T[]): Promise<Array<T & { etcd?: EtcdRole }>> {
  const members = await readMembers(client);
  return members ? rows.map((r) => ({ ...r, etcd: etcdRoleOf(r, members) })) : rows;
}

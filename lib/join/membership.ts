/**
 * The etcd cluster's member list and its three changes, through the etcd3
 * client's cluster service: add a learner, promote it once it has caught up,
 * remove a member. Errors of etcd are turned into viking's where a user can
 * act on them.
 */
import type { Etcd3, IMember } from 'etcd3';
import { VikingError } from '../errors.js';
import type { MemberInfo } from './role.js';

function toInfo(m: IMember): MemberInfo {
  return { id: String(m.ID), name: m.name ?? '', peerURLs: m.peerURLs ?? [], clientURLs: m.clientURLs ?? [], isLearner: m.isLearner === true };
}

export async function listMembers(client: Etcd3): Promise<MemberInfo[]> {
  const res = await client.cluster.memberList({ linearizable: true });
  return res.members.map(toInfo);
}

/**
 * Adds a learner. etcd (strict reconfig check) refuses with "unhealthy
 * cluster" unless its leader has been connected to every voting member for
 * the last 5 s, e.g. just after a promotion or while a member is down; that
 * is retried for `waitMs`, then reported.
 */
export async function addLearner(client: Etcd3, peerUrl: string, o: { waitMs?: number; log?: (m: string) => void } = {}): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
  const deadline = Date.now() + (o.waitMs ?? 0);
  let told = false;
  for (;;) {
    try {
      const res = await client.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true });
      return { member: toInfo(res.member), members: res.members.map(toInfo) };
    } catch (err) {
      const message = (err as Error).message;
      if (/unhealthy cluster/i.test(message) && Date.now() < deadline) {
        if (!told) o.log?.('etcd is not adding members yet: its leader must see every voting member for 5 s; waiting');
        told = true;
        await sleep(1000);
        continue;
      }
      const hint = /unhealthy cluster/i.test(message) ? ' (a voting member is down or unreachable: bring it back, or remove it if its server is gone)' : '';
      throw new VikingError('VIKING_E_JOIN_FAILED', `etcd refused to add ${peerUrl} as a learner: ${message}${hint}`);
    }
  }
}

export async function removeMember(client: Etcd3, id: string): Promise<void> {
  await client.cluster.memberRemove({ ID: id });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Promotes the learner `id` to a voting member, retrying while etcd says it
 * has not caught up with the leader yet ("can only promote a learner member
 * which is in sync with leader"). Resolves at once when it already votes.
 */
export async function promoteWhenReady(client: Etcd3, id: string, o: { timeoutMs: number; stillRunning: () => boolean; log?: (m: string) => void }): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  for (let delay = 200; Date.now() < deadline; delay = Math.min(delay * 2, 2000)) {
    if (!o.stillRunning()) throw new VikingError('VIKING_E_JOIN_FAILED', 'this server\'s etcd member exited before it could be promoted; see etcd.log in the data dir');
    try {
      await client.cluster.memberPromote({ ID: id });
      return;
    } catch (err) {
      last = (err as Error).message;
      if (/not a learner/i.test(last)) return;
      if (/not found/i.test(last)) throw new VikingError('VIKING_E_JOIN_FAILED', `etcd member ${id} was removed before it was promoted; the next start joins again`);
      if (last !== '' && !/in sync|not ready|unhealthy|timed out|deadline/i.test(last)) o.log?.(`promote: ${last}; retrying`);
    }
    await sleep(delay);
  }
  throw new VikingError('VIKING_E_JOIN_FAILED', `etcd did not promote member ${id} in ${Math.round(o.timeoutMs / 1000)} s (${last}); it stays a learner until the next start`);
}

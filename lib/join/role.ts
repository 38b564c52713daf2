/**
 * The etcd role of a joining server, decided from the member list alone
 * (pure, so every case is a table row in test/unit/join-role.test.ts).
 *
 * The rule: three voting members survive the loss of any one, and more
 * members only make every write slower, so a server becomes a member while
 * the cluster has fewer than three voting members and an etcd client after.
 *
 * It is decided under the join lock (join-lock.ts): only one server joins at
 * a time, so a learner that is not the joiner's own is left over from a join
 * that died between member add and promotion. It is removed: a learner
 * holds no vote (the reason members are added as learners: a member added
 * but never started cannot cost the cluster its quorum, etcd's classic trap),
 * but etcd 3.4 allows only one learner, so a dead one would block every
 * later member.
 */
import { urlHost } from './addresses.js';

export interface MemberInfo {
  id: string;
  /** '' until the member has started. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export const VOTING_TARGET = 3;

export type RoleDecision =
  /** This server's own member is in the list already (a restart, or a crash after member add): continue with it. */
  | { kind: 'resume'; member: MemberInfo; removeLearners: MemberInfo[] }
  /** Add this server as a learner, then promote it. */
  | { kind: 'member'; removeLearners: MemberInfo[] }
  /** Enough voting members: this server uses them as a client. */
  | { kind: 'client'; endpoints: string[]; removeLearners: MemberInfo[] }
  /** Refused: the list holds something this server must not guess about. */
  | { kind: 'refuse'; reason: string };

export function votingMembers(members: MemberInfo[]): MemberInfo[] {
  return members.filter((m) => !m.isLearner);
}

/** Client URLs of the voting members (the ones that serve reads and writes), in a stable order. */
export function clientEndpoints(members: MemberInfo[]): string[] {
  return votingMembers(members)
    .flatMap((m) => m.clientURLs)
    .filter((u, i, all) => u !== '' && all.indexOf(u) === i)
    .sort();
}

export function decideRole(members: MemberInfo[], me: { name: string; peerUrl: string }): RoleDecision {
  const mine = members.find((m) => m.peerURLs.includes(me.peerUrl));
  const others = members.filter((m) => m !== mine);
  const leftoverLearners = others.filter((m) => m.isLearner);
  const namesake = others.find((m) => m.name === me.name);
  if (namesake) {
    return { kind: 'refuse', reason: `an etcd member named ${me.name} already exists at ${namesake.peerURLs.join(',')}; give this server another --name, or remove that member if its server is gone` };
  }
  const myHost = urlHost(me.peerUrl);
  const sameAddress = others.find((m) => !m.isLearner && m.peerURLs.some((u) => urlHost(u) === myHost));
  if (sameAddress && !mine) {
    return { kind: 'refuse', reason: `etcd member ${sameAddress.name || sameAddress.id} already uses address ${myHost}; every server needs its own --ip` };
  }
  if (mine) return { kind: 'resume', member: mine, removeLearners: leftoverLearners };
  const voting = votingMembers(others);
  if (voting.length < VOTING_TARGET) return { kind: 'member', removeLearners: leftoverLearners };
  return { kind: 'client', endpoints: clientEndpoints(others), removeLearners: leftoverLearners };
}

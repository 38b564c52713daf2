/**
 * This server's place in the etcd cluster, made or resumed at every start
 * of `viking up`: the seed starts its member alone; a joiner checks its
 * token, takes the join lock, and becomes a voting member (learner first,
 * promoted once caught up) or an etcd client (role.ts decides); a restart
 * reads join.json and comes back as what it was.
 *
 * Crash safety, step by step (each step is written to join.json first):
 *   - before member add: phase 'adding' — a crash may or may not have added
 *     the learner; the next start finds it by peer URL and resumes it;
 *   - after member add: phase 'added' — the next start resumes the learner;
 *   - a learner whose server never comes back is removed by the next joiner
 *     (role.ts), and never counted a vote, so the cluster kept its quorum.
 * A voting member restarts from its own data without asking anyone, so a
 * whole cluster that reboots at once comes back.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { connectEtcd } from '../store/client.js';
import { startEtcdMember, waitEtcdReady, type EtcdMember } from '../up/etcd-process.js';
import { etcdUrls, type EtcdUrls } from './addresses.js';
import { acquireJoinLock } from './join-lock.js';
import { readJoinState, writeJoinState, type JoinRole, type JoinState } from './join-state.js';
import { addLearner, listMembers, promoteWhenReady, removeMember } from './membership.js';
import { clientEndpoints, decideRole, type MemberInfo } from './role.js';
import { checkJoinToken } from './token-check.js';

export interface ServerEtcdOptions {
  name: string;
  ip: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** Client URL(s) of any member of the cluster to join, comma separated; none for a seed. */
  join?: string;
  token?: string;
  log: (m: string) => void;
  lockTimeoutMs?: number;
  promoteTimeoutMs?: number;
  /** etcd binary and command words before it (tests start members inside a network namespace). */
  binary?: string;
}

export interface ServerEtcd {
  role: JoinRole;
  /** What `viking host` connects to: this server's own member, or every voting member's client URL. */
  endpoints: string[];
  member?: EtcdMember;
  state: JoinState;
  stop(): Promise<void>;
}

const unique = (list: string[]): string[] => list.filter((u, i) => u !== '' && list.indexOf(u) === i);

function memberDataDir(dataDir: string): string {
  return path.join(dataDir, 'etcd', 'member-data');
}

async function hasMemberData(dataDir: string): Promise<boolean> {
  return stat(path.join(memberDataDir(dataDir), 'member')).then(() => true, () => false);
}

/** Moves a dead member's data aside (never deletes it): a member id removed from the cluster can never start again. */
async function retireMemberData(dataDir: string, log: (m: string) => void): Promise<void> {
  if (!(await hasMemberData(dataDir))) return;
  const to = `${memberDataDir(dataDir)}.removed-${Date.now()}`;
  await rename(memberDataDir(dataDir), to);
  log(`this server's old etcd data belongs to a member the cluster no longer has; moved to ${to}`);
}

function startMember(o: ServerEtcdOptions, urls: EtcdUrls, extra: { initialCluster?: string; existing?: boolean }): Promise<EtcdMember> {
  return startEtcdMember({
    name: o.name,
    dataDir: path.join(o.dataDir, 'etcd'),
    clientPort: o.clientPort,
    peerPort: o.peerPort,
    ip: o.ip,
    listenClientUrls: urls.listenClient,
    logFile: path.join(o.dataDir, 'etcd.log'),
    ...(o.binary ? { binary: o.binary } : {}),
    ...(extra.initialCluster ? { initialCluster: extra.initialCluster, initialClusterState: extra.existing ? 'existing' : 'new', waitReady: false } : {}),
  });
}

/** `name=peerURL,...` as etcd wants it for a member joining an existing cluster. */
export function initialCluster(members: MemberInfo[], me: { id: string; name: string; peerUrl: string }): string {
  return members
    .flatMap((m) => {
      const name = m.id === me.id ? me.name : m.name || `m${m.id}`;
      const urls = m.id === me.id ? [me.peerUrl] : m.peerURLs;
      return urls.map((u) => `${name}=${u}`);
    })
    .join(',');
}

/** Waits until `urls` answer a read, telling the user every 30 s; fails only if the member process exits. */
async function waitServing(member: EtcdMember, urls: string[], log: (m: string) => void): Promise<void> {
  let exited = false;
  void member.exited.then(() => (exited = true));
  for (let round = 0; ; round++) {
    if (exited) throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', 'this server\'s etcd member exited; see etcd.log in the data dir');
    try {
      await waitEtcdReady(urls, 30_000);
      return;
    } catch (err) {
      if (exited) continue;
      log(`etcd member not serving yet (${(err as Error).message}); it needs a quorum of the cluster's members up`);
      if (round > 20) throw err;
    }
  }
}

async function startSeed(o: ServerEtcdOptions, urls: EtcdUrls): Promise<ServerEtcd> {
  o.log(`starting etcd: clients on ${urls.listenClient.join(', ')}, peers on ${urls.listenPeer} (data in ${o.dataDir}/etcd, log ${o.dataDir}/etcd.log)`);
  const member = await startMember(o, urls, {});
  const client = connectEtcd([urls.advertiseClient]);
  try {
    const members = await listMembers(client);
    // A seed first started on loopback and now on a real address: its peer URL in the cluster must follow, or joiners dial 127.0.0.1.
    const only = members.length === 1 ? members[0] : undefined;
    if (only && (only.peerURLs.length !== 1 || only.peerURLs[0] !== urls.advertisePeer)) {
      await client.cluster.memberUpdate({ ID: only.id, peerURLs: [urls.advertisePeer] });
      o.log(`etcd peer URL changed from ${only.peerURLs.join(',')} to ${urls.advertisePeer}`);
    }
    const state = await writeJoinState(o.dataDir, { role: 'seed', name: o.name, ip: o.ip, join: urls.advertiseClient, peerUrl: urls.advertisePeer, clientUrl: urls.advertiseClient, endpoints: clientEndpoints(await listMembers(client)) });
    return { role: 'seed', endpoints: [urls.advertiseClient], member, state, stop: () => member.stop() };
  } catch (err) {
    await member.stop();
    throw err;
  } finally {
    client.close();
  }
}

/** A voting member restarting: its data says who it is; nobody needs to be asked. */
async function restartVoting(o: ServerEtcdOptions, urls: EtcdUrls, state: JoinState): Promise<ServerEtcd> {
  o.log(`starting this server's etcd member (voting) from its data: clients on ${urls.listenClient.join(', ')}`);
  const member = await startMember(o, urls, { initialCluster: `${o.name}=${urls.advertisePeer}`, existing: true });
  try {
    await waitServing(member, [urls.advertiseClient], o.log);
    const client = connectEtcd([urls.advertiseClient]);
    try {
      const members = await listMembers(client);
      if (!members.some((m) => m.peerURLs.includes(urls.advertisePeer))) {
        throw new VikingError('VIKING_E_JOIN_FAILED', 'this server\'s etcd member is no longer in the cluster; the next start joins again');
      }
      state = await writeJoinState(o.dataDir, { ...state, endpoints: clientEndpoints(members) });
    } finally {
      client.close();
    }
  } catch (err) {
    await member.stop();
    throw err;
  }
  return { role: 'member', endpoints: [urls.advertiseClient], member, state, stop: () => member.stop() };
}

async function restartClient(o: ServerEtcdOptions, state: JoinState): Promise<ServerEtcd> {
  const contact = unique([...state.endpoints, ...(o.join ? o.join.split(',') : []), state.join]);
  const client = connectEtcd(contact);
  try {
    const endpoints = clientEndpoints(await listMembers(client).catch((err: Error) => {
      throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `cannot read the etcd member list from ${contact.join(', ')}: ${err.message}`);
    }));
    const next = await writeJoinState(o.dataDir, { ...state, endpoints: endpoints.length ? endpoints : state.endpoints });
    o.log(`etcd client of ${next.endpoints.join(', ')}`);
    return { role: 'client', endpoints: next.endpoints, state: next, stop: async () => {} };
  } finally {
    client.close();
  }
}

/** Joins (or resumes joining) under the join lock; `client` talks to the other members. */
async function joinUnderLock(o: ServerEtcdOptions, urls: EtcdUrls, client: Etcd3, joinUrl: string, previous: JoinState | undefined): Promise<ServerEtcd> {
  const lock = await acquireJoinLock(client, o.name, { timeoutMs: o.lockTimeoutMs ?? 120_000, log: o.log });
  let member: EtcdMember | undefined;
  try {
    let members = await listMembers(client);
    const decision = decideRole(members, { name: o.name, peerUrl: urls.advertisePeer });
    if (decision.kind === 'refuse') throw new VikingError('VIKING_E_JOIN_REFUSED', decision.reason);
    for (const l of decision.removeLearners) {
      o.log(`removing etcd learner ${l.name || '(never started)'} ${l.peerURLs.join(',')}: left over from a join that did not finish`);
      await removeMember(client, l.id);
    }
    members = members.filter((m) => !decision.removeLearners.includes(m));
    const base = { name: o.name, ip: o.ip, join: joinUrl };

    if (decision.kind === 'client') {
      await retireMemberData(o.dataDir, o.log);
      const state = await writeJoinState(o.dataDir, { ...base, role: 'client', endpoints: decision.endpoints });
      o.log(`the cluster has ${decision.endpoints.length} voting etcd members: this server is an etcd client of ${decision.endpoints.join(', ')}`);
      return { role: 'client', endpoints: decision.endpoints, state, stop: async () => {} };
    }

    let id: string;
    let learner = true;
    const data = await hasMemberData(o.dataDir);
    if (decision.kind === 'resume' && (decision.member.isLearner || data)) {
      id = decision.member.id;
      learner = decision.member.isLearner;
      o.log(`resuming etcd member ${id} (${learner ? 'learner' : 'voting'}) found at ${urls.advertisePeer}`);
    } else {
      if (decision.kind === 'resume') {
        // A voting member whose data is gone must not vote with an empty log: out, then in again as a learner.
        o.log(`etcd member ${decision.member.id} at ${urls.advertisePeer} votes but its data is gone: removing it to add it again`);
        await removeMember(client, decision.member.id);
        members = members.filter((m) => m !== decision.member);
      }
      await retireMemberData(o.dataDir, o.log);
      const voting = members.filter((m) => !m.isLearner).length;
      await writeJoinState(o.dataDir, { ...base, role: 'member', phase: 'adding', peerUrl: urls.advertisePeer, clientUrl: urls.advertiseClient, endpoints: clientEndpoints(members) });
      const added = await addLearner(client, urls.advertisePeer, { waitMs: 60_000, log: o.log });
      id = added.member.id;
      members = added.members;
      o.log(`added as etcd learner ${id} (the cluster had ${voting} voting member${voting === 1 ? '' : 's'})`);
    }
    await writeJoinState(o.dataDir, { ...base, role: 'member', phase: learner ? 'added' : 'voting', memberId: id, peerUrl: urls.advertisePeer, clientUrl: urls.advertiseClient, endpoints: clientEndpoints(members) });
    o.log(`starting etcd member: clients on ${urls.listenClient.join(', ')}, peers on ${urls.listenPeer} (log ${o.dataDir}/etcd.log)`);
    member = await startMember(o, urls, { initialCluster: initialCluster(members, { id, name: o.name, peerUrl: urls.advertisePeer }), existing: true });
    if (learner) {
      let running = true;
      void member.exited.then(() => (running = false));
      await promoteWhenReady(client, id, { timeoutMs: o.promoteTimeoutMs ?? 120_000, stillRunning: () => running, log: o.log });
      o.log(`etcd member ${id} promoted to voting member`);
    }
    await waitServing(member, [urls.advertiseClient], o.log);
    members = await listMembers(client);
    const state = await writeJoinState(o.dataDir, { ...base, role: 'member', phase: 'voting', memberId: id, peerUrl: urls.advertisePeer, clientUrl: urls.advertiseClient, endpoints: clientEndpoints(members) });
    const started = member;
    return { role: 'member', endpoints: [urls.advertiseClient], member: started, state, stop: () => started.stop() };
  } catch (err) {
    await member?.stop();
    throw err;
  } finally {
    await lock.release();
  }
}

/** Starts or resumes this server's etcd part; see the file comment. */
export async function startServerEtcd(o: ServerEtcdOptions): Promise<ServerEtcd> {
  const urls = etcdUrls(o.ip, o.clientPort, o.peerPort);
  await mkdir(o.dataDir, { recursive: true });
  const state = await readJoinState(o.dataDir);
  if (state && state.name !== o.name) {
    throw new VikingError('VIKING_E_JOIN_REFUSED', `the data dir ${o.dataDir} belongs to server ${state.name}, not ${o.name}; use its name or another --data-dir`);
  }
  if (state?.role === 'seed' || (!state && !o.join)) {
    if (o.join) throw new VikingError('VIKING_E_JOIN_REFUSED', `the data dir ${o.dataDir} holds the seed of a cluster; it cannot join another (use another --data-dir)`);
    if (!state && (await hasMemberData(o.dataDir)) === false) o.log('no join state: starting a new cluster (the seed)');
    return startSeed(o, urls);
  }
  if (state?.role === 'client') return restartClient(o, state);
  if (state?.role === 'member' && state.phase === 'voting' && (await hasMemberData(o.dataDir))) return restartVoting(o, urls, state);

  const joinUrl = o.join ?? state!.join;
  const contact = unique([...joinUrl.split(','), ...(state?.endpoints ?? [])].filter((u) => u !== urls.advertiseClient));
  const client = connectEtcd(contact);
  try {
    await listMembers(client).catch((err: Error) => {
      throw new VikingError('VIKING_E_ETCD_UNAVAILABLE', `cannot reach the cluster's etcd at ${contact.join(', ')}: ${err.message}`);
    });
    if (!state) {
      const who = await checkJoinToken(client, o.token, joinUrl);
      o.log(`token '${who}' accepted by the cluster at ${joinUrl}`);
    }
    return await joinUnderLock(o, urls, client, joinUrl, state);
  } finally {
    client.close();
  }
}

/**
 * The pure parts of joining: the etcd role decision, the join state file's
 * checks, daemon.json's merge, the etcd URLs of an address, the guard's
 * iptables rules and the etcd role `viking hosts` shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decideRole, clientEndpoints, type MemberInfo } from '../../lib/join/role.js';
import { parseJoinState, readJoinState, writeJoinState } from '../../lib/join/join-state.js';
import { mergeInsecureRegistry, trustRegistryFile } from '../../lib/join/docker-trust.js';
import { etcdUrls, isLoopback } from '../../lib/join/addresses.js';
import { guardRules } from '../../lib/join/etcd-guard.js';
import { etcdRoleOf } from '../../lib/host-admin/etcd-roles.js';
import { initialCluster } from '../../lib/join/server-etcd.js';
import { etcdWarning } from '../../lib/cli/commands/info.js';

const m = (id: string, name: string, ip: string, isLearner = false): MemberInfo => ({
  id, name, isLearner, peerURLs: [`http://${ip}:2380`], clientURLs: name ? [`http://${ip}:2379`] : [],
});
const me = { name: 'new', peerUrl: 'http://10.0.0.9:2380' };

test('decideRole: a voting member while fewer than 3 vote, a client after; leftovers and clashes', () => {
  const rows: Array<{ what: string; members: MemberInfo[]; kind: string; removes?: string[] }> = [
    { what: 'seed alone', members: [m('1', 'a', '10.0.0.1')], kind: 'member' },
    { what: 'two voting', members: [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2')], kind: 'member' },
    { what: 'three voting', members: [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2'), m('3', 'c', '10.0.0.3')], kind: 'client' },
    { what: 'two voting and a dead learner', members: [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2'), m('3', '', '10.0.0.3', true)], kind: 'member', removes: ['3'] },
    { what: 'three voting and a dead learner', members: [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2'), m('3', 'c', '10.0.0.3'), m('4', '', '10.0.0.4', true)], kind: 'client', removes: ['4'] },
    { what: 'my own learner (crash after member add)', members: [m('1', 'a', '10.0.0.1'), m('9', '', '10.0.0.9', true)], kind: 'resume' },
    { what: 'my own voting member (restart)', members: [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2'), m('3', 'c', '10.0.0.3'), m('9', 'new', '10.0.0.9')], kind: 'resume' },
    { what: 'my name on another address', members: [m('1', 'a', '10.0.0.1'), m('2', 'new', '10.0.0.2')], kind: 'refuse' },
    { what: 'my address taken by another member', members: [{ ...m('1', 'a', '10.0.0.9'), peerURLs: ['http://10.0.0.9:3380'] }], kind: 'refuse' },
  ];
  for (const r of rows) {
    const d = decideRole(r.members, me);
    assert.equal(d.kind, r.kind, r.what);
    if (d.kind !== 'refuse') assert.deepEqual(d.removeLearners.map((l) => l.id), r.removes ?? [], r.what);
  }
  const d = decideRole([m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2'), m('3', 'c', '10.0.0.3'), m('4', '', '10.0.0.4', true)], me);
  assert.deepEqual(d.kind === 'client' && d.endpoints, ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379']);
});

test('clientEndpoints: voting members only, each once, sorted', () => {
  assert.deepEqual(clientEndpoints([m('2', 'b', '10.0.0.2'), m('1', 'a', '10.0.0.1'), m('3', 'l', '10.0.0.3', true), { ...m('4', 'd', '10.0.0.2') }]), ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
});

test('initialCluster names this server and keeps every other member', () => {
  const members = [m('1', 'a', '10.0.0.1'), m('9', '', '10.0.0.9', true)];
  assert.equal(initialCluster(members, { id: '9', name: 'new', peerUrl: 'http://10.0.0.9:2380' }), 'a=http://10.0.0.1:2380,new=http://10.0.0.9:2380');
});

test('join state: written atomically, read back, and a broken one is refused with what to fix', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-join-state-'));
  try {
    assert.equal(await readJoinState(dir), undefined);
    await writeJoinState(dir, { role: 'member', phase: 'adding', name: 'b', ip: '10.0.0.2', join: 'http://10.0.0.1:2379', peerUrl: 'http://10.0.0.2:2380', endpoints: [] });
    const back = await readJoinState(dir);
    assert.equal(back?.role, 'member');
    assert.equal(back?.phase, 'adding');
    await writeFile(path.join(dir, 'join.json'), '{"version":1,');
    await assert.rejects(readJoinState(dir), { code: 'VIKING_E_JOIN_STATE_INVALID' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const ok = { version: 1, role: 'client', name: 'd', ip: '10.0.0.4', join: 'http://10.0.0.1:2379', endpoints: ['http://10.0.0.1:2379'], updatedAt: 'now' };
  assert.equal(parseJoinState(ok).role, 'client');
  const bad: Array<[string, unknown, RegExp]> = [
    ['array', [], /not a JSON object/],
    ['version', { ...ok, version: 2 }, /version 2/],
    ['role', { ...ok, role: 'boss' }, /role must be/],
    ['member without phase', { ...ok, role: 'member', peerUrl: 'http://x:2380' }, /needs "peerUrl" and "phase"/],
    ['endpoints', { ...ok, endpoints: 'http://x' }, /endpoints/],
    ['empty name', { ...ok, name: '' }, /"name"/],
  ];
  for (const [what, value, message] of bad) assert.throws(() => parseJoinState(value), { code: 'VIKING_E_JOIN_STATE_INVALID', message }, what);
});

test('mergeInsecureRegistry keeps every other key, adds once, writes nothing when present', () => {
  const rows: Array<{ what: string; before: string | undefined; changed: boolean; after?: unknown }> = [
    { what: 'no file', before: undefined, changed: true, after: { 'insecure-registries': ['10.0.0.1:5000'] } },
    { what: 'empty file', before: '  \n', changed: true, after: { 'insecure-registries': ['10.0.0.1:5000'] } },
    { what: 'other keys', before: '{"log-level":"warn","bip":"172.30.2.1/24"}', changed: true, after: { 'log-level': 'warn', bip: '172.30.2.1/24', 'insecure-registries': ['10.0.0.1:5000'] } },
    { what: 'other registries', before: '{"insecure-registries":["10.9.0.0/16"]}', changed: true, after: { 'insecure-registries': ['10.9.0.0/16', '10.0.0.1:5000'] } },
    { what: 'already there', before: '{"insecure-registries":["10.0.0.1:5000"],"x":1}', changed: false },
  ];
  for (const r of rows) {
    const out = mergeInsecureRegistry(r.before, '10.0.0.1:5000');
    assert.equal(out.changed, r.changed, r.what);
    if (r.after) assert.deepEqual(JSON.parse(out.text), r.after, r.what);
    else assert.equal(out.text, r.before, r.what);
  }
  for (const [what, text] of [['not JSON', '{'], ['array', '[]'], ['list of numbers', '{"insecure-registries":[1]}'], ['string', '{"insecure-registries":"a"}']] as const) {
    assert.throws(() => mergeInsecureRegistry(text, '10.0.0.1:5000'), { code: 'VIKING_E_DOCKER_CONFIG_INVALID' }, what);
  }
  assert.throws(() => mergeInsecureRegistry('{}', 'a b'), { code: 'VIKING_E_BAD_REQUEST' });
});

test('trustRegistryFile rewrites only when the merge changed something', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-daemon-json-'));
  const file = path.join(dir, 'daemon.json');
  try {
    await writeFile(file, '{"debug": true}');
    assert.deepEqual(await trustRegistryFile(file, '10.0.0.1:5000'), { changed: true });
    const text = await readFile(file, 'utf8');
    assert.deepEqual(await trustRegistryFile(file, '10.0.0.1:5000'), { changed: false });
    assert.equal(await readFile(file, 'utf8'), text);
    assert.deepEqual(JSON.parse(text), { debug: true, 'insecure-registries': ['10.0.0.1:5000'] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('etcdUrls: loopback stays on its address; a routable one adds 127.0.0.1 for clients and advertises itself', () => {
  assert.deepEqual(etcdUrls('127.0.0.1', 2379, 2380), { listenClient: ['http://127.0.0.1:2379'], advertiseClient: 'http://127.0.0.1:2379', listenPeer: 'http://127.0.0.1:2380', advertisePeer: 'http://127.0.0.1:2380' });
  assert.deepEqual(etcdUrls('10.0.0.1', 2379, 2380).listenClient, ['http://127.0.0.1:2379', 'http://10.0.0.1:2379']);
  assert.equal(etcdUrls('10.0.0.1', 2379, 2380).advertisePeer, 'http://10.0.0.1:2380');
  for (const [ip, loop] of [['127.0.0.5', true], ['::1', true], ['10.0.0.1', false], ['192.168.1.2', false]] as const) assert.equal(isLoopback(ip), loop, ip);
});

test('guardRules: every Docker bridge, local ports in INPUT, other members in the forward chain, all tagged', () => {
  const rules = guardRules({ localPorts: [2380, 2379, 5000], remote: [{ ip: '10.0.0.2', ports: [2379, 2380] }] });
  assert.deepEqual(rules.map((r) => [r.chain, r.rule[1], r.rule.includes('-d') ? r.rule[r.rule.indexOf('-d') + 1] : '', r.rule[r.rule.indexOf('--dports') + 1]]), [
    ['INPUT', 'docker0', '', '2379,2380,5000'],
    ['DOCKER-USER', 'docker0', '10.0.0.2/32', '2379,2380'],
    ['INPUT', 'br-+', '', '2379,2380,5000'],
    ['DOCKER-USER', 'br-+', '10.0.0.2/32', '2379,2380'],
  ]);
  for (const r of rules) assert.deepEqual(r.rule.slice(r.rule.indexOf('--comment'), r.rule.indexOf('--comment') + 4), ['--comment', 'viking-etcd-guard', '-j', 'REJECT']);
});

test('etcdRoleOf matches by member name, then by address; etcdWarning below three voters', () => {
  const members = [m('1', 'a', '10.0.0.1'), m('2', 'b', '10.0.0.2', true), { ...m('3', 'other-name', '10.0.0.3') }];
  assert.equal(etcdRoleOf({ name: 'a', ip: '10.9.9.9' }, members), 'member');
  assert.equal(etcdRoleOf({ name: 'b', ip: '10.0.0.2' }, members), 'learner');
  assert.equal(etcdRoleOf({ name: 'c', ip: '10.0.0.3' }, members), 'member');
  assert.equal(etcdRoleOf({ name: 'd', ip: '10.0.0.4' }, members), 'client');
  assert.match(etcdWarning({ voting: 1, learners: 0, members: [] }) ?? '', /1 voting member: losing its server/);
  assert.match(etcdWarning({ voting: 2, learners: 1, members: [] }) ?? '', /2 voting members/);
  assert.equal(etcdWarning({ voting: 3, learners: 0, members: [] }), undefined);
});

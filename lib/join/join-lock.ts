/**
 * One server joins at a time. The joiner holds `/join/lock` under a lease
 * of its own from the member list read until its etcd member is promoted
 * (or it has settled as a client), so two servers started at once do not
 * both count "two voting members, room for one more" and both add
 * themselves. A joiner that dies frees the lock when its lease expires
 * (10 s); the next one then finds its learner and removes it (role.ts).
 */
import os from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import { VikingError } from '../errors.js';
import { JOIN_LOCK_KEY } from '../store/keys.js';

const LOCK_TTL_SECONDS = 10;

export interface JoinLock {
  release(): Promise<void>;
}

interface Holder {
  name: string;
  machine: string;
  since: string;
}

/** Waits for the join lock (up to `timeoutMs`), telling the user who holds it meanwhile. */
export async function acquireJoinLock(client: Etcd3, name: string, o: { timeoutMs: number; log: (m: string) => void }): Promise<JoinLock> {
  const deadline = Date.now() + o.timeoutMs;
  const me: Holder = { name, machine: os.hostname(), since: new Date().toISOString() };
  let told = '';
  let lease: Lease | undefined;
  while (Date.now() < deadline) {
    lease = client.lease(LOCK_TTL_SECONDS, { autoKeepAlive: true });
    lease.on('lost', () => {});
    const leaseId = await lease.grant();
    const res = await client
      .if(JOIN_LOCK_KEY, 'Version', '==', 0)
      .then(client.put(JOIN_LOCK_KEY).value(JSON.stringify(me)).lease(leaseId))
      .else(client.get(JOIN_LOCK_KEY))
      .commit();
    if (res.succeeded) {
      const held = lease;
      return { release: () => held.revoke().catch(() => {}) };
    }
    await lease.revoke().catch(() => {});
    const kv = res.responses[0]?.response_range?.kvs[0];
    const other = kv ? kv.value.toString() : '';
    if (other !== told) {
      let who = 'another server';
      try {
        const h = JSON.parse(other) as Holder;
        who = `${h.name} (since ${h.since})`;
      } catch {
        /* shown as another server */
      }
      o.log(`waiting: ${who} is joining the cluster now`);
      told = other;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new VikingError('VIKING_E_JOIN_FAILED', `another server held the join lock (${JOIN_LOCK_KEY}) for ${Math.round(o.timeoutMs / 1000)} s; try again when it has joined`);
}

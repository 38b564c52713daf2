/**
 * Domains a push is about to take, reserved for the push's whole run.
 *
 * A domain nobody serves yet is reserved at `/claims/<domain>` (create-only,
 * under a short lease of the push's own) before anything is built, so of two
 * pushes that want one new domain at the same time the second is refused at
 * once with VIKING_E_DOMAIN_TAKEN instead of after its build and rollout.
 * The switch still claims `/domains/<domain>` in one transaction
 * (claimAndSwitch), which decides even if a reservation's lease was lost.
 * A reservation ends with the push (its lease is revoked), or within the
 * lease's TTL if the API process dies.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { claimKey, domainKey } from '../store/keys.js';
import type { DomainRecord } from '../store/records.js';

const CLAIM_TTL_SECONDS = 10;

/** What a reservation says: which stack's push holds it. */
interface DomainClaim {
  stack: string;
  since: string;
}

/**
 * Reserves the domains of `domains` that the stack does not serve yet; the
 * returned function ends the reservation. Throws VIKING_E_DOMAIN_TAKEN, having
 * reserved nothing, when another stack serves or is claiming one of them.
 */
export async function reserveDomains(client: Etcd3, stack: string, domains: Record<string, string[]>): Promise<() => Promise<void>> {
  const fresh: string[] = [];
  for (const d of new Set(Object.values(domains).flat())) {
    const text = await client.get(domainKey(d)).string();
    const owner = text ? (JSON.parse(text) as DomainRecord) : undefined;
    if (owner && owner.stack !== stack) {
      throw new VikingError('VIKING_E_DOMAIN_TAKEN', `domain ${d} is already served by ${owner.stack}/${owner.node}; remove it there first`);
    }
    if (!owner) fresh.push(d);
  }
  if (fresh.length === 0) return async () => {};
  const lease = client.lease(CLAIM_TTL_SECONDS, { autoKeepAlive: true });
  lease.on('lost', () => {});
  const release = async (): Promise<void> => {
    await lease.revoke().catch(() => {});
  };
  try {
    const leaseId = await lease.grant();
    const value = JSON.stringify({ stack, since: new Date().toISOString() } satisfies DomainClaim);
    // etcd allows 128 operations a transaction; the parser allows 100 domains a stack.
    const [first, ...rest] = fresh;
    const txn = client.if(claimKey(first!), 'Version', '==', 0);
    for (const d of rest) txn.and(claimKey(d), 'Version', '==', 0);
    const res = await txn.then(...fresh.map((d) => client.put(claimKey(d)).value(value).lease(leaseId))).commit();
    if (!res.succeeded) {
      for (const d of fresh) {
        const text = await client.get(claimKey(d)).string();
        const holder = text ? (JSON.parse(text) as DomainClaim) : undefined;
        if (holder && holder.stack !== stack) {
          throw new VikingError('VIKING_E_DOMAIN_TAKEN', `domain ${d} is being claimed by a push of ${holder.stack} right now (since ${holder.since})`);
        }
      }
      throw new VikingError('VIKING_E_DOMAIN_TAKEN', `one of ${fresh.join(', ')} is being claimed by another push right now; try again`);
    }
    return release;
  } catch (err) {
    await release();
    throw err;
  }
}

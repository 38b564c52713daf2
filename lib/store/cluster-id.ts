/**
 * The cluster's identity: a random id made once, kept in etcd under
 * `/cluster/id`, read by every host at start.
 *
 * Containers are owned by labels. A host name alone is not enough: two
 * clusters on one Docker Engine (a test beside a `viking up`, two `viking
 * up`s) both defaulting to the machine's name once removed each other's
 * containers. Every container a slave makes carries `viking.cluster=<id>`
 * as well, and a slave touches only containers with both its cluster's and
 * its host's labels.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { CLUSTER_ID_KEY } from './keys.js';

/** 16 hex digits: a Docker label value and a readable log word. */
const CLUSTER_ID = /^[0-9a-f]{16}$/;

/**
 * The cluster id, made now if this is the first host of the cluster. The
 * create is one transaction that succeeds only while the key is absent, so
 * hosts starting together all end up with the one id that won.
 */
export async function ensureClusterId(client: Etcd3): Promise<string> {
  const fresh = randomBytes(8).toString('hex');
  const res = await client.if(CLUSTER_ID_KEY, 'Create', '==', 0).then(client.put(CLUSTER_ID_KEY).value(fresh)).else(client.get(CLUSTER_ID_KEY)).commit();
  if (res.succeeded) return fresh;
  const kv = res.responses[0]?.response_range?.kvs[0];
  const id = kv?.value.toString() ?? '';
  if (!CLUSTER_ID.test(id)) throw new Error(`${CLUSTER_ID_KEY} holds '${id}', not a cluster id; it is written once by the first host and never by hand`);
  return id;
}

/**
 * Router acknowledgements: how the cluster knows every router has stopped
 * sending to an endpoint before its container is stopped.
 *
 * Each router writes `/routers/<host>` = the etcd revision of the route table
 * all its workers serve, under its host's lease (a dead host's ack vanishes
 * with it). A slave that withdrew an endpoint at revision R waits until every
 * router's ack is at least R: from then on no new request can reach that
 * container, and only requests already in flight remain to be drained.
 */
import type { Etcd3 } from 'etcd3';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import type { RouterAck } from '../store/records.js';

export interface RoutersSeen {
  /** True when every live router serves `revision` or later. */
  ok: boolean;
  /** Hosts whose router had not caught up when the wait ended. */
  lagging: string[];
  waitedMs: number;
}

/** Routers whose ack is older than `revision`. Pure. */
export function laggingRouters(acks: RouterAck[], revision: string): string[] {
  const target = BigInt(revision);
  return acks.filter((a) => BigInt(a.revision) < target).map((a) => a.host).sort();
}

export async function waitRoutersSeen(client: Etcd3, revision: string, timeoutMs: number, pollMs = 25): Promise<RoutersSeen> {
  const start = Date.now();
  let lagging: string[] = [];
  for (;;) {
    try {
      const read = await readPrefix<RouterAck>(client, PREFIX.routers);
      lagging = laggingRouters(read.entries.map((e) => e.value).filter((v): v is RouterAck => v !== undefined), revision);
      if (lagging.length === 0) return { ok: true, lagging, waitedMs: Date.now() - start };
    } catch {
      /* etcd hiccup: keep waiting until the deadline */
    }
    if (Date.now() - start >= timeoutMs) return { ok: false, lagging, waitedMs: Date.now() - start };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

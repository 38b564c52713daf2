/**
 * Self-fencing of an isolated host (issue 11, a pulled cable).
 *
 * A host that cannot renew its lease for longer than the lease's TTL has
 * lost it on the etcd side, so the leader is moving its stateless jobs to
 * other hosts. If it also cannot reach most of the other hosts, it is the
 * one cut off, and it stops its own copies of stateless jobs: an isolated
 * server must never keep serving a release the cluster has moved past, and
 * a replica must not run twice once the cable is back. Jobs pinned to a
 * volume keep running (their data is here; the leader does not move them).
 *
 * The race it must win: etcd ends the lease TTL seconds after the last
 * keepalive it saw, and the leader starts the replacement about a second
 * later. So the host starts asking whether it is cut off FENCE_LEAD_MS
 * before its TTL is up, and stops its copies at once (SIGKILL: nothing of
 * the cluster can reach them any more), so they are gone before a
 * replacement can run (test/chaos/servers-chaos: with the check at the
 * full TTL, a 1 s probe and a 2 s stop, a web replica ran in two places
 * for a second after a pulled cable).
 *
 * When etcd itself has lost quorum, every host fails to renew but the hosts
 * still reach each other: then nobody fences, and the data plane keeps
 * serving what it has. A single-host cluster never fences.
 */
import type { Etcd3 } from 'etcd3';
import { tcpReachable } from '../net.js';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import type { HostRecord } from '../store/records.js';

/** How long before its TTL is up a host that has not renewed its lease checks whether it is cut off. */
export const FENCE_LEAD_MS = 1500;

/** Milliseconds without a renewal after which a host with this lease TTL checks its peers: the TTL less the lead, at least half the TTL. */
export function fenceAfterMs(ttlSeconds: number): number {
  return Math.max(ttlSeconds * 1000 - FENCE_LEAD_MS, ttlSeconds * 500);
}

export interface SelfFenceOptions {
  client: Etcd3;
  self: string;
  ttlSeconds: number;
  /** Milliseconds since the host's lease was last renewed. */
  sinceRenewed: () => number;
  fence: () => Promise<void>;
  unfence: () => void;
  log?: (msg: string) => void;
  checkMs?: number;
}

/** Whether a host that reaches `reachable` of its `others` peers sees too few of the cluster to stay (a majority, counting itself). */
export function isolated(others: number, reachable: number): boolean {
  return others > 0 && (reachable + 1) * 2 <= others + 1;
}

export class SelfFence {
  private timer: NodeJS.Timeout | undefined;
  private peersTimer: NodeJS.Timeout | undefined;
  /** The other hosts' API addresses, as last read from /host while etcd answered. */
  private peers: string[] = [];
  private fenced = false;
  private checking = false;

  constructor(private readonly o: SelfFenceOptions) {}

  start(): void {
    void this.readPeers();
    this.peersTimer = setInterval(() => void this.readPeers(), 5000);
    this.timer = setInterval(() => void this.check(), this.o.checkMs ?? 500);
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.peersTimer);
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  private async readPeers(): Promise<void> {
    if (this.o.sinceRenewed() > fenceAfterMs(this.o.ttlSeconds)) return; // keep the list from before the trouble
    const hosts = await readPrefix<HostRecord>(this.o.client, PREFIX.host).catch(() => undefined);
    if (!hosts) return;
    // A host in its planned-stop grace is down on purpose: it does not count as a peer to reach.
    this.peers = hosts.entries
      .map((e) => e.value)
      .filter((h): h is HostRecord => !!h && h.name !== this.o.self && typeof h.api === 'string' && !h.stopping)
      .map((h) => h.api);
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const lost = this.o.sinceRenewed() > fenceAfterMs(this.o.ttlSeconds);
      if (!lost) {
        if (this.fenced) {
          this.fenced = false;
          this.o.log?.('host lease renewed: taking work again');
          this.o.unfence();
        }
        return;
      }
      if (this.fenced) return;
      const reachable = (await Promise.all(this.peers.map((p) => tcpReachable(p, 1000)))).filter(Boolean).length;
      if (!isolated(this.peers.length, reachable)) return;
      if (this.o.sinceRenewed() <= fenceAfterMs(this.o.ttlSeconds)) return; // renewed while we looked
      this.fenced = true;
      this.o.log?.(`host lease not renewed for ${Math.round(this.o.sinceRenewed() / 1000)} s and ${reachable} of ${this.peers.length} other hosts reachable: this host is cut off, stopping its stateless containers`);
      await this.o.fence();
    } finally {
      this.checking = false;
    }
  }
}

/**
 * A host's liveness: `/host/<name>` under a short etcd lease, kept alive by
 * heartbeats. When the process or machine dies the heartbeats stop, the
 * lease expires and the key (with every /ports entry put under the same
 * lease) vanishes: that is how the cluster learns a host is gone.
 *
 * If the lease is lost while we live (etcd unreachable for longer than the
 * TTL), a new one is granted and everything is put again. When etcd lost
 * its quorum instead, the old lease may still live in etcd (a new etcd
 * leader gives every lease a fresh TTL), holding the host key: the key is
 * taken over from our own lost lease at once (compare on its mod revision),
 * so the host's record and endpoints never lapse in between; endpoints put
 * again move onto the new lease, and the old one ends by itself.
 *
 * A name is one host's at a time. The key is created only if absent, in one
 * transaction, so of two hosts starting with one name exactly one wins; the
 * other gets VIKING_E_HOST_NAME_TAKEN. A key left by a host that died is
 * waited out (its lease ends within its TTL); a live holder keeps its lease
 * alive and keeps the name.
 *
 * A planned stop (SIGTERM: a restart, an upgrade) hands the host's record
 * and endpoints over to a grace lease that nothing keeps alive (handOver):
 * the containers go on serving, and the leader leaves them where they are
 * until the grace ends. The host that starts again with the same name and
 * address takes the record over (claimHostName) and revokes the grace lease
 * once its slave has published again what it adopted (releaseGrace).
 */
import type { Etcd3, Lease } from 'etcd3';
import { connectEtcd } from '../store/client.js';
import { VikingError } from '../errors.js';
import { PREFIX, hostKey } from '../store/keys.js';
import type { HostRecord } from '../store/records.js';
import type { LeasedWriter } from '../slave/slave.js';

/** How far past its due time (a third of the TTL after the last one) a renewal counts as stalled, and goes to every member. */
const STALL_GRACE_MS = 300;
/** How often a stalled lease sends another single keepalive, and each one's deadline. */
const STALL_TICK_MS = 100;
const LEASE_GONE = 'lease gone';
const STALL_TRY_MS = 500;

/** One keepalive of lease `id` through `client` (one member), answered within `ms`: true if etcd renewed it. */
async function keepaliveOnceVia(client: Etcd3, id: string, ms: number): Promise<void> {
  const stream = await client.leaseClient.leaseKeepAlive({ deadline: new Date(Date.now() + ms) });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), ms + 100);
    stream.on('data', (res: { TTL: string }) => {
      clearTimeout(timer);
      stream.end();
      if (Number(res.TTL) > 0) resolve();
      else reject(new Error(LEASE_GONE));
    });
    stream.on('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.write({ ID: id });
  });
}

export class HostLease implements LeasedWriter {
  private lease: Lease | undefined;
  private closed = false;
  private renewTimer: NodeJS.Timeout | undefined;
  /** When the lease was last granted or renewed (epoch ms): a host cut off from etcd sees it age. */
  private renewedAt = Date.now();
  /** The grace lease of a planned stop this host took over, until releaseGrace. */
  private graceLease: string | undefined;
  /** The id of the last lease that held the host key: a renewal may take the key over from it. */
  private heldBy: string | undefined;
  /** Called after a lost lease was replaced, so leased keys are put again. */
  onRenewed: () => void = () => {};
  /** Called when putting the host key under a new lease failed (etcd away, or the name taken meanwhile). */
  onRenewFailed: (err: Error) => void = () => {};

  constructor(
    private readonly client: Etcd3,
    private record: HostRecord,
    private readonly ttlSeconds = 3,
    /** Every etcd member's URL: a stalled keepalive stream is got around through the others. */
    private readonly memberUrls: string[] = [],
  ) {}

  /** Milliseconds since the lease was last renewed. */
  /**
   * True when this host's etcd calls failed within the last `ms` (a keepalive
   * failed, the lease was lost, a renewal failed): etcd was away from here.
   */
  troubledWithin(ms: number): boolean {
    return Date.now() - this.troubleAt < ms;
  }

  private troubleAt = 0;

  /**
   * When a renewal last succeeded after more than a TTL without one (epoch
   * ms; 0: never): etcd could not renew anyone's lease meanwhile (no quorum)
   * or this host could not reach it. The leader holds missing hosts for a
   * while after it (OUTAGE_GRACE_MS in lib/dispatch/dispatch.ts).
   */
  outageEndedAt = 0;

  sinceRenewed(): number {
    return Date.now() - this.renewedAt;
  }

  get ttl(): number {
    return this.ttlSeconds;
  }

  get name(): string {
    return this.record.name;
  }

  async start(): Promise<void> {
    const lease = this.newLease();
    try {
      const id = await lease.grant();
      const claimed = await claimHostName(this.client, this.record, { leaseId: id });
      this.graceLease = claimed.graceLease;
      this.heldBy = id;
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
    this.lease = lease;
    this.renewedAt = Date.now();
    this.stallTimer = setInterval(() => this.tick(), STALL_TICK_MS);
  }

  private stallTimer: NodeJS.Timeout | undefined;
  /** A keepalive is under way. */
  private renewing = false;
  /** One client per etcd member (or the host's own client when no URLs were given). */
  private perMember: Etcd3[] | undefined;
  /** The member the next routine keepalive goes to (the last one that answered). */
  private preferred = 0;

  /**
   * Keeps the lease alive, a keepalive every third of the TTL, each on a
   * fresh stream to one member with a short deadline; this class does it
   * rather than the etcd client. The client keeps one stream on one member,
   * and if that member stops answering without a reset (a pulled cable, a
   * frozen process) it notices only a whole TTL after the last answer and
   * then needs another try, while etcd ends the lease a TTL after the last
   * renewal: a live, connected host lost its key and endpoints, the leader
   * moved its jobs, and they ran twice while this host took its copies down
   * (seen in test/e2e/netns-faults, now the pulled-cable scenario of test/chaos/servers-chaos). (Its retry also leaks a timer when a
   * stream both times out and errors.) So a renewal overdue by
   * STALL_GRACE_MS goes to every member at once, and any answer renews the
   * lease (test/integration/host-lease-stalled-member). An answer that the
   * lease is gone, or no renewal for two TTLs, makes a new lease (renewSoon).
   */
  private tick(): void {
    const lease = this.lease;
    if (!lease || this.closed || this.renewing) return;
    const since = this.sinceRenewed();
    const every = (this.ttlSeconds * 1000) / 3;
    if (since < every) return;
    if (since > 2 * this.ttlSeconds * 1000) return this.lost(lease);
    this.perMember ??= this.memberUrls.length > 0 ? this.memberUrls.map((u) => connectEtcd([u])) : [this.client];
    const members = this.perMember;
    const stalled = since >= every + STALL_GRACE_MS;
    const first = this.preferred % members.length;
    const targets = stalled ? members.map((_, i) => i) : [first];
    this.renewing = true;
    void lease
      .grant()
      .then((id) => Promise.any(targets.map(async (i) => ((await keepaliveOnceVia(members[i]!, id, STALL_TRY_MS)), i))))
      .then((i) => {
        this.preferred = i;
        if (this.lease !== lease || this.closed) return;
        const now = Date.now();
        if (now - this.renewedAt > this.ttlSeconds * 1000) this.outageEndedAt = now;
        this.renewedAt = now;
      })
      .catch((err: unknown) => {
        this.troubleAt = Date.now();
        if (!stalled) this.preferred = first + 1;
        const errors = err instanceof AggregateError ? err.errors : [err];
        if (errors.some((e) => e instanceof Error && e.message === LEASE_GONE)) this.lost(lease);
      })
      .finally(() => {
        this.renewing = false;
      });
  }

  /** etcd no longer holds `lease` for us (or we cannot tell for two TTLs): a new one takes the key over. */
  private lost(lease: Lease): void {
    this.troubleAt = Date.now();
    if (this.closed || this.lease !== lease) return;
    this.lease = undefined;
    lease.release();
    this.renewSoon(100);
  }

  private newLease(): Lease {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => this.lost(lease));
    return lease;
  }

  private renewSoon(ms: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      if (this.closed) return;
      const lease = this.newLease();
      // Create-only again: if another host took the name meanwhile, it keeps it and we keep trying.
      let id = '';
      lease
        .grant()
        .then((granted) => claimOnce(this.client, this.record, (id = granted), this.heldBy))
        .then((won) => {
          if (!won) throw new Error(`host name ${this.record.name} is still held (by our own expiring lease, or by another live host)`);
          this.heldBy = id;
          this.lease = lease;
          this.renewedAt = this.outageEndedAt = Date.now();
          this.onRenewed();
        })
        .catch((err: Error) => {
          this.troubleAt = Date.now();
          this.onRenewFailed(err);
          void lease.revoke().catch(() => {});
          // Soon: while etcd elects a leader every try fails fast, and the key may be gone meanwhile.
          this.renewSoon(250);
        });
    }, ms);
  }

  /** Updates the host record (drain flag, tags) under the same lease. */
  async update(patch: Partial<HostRecord>): Promise<void> {
    this.record = { ...this.record, ...patch };
    await this.put(hostKey(this.record.name), JSON.stringify(this.record));
  }

  async put(key: string, value: string): Promise<void> {
    const lease = this.lease;
    if (!lease) throw new Error('host lease is being renewed');
    await lease.put(key).value(value);
  }

  /** True when this host started by taking over the record of its own planned stop. */
  get adopted(): boolean {
    return this.graceLease !== undefined;
  }

  /**
   * Revokes the grace lease of the planned stop this host took over: the
   * endpoints it did not publish again (containers gone meanwhile) vanish now.
   */
  async releaseGrace(): Promise<void> {
    const id = this.graceLease;
    this.graceLease = undefined;
    if (id) await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => {});
  }

  /**
   * A planned stop: moves the host record (marked `stopping`) and every
   * endpoint this host published onto a new lease of `graceSeconds` that
   * nothing renews, then revokes the host's own lease (its router's ack goes
   * with it, so no slave waits on a router that is gone). Until the grace
   * ends, the containers keep serving and the leader moves none of them.
   */
  async handOver(graceSeconds: number): Promise<{ endpoints: number; until: string }> {
    this.closed = true;
    clearInterval(this.stallTimer);
    for (const c of this.perMember ?? []) if (c !== this.client) c.close();
    this.perMember = undefined;
    clearTimeout(this.renewTimer);
    const lease = this.lease;
    if (!lease) throw new Error('no host lease to hand over (etcd was unreachable)');
    const leaseId = await lease.grant();
    const grace = await this.client.leaseClient.leaseGrant({ TTL: graceSeconds, ID: 0 });
    const attached = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId, keys: true });
    const keys = attached.keys.map((k) => k.toString()).filter((k) => k.startsWith(PREFIX.ports));
    const values = await Promise.all(keys.map((k) => this.client.get(k).buffer()));
    const carried = keys.map((k, i) => [k, values[i]] as const).filter((e): e is readonly [string, Buffer] => e[1] !== null);
    for (let i = 0; i < carried.length; i += 100) {
      const ops = carried.slice(i, i + 100).map(([k, v]) => this.client.put(k).value(v).lease(grace.ID));
      const moved = await this.client.if(hostKey(this.record.name), 'Lease', '==', leaseId).then(...ops).commit();
      if (!moved.succeeded) throw new Error(`the host key is no longer under this host's lease`);
    }
    const now = Date.now();
    const until = new Date(now + graceSeconds * 1000).toISOString();
    this.record = { ...this.record, stopping: { since: new Date(now).toISOString(), until } };
    await this.client.put(hostKey(this.record.name)).value(JSON.stringify(this.record)).lease(grace.ID);
    this.lease = undefined;
    await lease.revoke().catch(() => {});
    return { endpoints: carried.length, until };
  }

  /** Revokes the lease: the host key and its endpoints disappear now, not after the TTL. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.stallTimer);
    for (const c of this.perMember ?? []) if (c !== this.client) c.close();
    this.perMember = undefined;
    clearTimeout(this.renewTimer);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => {});
  }
}

/**
 * Puts the host key under `leaseId` if no one holds it, or if our own
 * previous lease (`takeOverFrom`) still does; false if someone else does.
 *
 * The take-over matters when etcd lost quorum: the client gives its lease up
 * after the TTL, but etcd expires no lease without a leader and extends every
 * lease when one is elected. The old lease then ends a TTL after quorum is
 * back, taking the host key and every /ports entry with it, and each router
 * would lose the host's endpoints until they were put again. Moving the key
 * (and, through onRenewed, the endpoints) onto the new lease first keeps
 * them all the way through.
 */
async function claimOnce(client: Etcd3, record: HostRecord, leaseId: string, takeOverFrom?: string): Promise<boolean> {
  const key = hostKey(record.name);
  const put = (): ReturnType<Etcd3['put']> => client.put(key).value(JSON.stringify(record)).lease(leaseId);
  const res = await client.if(key, 'Create', '==', 0).then(put()).commit();
  if (res.succeeded || takeOverFrom === undefined) return res.succeeded;
  const moved = await client.if(key, 'Lease', '==', takeOverFrom).then(put()).commit();
  return moved.succeeded;
}

/**
 * Takes over the record a planned stop of this host left, if it is still
 * the one seen (mod revision): the key moves onto this host's lease.
 */
async function takeOver(client: Etcd3, record: HostRecord, leaseId: string, modRevision: string): Promise<boolean> {
  const key = hostKey(record.name);
  const res = await client.if(key, 'Mod', '==', modRevision).then(client.put(key).value(JSON.stringify(record)).lease(leaseId)).commit();
  return res.succeeded;
}

interface Holder {
  ttl: number;
  record: Partial<HostRecord>;
  lease: string;
  modRevision: string;
}

/** Seconds the lease holding `key` has left, or null when the key is gone. */
async function holderTtl(client: Etcd3, key: string): Promise<Holder | null> {
  const res = await client.get(key).exec();
  const kv = res.kvs[0];
  if (!kv) return null;
  let record: Partial<HostRecord> = {};
  try {
    record = JSON.parse(kv.value.toString()) as Partial<HostRecord>;
  } catch {
    /* shown as unknown below */
  }
  if (kv.lease === '0') return { ttl: Infinity, record, lease: '0', modRevision: kv.mod_revision };
  const ttl = await client.leaseClient.leaseTimeToLive({ ID: kv.lease });
  return { ttl: Number(ttl.TTL), record, lease: kv.lease, modRevision: kv.mod_revision };
}

/** What claimHostName took: the grace lease of this host's own planned stop, when it took that over. */
export interface Claimed {
  graceLease?: string;
}

/**
 * Waits until no live host holds `/host/<name>` (a dead holder's key goes
 * when its lease ends, within its TTL), or throws VIKING_E_HOST_NAME_TAKEN.
 * With `claim`, takes the name in the same step, create-only, so of two
 * hosts starting with one name exactly one wins. The record of a planned
 * stop of a host with this name and address is this host's to take over.
 */
export async function claimHostName(client: Etcd3, record: HostRecord, claim: { leaseId: string } | null, maxWaitMs = 15_000): Promise<Claimed> {
  const key = hostKey(record.name);
  let waited = false;
  for (;;) {
    if (claim ? await claimOnce(client, record, claim.leaseId) : !(await client.get(key).exists())) return {};
    const holder = await holderTtl(client, key);
    if (holder === null) continue; // it went away between the two reads
    // Our own restart or upgrade: take the record over and adopt the containers it kept.
    if (holder.record.stopping && (record.ip === undefined || holder.record.ip === record.ip)) {
      if (!claim) return {};
      if (await takeOver(client, record, claim.leaseId, holder.modRevision)) return holder.lease !== '0' ? { graceLease: holder.lease } : {};
      continue;
    }
    // An expired lease whose key is about to go: look again shortly.
    const waitMs = holder.ttl < 0 ? 250 : holder.ttl * 1000 + 250;
    // Waited out one whole lease and the name is still held: its holder is alive (it renewed, or a new host took it).
    if (waited || !Number.isFinite(waitMs) || waitMs > maxWaitMs) {
      const who = holder.record.ip ? ` (address ${holder.record.ip}, started ${holder.record.startedAt ?? '?'})` : '';
      throw new VikingError(
        'VIKING_E_HOST_NAME_TAKEN',
        `another live host of this cluster is named ${record.name}${who}; start this one with another --name, or stop that one first`,
      );
    }
    if (holder.ttl >= 0) waited = true;
    await new Promise((r) => setTimeout(r, waitMs));
  }
}

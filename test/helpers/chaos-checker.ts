/**
 * The chaos tests' checker: every 100 ms it reads, and only reads, what each
 * server's dockerd runs of one stack (running containers by their job labels)
 * and what etcd says (`/run` placements, `/ports` endpoints, live `/host`
 * keys, `/leader`). It never kills, starts or writes anything, so the
 * scenarios' faults are the only changes and a replica that runs twice is
 * seen, not prevented.
 *
 * A daemon that does not answer (powered off, restarting) is recorded as
 * unknown for that sample. etcd is read through one client per member, all
 * at once, and the first complete answer counts: a member behind a cut cable
 * or frozen would otherwise blind the checker for a call's whole deadline.
 * A read is linearizable, so a member without quorum never answers one; when
 * none answers within the period the sample's etcd is null, and a member's
 * client starts no new read while its last one is pending.
 */
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { LEADER_KEY, PREFIX } from '../../lib/store/keys.js';
import { placedHosts } from '../../lib/store/placements.js';

export interface CheckedServer {
  name: string;
  ip: string;
  docker: Docker;
}

export interface DaemonView {
  /** Running containers of the stack: job path (`stack/tag/node/n`) and container id. */
  copies: { job: string; id: string }[];
}

export interface EtcdView {
  /** Job path -> host name. */
  run: Record<string, string>;
  /** Job path -> the addresses of its published endpoints. */
  ports: Record<string, string[]>;
  hosts: string[];
  leader: string | null;
}

export interface Sample {
  /** Date.now() when the sample started. */
  t: number;
  /** Server name -> what its dockerd runs; null when it did not answer. */
  daemons: Record<string, DaemonView | null>;
  /** null when etcd did not answer within the period (or a read was still pending). */
  etcd: EtcdView | null;
}

export interface Twice {
  t: number;
  job: string;
  servers: string[];
}

export interface Checker {
  samples: Sample[];
  /** Samples taken between two Date.now() times. */
  between(from: number, to?: number): Sample[];
  /** Every (sample, job) where a job ran in more than one daemon, or twice in one. */
  twice(from?: number, to?: number): Twice[];
  /** The first sample at or after `from` for which `pred` holds (and its time), polling until `timeoutMs`. */
  waitFor(what: string, from: number, pred: (s: Sample) => boolean, timeoutMs: number): Promise<Sample>;
  /** The newest sample. */
  last(): Sample | undefined;
  stop(): Promise<void>;
}

/** The servers each job runs on in one sample (a server twice if it runs two copies). */
export function copiesByJob(s: Sample): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const [server, view] of Object.entries(s.daemons)) {
    for (const c of view?.copies ?? []) by.set(c.job, [...(by.get(c.job) ?? []), server]);
  }
  return by;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | null> =>
  Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);

export function startChecker(o: { servers: CheckedServer[]; etcd: Etcd3[]; stack: string; periodMs?: number }): Checker {
  const period = o.periodMs ?? 100;
  const samples: Sample[] = [];
  let running = true;
  const pending = new Set<Etcd3>();

  // A daemon whose last listing has not answered yet (a powered-off or cut server) is seen as away
  // at once, instead of holding every later sample for the timeout: the samples keep their 100 ms
  // period through a fault, so a replacement's time is not rounded up to the next slow sample.
  // A listing unanswered for 2 s is given up, so a server that comes back is seen again within 2 s.
  const listing = new Map<CheckedServer, number>();
  const daemon = async (s: CheckedServer): Promise<DaemonView | null> => {
    const since = listing.get(s);
    if (since !== undefined && Date.now() - since < 2000) return null;
    const mine = Date.now();
    listing.set(s, mine);
    const call = s.docker
      .listContainers({ filters: { label: [`viking.stack=${o.stack}`], status: ['running'] } })
      .catch(() => null)
      .finally(() => {
        if (listing.get(s) === mine) listing.delete(s);
      });
    const list = await withTimeout(call, period * 5);
    if (!list) return null;
    return {
      copies: list.map((c) => ({ job: `${c.Labels['viking.stack']}/${c.Labels['viking.tag']}/${c.Labels['viking.node']}/${c.Labels['viking.instance']}`, id: c.Id })),
    };
  };

  const readVia = async (client: Etcd3): Promise<EtcdView> => {
    const [run, ports, hosts, leader] = await Promise.all([
      placedHosts(client, o.stack),
      client.getAll().prefix(`${PREFIX.ports}${o.stack}/`).keys(),
      client.getAll().prefix(PREFIX.host).keys(),
      client.get(LEADER_KEY).string(),
    ]);
    const byJob: Record<string, string[]> = {};
    for (const key of ports) {
      // /ports/<stack>/<node>/<port>/<proto>/<ip>/<hostPort>/<tag>.<instance>
      const [stack, node, , , ip, , tagInstance = ''] = key.slice(PREFIX.ports.length).split('/');
      const dot = tagInstance.lastIndexOf('.');
      (byJob[`${stack}/${tagInstance.slice(0, dot)}/${node}/${tagInstance.slice(dot + 1)}`] ??= []).push(ip ?? '');
    }
    return {
      run: Object.fromEntries(run),
      ports: byJob,
      hosts: hosts.map((k) => k.slice(PREFIX.host.length)).sort(),
      leader,
    };
  };

  const etcd = (): Promise<EtcdView | null> => {
    const reads = o.etcd.filter((c) => !pending.has(c)).map((c) => {
      pending.add(c);
      return readVia(c).finally(() => pending.delete(c));
    });
    if (reads.length === 0) return Promise.resolve(null);
    return withTimeout(Promise.any(reads).catch(() => null), period * 4);
  };

  const loop = (async () => {
    while (running) {
      const t = Date.now();
      const [views, e] = await Promise.all([Promise.all(o.servers.map(daemon)), etcd()]);
      samples.push({ t, daemons: Object.fromEntries(o.servers.map((s, i) => [s.name, views[i]!])), etcd: e });
      const wait = period - (Date.now() - t);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();

  const between = (from: number, to = Infinity): Sample[] => samples.filter((s) => s.t >= from && s.t <= to);
  return {
    samples,
    between,
    twice(from = 0, to = Infinity) {
      const out: Twice[] = [];
      for (const s of between(from, to)) {
        for (const [job, servers] of copiesByJob(s)) if (servers.length > 1) out.push({ t: s.t, job, servers });
      }
      return out;
    },
    async waitFor(what, from, pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let seen = 0;
      for (;;) {
        for (; seen < samples.length; seen++) {
          const s = samples[seen]!;
          if (s.t >= from && pred(s)) return s;
        }
        if (Date.now() > deadline) {
          const l = samples.at(-1);
          throw new Error(`checker: timed out after ${timeoutMs} ms waiting for ${what}; last sample: ${JSON.stringify(l && { ...l, copies: Object.fromEntries(copiesByJob(l)) })}`);
        }
        await new Promise((r) => setTimeout(r, period / 2));
      }
    },
    last: () => samples.at(-1),
    async stop() {
      running = false;
      await loop;
    },
  };
}

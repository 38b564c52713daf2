/**
 * The etcd key layout, in one place. Every key viking reads or writes is built
 * and parsed here; callers never concatenate key strings themselves. Name
 * segments are validated before they get here (`[a-z0-9-]`), so no user input
 * can reach another key.
 */
import type { JobId, PortEndpoint } from './records.js';

export const PREFIX = {
  host: '/host/',
  stack: '/stack/',
  images: '/images/',
  proc: '/proc/',
  run: '/run/',
  deploy: '/deploy/',
  fixed: '/fixed/',
  /** Legacy: failure counts of hosts before the count moved into /deploy; only ever deleted now. */
  counter: '/counter/',
  ports: '/ports/',
  domains: '/domains/',
  tokens: '/tokens/',
  drain: '/drain/',
  locks: '/locks/',
  routers: '/routers/',
  claims: '/claims/',
  /** `/retiring/<host>/<job path>`: a slave is draining and stopping that job's old container (under the host's lease). */
  retiring: '/retiring/',
  /** TLS certificates (lib/certs/record.ts): `/certs/pem/<domain>`, `/certs/status/<domain>`, `/certs/acme/...`. */
  certs: '/certs/',
  /** ACME HTTP-01 answers every router serves: `/acme-challenge/<token>` -> key authorization, under the issuer's lease. */
  acmeChallenge: '/acme-challenge/',
  /** Cron ticks: `/cron/runs/<stack>/<node>/<tick>` (claim + history), `/cron/host/<host>/<stack>/<node>/<tick>` (what a host runs). */
  cron: '/cron/',
  /** `/secrets/<stack>`: SecretsRecord, sealed values only. */
  secrets: '/secrets/',
  /** The audit log (lib/audit/log.ts): `/audit/<time>-<seq>-<random>`, created once, never rewritten. */
  audit: '/audit/',
  /** `/pushes/<stack>/<id>`: a push in progress, its stages and output tail (lib/api/push-live.ts), under its own lease. */
  pushes: '/pushes/',
} as const;

export const LEADER_KEY = '/leader';
/**
 * Rewritten by the leader at the start of every dispatch pass; the pass's
 * commits compare its mod revision. A late try of an earlier pass's commit
 * (etcd3 retries a transaction whose try timed out, so a try can land after
 * the call answered) fails instead of placing a job the next pass placed
 * elsewhere: with placements in /deploy alone, no per-job key says "placed"
 * for a compare to catch.
 */
export const DISPATCH_EPOCH_KEY = '/dispatch/epoch';
export const REGISTRY_KEY = '/registry';
/** Cluster-wide settings (ClusterSettings, lib/store/settings.ts). */
export const SETTINGS_KEY = '/settings';
/** The cluster's id: made once by the first host, never changed; labels every container the cluster runs. */
export const CLUSTER_ID_KEY = '/cluster/id';
/** Held by the one server joining the cluster now (lib/join/join-lock.ts), under that server's lease. */
export const JOIN_LOCK_KEY = '/join/lock';
/** Held (under a lease) while `viking hosts rebalance` moves replicas: one rebalance at a time. */
export const REBALANCE_LOCK_KEY = '/rebalance';

/** `/certs/pem/<domain>`: a CertRecord (key included; never shown). */
export const certKey = (domain: string): string => `${PREFIX.certs}pem/${domain}`;
export const certPemPrefix = `${PREFIX.certs}pem/`;
/** `/certs/status/<domain>`: the ACME issuer's CertStatus for the domain. */
export const certStatusKey = (domain: string): string => `${PREFIX.certs}status/${domain}`;
export const certStatusPrefix = `${PREFIX.certs}status/`;
/** The ACME account (key, url, email, directory), made once per cluster and directory. */
export const ACME_ACCOUNT_KEY = '/certs/acme/account';
/** AcmeConfig (lib/certs/acme-config.ts): the directory URL and contact email; absent = ACME off. */
export const ACME_CONFIG_KEY = '/certs/acme/config';
/** Held under a lease by the one host that orders certificates now. */
export const ACME_ISSUER_KEY = '/certs/acme/issuer';
export const acmeChallengeKey = (token: string): string => `${PREFIX.acmeChallenge}${token}`;

/** Fingerprint of the cluster's secrets key, put once by the host that made the key; no key material. */
export const SECRETS_KEY_ID_KEY = '/secrets-key/id';
export const secretsKey = (stack: string): string => `${PREFIX.secrets}${stack}`;
export const cronRunsPrefix = `${PREFIX.cron}runs/`;
export const cronRunsStackPrefix = (stack: string): string => `${cronRunsPrefix}${stack}/`;
export const cronRunsNodePrefix = (stack: string, node: string): string => `${cronRunsPrefix}${stack}/${node}/`;
export const cronHostPrefix = (host: string): string => `${PREFIX.cron}host/${host}/`;
const tickSeg = (tick: number): string => String(tick).padStart(15, '0');
export const cronRunKey = (stack: string, node: string, tick: number): string => `${cronRunsNodePrefix(stack, node)}${tickSeg(tick)}`;
export const cronHostKey = (host: string, stack: string, node: string, tick: number): string => `${cronHostPrefix(host)}${stack}/${node}/${tickSeg(tick)}`;

/** `<stack>/<node>/<tick>`, the part after cronRunsPrefix or cronHostPrefix(host). */
export function parseCronPath(path: string): { stack: string; node: string; tick: number } | null {
  const parts = path.split('/');
  if (parts.length !== 3) return null;
  const [stack, node, seg] = parts as [string, string, string];
  if (!stack || !node || !/^\d{15}$/.test(seg)) return null;
  return { stack, node, tick: Number(seg) };
}

/**
 * `/audit/<ms>-<seq>-<random>`: the milliseconds since 1970 zero-padded to 15
 * digits, so keys sort by time as strings; a per-process sequence keeps one
 * API host's entries in order within a millisecond; 16 random hex digits keep
 * two API hosts' keys apart (and the create-only put refuses the rare clash).
 */
export const auditKey = (ms: number, seq: number, random: string): string =>
  `${PREFIX.audit}${String(Math.max(0, Math.floor(ms))).padStart(15, '0')}-${String(seq).padStart(6, '0')}-${random}`;
/** The first possible audit key at or after `ms`: the start of a range read by time. */
export const auditTimeKey = (ms: number): string => `${PREFIX.audit}${String(Math.max(0, Math.floor(ms))).padStart(15, '0')}`;
/** The time an audit key was written, or undefined for a key of another shape. */
export function auditKeyTime(key: string): number | undefined {
  const m = /^\/audit\/(\d{15})-\d{6}-[0-9a-f]{16}$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

export const hostKey = (host: string): string => `${PREFIX.host}${host}`;
export const stackKey = (stack: string): string => `${PREFIX.stack}${stack}`;
export const imageKey = (stack: string, tag: string, image: string): string => `${PREFIX.images}${stack}/${tag}/${image}`;
export const domainKey = (domain: string): string => `${PREFIX.domains}${domain}`;
/** `/claims/<domain>`: a push about to take a new domain (under that push's lease). */
export const claimKey = (domain: string): string => `${PREFIX.claims}${domain}`;
export const drainKey = (host: string): string => `${PREFIX.drain}${host}`;
/** `/routers/<host>`: the route-table revision that host's router serves (under the host's lease). */
export const routerKey = (host: string): string => `${PREFIX.routers}${host}`;
export const fixedKey = (stack: string, node: string): string => `${PREFIX.fixed}${stack}/${node}`;
export const tokenKey = (id: string): string => `${PREFIX.tokens}${id}`;
/** Held while a push, rollback, scale, env change or removal of the stack runs. */
export const stackLockKey = (stack: string): string => `${PREFIX.locks}${stack}`;
export const imagesStackPrefix = (stack: string): string => `${PREFIX.images}${stack}/`;
export const fixedStackPrefix = (stack: string): string => `${PREFIX.fixed}${stack}/`;
export const runStackPrefix = (stack: string): string => `${PREFIX.run}${stack}/`;
export const portsStackPrefix = (stack: string): string => `${PREFIX.ports}${stack}/`;

/** `<stack>/<tag>/<node>/<n>`: the job's path, shared by /proc, /run, /deploy. */
export const jobPath = (job: JobId): string => `${job.stack}/${job.tag}/${job.node}/${job.instance}`;
export const procKey = (job: JobId): string => `${PREFIX.proc}${jobPath(job)}`;
export const runKey = (job: JobId): string => `${PREFIX.run}${jobPath(job)}`;
export const deployPrefix = (host: string): string => `${PREFIX.deploy}${host}/`;
export const deployKey = (host: string, job: JobId): string => `${deployPrefix(host)}${jobPath(job)}`;
export const retiringKey = (host: string, job: JobId): string => `${PREFIX.retiring}${host}/${jobPath(job)}`;
export const procTagPrefix = (stack: string, tag: string): string => `${PREFIX.proc}${stack}/${tag}/`;
export const procStackPrefix = (stack: string): string => `${PREFIX.proc}${stack}/`;
export const portsNodePrefix = (stack: string, node: string): string => `${PREFIX.ports}${stack}/${node}/`;

export function portsKey(e: PortEndpoint): string {
  return `${PREFIX.ports}${e.stack}/${e.node}/${e.port}/${e.proto}/${e.ip}/${e.hostPort}/${e.tag}.${e.instance}`;
}

/** Parses `<stack>/<tag>/<node>/<n>` (the part after a family prefix). */
export function parseJobPath(path: string): JobId | null {
  const parts = path.split('/');
  if (parts.length !== 4) return null;
  const [stack, tag, node, n] = parts as [string, string, string, string];
  const instance = Number(n);
  if (!stack || !tag || !node || !Number.isInteger(instance) || instance < 1) return null;
  return { stack, tag, node, instance };
}

/** The job of a key under /proc/ or /run/. */
export function jobFromKey(key: string, prefix: string): JobId | null {
  return key.startsWith(prefix) ? parseJobPath(key.slice(prefix.length)) : null;
}

/** The host and job of a `/deploy/<host>/<job>` key. */
export function parseDeployKey(key: string): { host: string; job: JobId } | null {
  if (!key.startsWith(PREFIX.deploy)) return null;
  const rest = key.slice(PREFIX.deploy.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const job = parseJobPath(rest.slice(slash + 1));
  return job ? { host: rest.slice(0, slash), job } : null;
}

export const sameJob = (a: JobId, b: JobId): boolean =>
  a.stack === b.stack && a.tag === b.tag && a.node === b.node && a.instance === b.instance;

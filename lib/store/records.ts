/**
 * The JSON records viking keeps in etcd, one interface per key family.
 * Everything that crosses a process boundary through etcd is typed here.
 */
import type { CronSchedule } from '../cron/schedule.js';

/** `/host/<name>`: a live server, under the host's lease. */
export interface HostRecord {
  name: string;
  /** Address containers publish their ports on and routers proxy to. */
  ip: string;
  tags: string[];
  /** The host's real memory (bytes) and CPUs, from its Docker Engine; containers 0 = no cap. */
  capacity: { memory: number; cpu: number; containers: number };
  /**
   * What the host gives every container it starts: a memory limit for those
   * whose node sets no `memory:` (also what the planner counts for them) and
   * a pids limit for all. Absent on hosts older than these limits.
   */
  limits?: ContainerLimits;
  master: boolean;
  /** Base URL of this host's /v1 API. */
  api: string;
  /** Port of this host's front router (0 when it runs none). */
  routerPort: number;
  /** false: the host runs no router (`--no-router`); absent on hosts older than the role: it runs one. */
  router?: boolean;
  /** The router's HTTPS port (0: HTTPS off); absent on hosts without a router or older than this field. */
  httpsPort?: number;
  /** What carries the router's requests (`--router-engine`, lib/router/engine.ts); absent as httpsPort. */
  routerEngine?: 'node' | 'nginx';
  /** `draining` hosts keep running what they have but get nothing new. */
  draining: boolean;
  /**
   * Set by a host stopping on purpose (SIGTERM: a restart or an upgrade):
   * its record and endpoints are kept under a grace lease until `until`, its
   * containers keep running and serving, the leader neither moves its jobs
   * nor places new ones there, and the host that starts again under this
   * name adopts them. Not back by `until`: the lease ends and its work moves.
   */
  stopping?: { since: string; until: string };
  startedAt: string;
  version: string;
  /**
   * Placement layout this host's code reads (lib/store/placements.ts,
   * PLACEMENT_LAYOUT): 2 reads /deploy alone; absent on older hosts, which
   * read /run, so the leader keeps /run written while one of them lives.
   */
  layout?: number;
}

/** Per-container defaults a host applies (`viking host --default-memory`, `--pids-limit`). */
export interface ContainerLimits {
  /** Memory limit in bytes for a container whose node sets no `memory:`. */
  defaultMemory: number;
  /** Most processes (threads included) one container may run. */
  pidsLimit: number;
}

/** Identity of one replica: `/<stack>/<tag>/<node>/<instance>` under /proc, /run, /deploy. */
export interface JobId {
  stack: string;
  tag: string;
  node: string;
  instance: number;
}

/** `/proc/<stack>/<tag>/<node>/<n>`: what to run, as the slave needs it. */
export interface JobSpec extends JobId {
  /** Docker image reference, resolved at push time. */
  image: string;
  expose: number[];
  volumes: string[];
  run?: string | string[];
  cwd?: string;
  env: Record<string, string>;
  service: boolean;
  health?: { path?: string };
  tags: string[];
  prefer: string[];
  memory: number;
  cpu: number;
  /** Replicas of the node, so the planner can spread them. */
  scale: number;
  /**
   * The stack's incarnation (StackRecord.incarnation): names the node's
   * volumes, so a stack made again after `viking rm` never mounts the old
   * one's. Absent in releases made before incarnations.
   */
  incarnation?: string;
  /** `schedule:` in the Vikingfile: a cron job, never a /proc replica (lib/cron). */
  cron?: CronSchedule;
  /**
   * The stack's secrets (`viking secrets`), sealed with the cluster key,
   * laid into the job when it is written (lib/secrets): the slave opens them
   * at container start. Never plaintext in etcd.
   */
  secrets?: SealedSecret[];
}

/** One secret as etcd keeps it: AES-256-GCM under the cluster key, bound to its stack and name. */
export interface SealedSecret {
  name: string;
  /** base64 of the 12-byte nonce, the ciphertext and the 16-byte tag. */
  iv: string;
  data: string;
  tag: string;
  /** Fingerprint of the cluster key it was sealed with (lib/secrets/key-file.ts). */
  key: string;
}

/** `/secrets/<stack>`: the stack's secrets, sealed. */
export interface SecretsRecord {
  stack: string;
  secrets: SealedSecret[];
  updatedAt: string;
}

/**
 * `/cron/runs/<stack>/<node>/<tick>`: one tick of a cron node. Created once,
 * with a create-only transaction fenced on the leadership: the key is the
 * claim that makes the tick run exactly once. Then the runner updates it.
 */
export interface CronRunRecord {
  stack: string;
  node: string;
  /** The scheduled instant (ISO). */
  tick: string;
  /** Release whose image and command ran. */
  tag: string;
  /** The leader that claimed the tick. */
  claimedBy: string;
  claimedAt: string;
  /** `skipped` (concurrency: forbid), `unplaced` (no host fit), `lost` (its host vanished before it finished). */
  state: 'placed' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'unplaced' | 'lost';
  host?: string;
  container?: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  exitCode?: number;
  reason?: string;
  /** The last lines of its output (at most CRON_LOG_LINES, each cut at 500 characters). */
  logs?: string[];
}

/** What the slave reports in `/deploy/<host>/<job>` once it has acted. */
export interface DeployState {
  /**
   * `backoff`: failed, tried again at `retryAt`; `crash-loop`: failed
   * --max-failures times in a row and tried again every 30 s for as long as
   * it is wanted. `failed` is written only by hosts older than that.
   */
  state: 'starting' | 'running' | 'backoff' | 'crash-loop' | 'failed';
  container?: string;
  /** Why the job is not running (or, when running again, why it last failed), with the container's last log lines. */
  reason?: string;
  logs?: string[];
  /** Failures in a row, what the backoff doubles on. */
  failures?: number;
  /** Every failure of the job on this host (a crash, a failed start or health check, a kill from outside). */
  restarts?: number;
  /** When the next start is tried (ISO time), while in backoff or crash-loop. */
  retryAt?: string;
  at: string;
}

/** `/ports/<stack>/<node>/<port>/<proto>/<ip>/<hostPort>/<tag>.<n>`: a healthy endpoint. */
export interface PortEndpoint {
  stack: string;
  tag: string;
  node: string;
  instance: number;
  host: string;
  ip: string;
  port: number;
  hostPort: number;
  proto: 'tcp' | 'udp';
  container: string;
  /** The node's first exposed port: the one the router sends HTTP to. */
  primary: boolean;
}

/** A container node of a release, as pushed: a JobSpec without the replica's identity. */
export type NodeTemplate = Omit<JobSpec, 'stack' | 'tag' | 'instance'>;

/** One release of a stack: what `viking push` produced, or a rollback or env change derived from one. */
export interface ReleaseRecord {
  tag: string;
  number: number;
  at: string;
  by: string;
  images: Record<string, string>;
  /** Directory holding the pushed source on the host that built it. */
  source: string;
  builtOn: string;
  /** How the release came to be: a push, a rollback to `from`, or an env change on top of `from`. */
  origin?: { kind: 'push' | 'rollback' | 'env' | 'secrets'; from?: string };
  /** Container nodes as declared (scale and env from the Vikingfile), so the release can be deployed again. */
  nodes?: Record<string, NodeTemplate>;
  /** Domains by node, and website nodes' document roots, as this release declared them. */
  domains?: Record<string, string[]>;
  websites?: Record<string, string>;
  /** `hsts:` max-age by node, for the nodes that set it (a rollback brings back its release's). */
  hsts?: Record<string, number>;
  /** Nodes with `access_log: true` (a rollback brings back its release's). */
  accessLog?: string[];
  /** The stack's env overrides (viking env) in force when the release was deployed. */
  env?: Record<string, string>;
}

/** `viking scale` on a node: kept across pushes while the Vikingfile's scale stays `declared`. */
export interface ScaleOverride {
  replicas: number;
  declared: number;
}

/** `/stack/<stack>`: the current release and the history. */
export interface StackRecord {
  name: string;
  comment?: string;
  /** Tag of the release taking traffic, null before the first one is healthy. */
  current: string | null;
  /** Last release number handed out, so tags never repeat. */
  lastRelease: number;
  releases: ReleaseRecord[];
  /** Domains the stack claimed, by node. */
  domains: Record<string, string[]>;
  /** Website nodes: node -> document root inside the release source. */
  websites: Record<string, string>;
  /** `hsts:` max-age by node, of the release taking traffic (the router reads it). */
  hsts?: Record<string, number>;
  /** Nodes with `access_log: true` in the release taking traffic (the router reads it). */
  accessLog?: string[];
  /** `viking env set` overrides, applied over every container node's env. */
  env?: Record<string, string>;
  /** `viking scale` overrides by node. */
  scale?: Record<string, ScaleOverride>;
  /**
   * Random id made when the stack is first pushed and forgotten by `viking rm`:
   * its volumes carry it, so a later stack of the same name starts empty.
   */
  incarnation?: string;
}

/** `/tokens/<id>`: an API token; only the sha256 of its secret is kept. */
export interface TokenRecord {
  id: string;
  name: string;
  /** sha256 hex of the token's secret part. */
  hash: string;
  createdAt: string;
  createdBy: string;
  /** admin, deployer or reader (lib/auth/roles.ts); records from before roles have none and are admin. */
  role?: string;
  /** Stack patterns the token is scoped to (`shop`, `team-*`); none means every stack. */
  stacks?: string[];
  /** Domain patterns a deployer's push may claim beyond the default policy (lib/auth/push-policy.ts). */
  domains?: string[];
  /** When the token stops working (ISO time); none means never. */
  expiresAt?: string;
  /** When the secret was last replaced by `viking token rotate`. */
  rotatedAt?: string;
}

/** `/locks/<stack>`: who is changing the stack right now (under the holder's lease). */
export interface StackLock {
  stack: string;
  what: string;
  by: string;
  host: string;
  since: string;
}

/** `/domains/<domain>`: which stack node serves a domain. */
export interface DomainRecord {
  stack: string;
  node: string;
  /** `website` domains are served from files, `container` ones proxied. */
  kind: 'container' | 'website';
}

/**
 * `/routers/<host>`: what the router of a host serves, under the host's lease.
 * A slave waits until every router has seen the revision that withdrew an
 * endpoint before it stops the container behind it.
 */
export interface RouterAck {
  host: string;
  /** etcd revision of the route table every worker of this router serves. */
  revision: string;
  workers: number;
  at: string;
}

/** What readRecords (lib/store/client.ts) gives for a value that is not JSON; an empty value reads as undefined. */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * The API's wire names and shapes that the server, the CLI and the dashboard
 * all speak: the states a job row can be in, the rows of /v1/ps,
 * /v1/stacks, /v1/allocate, /v1/network and /v1/capacity, and a push in progress (/v1/pushes). Plain TypeScript with no imports, so the UI
 * bundle (ui/, esbuild) takes it as it is and nobody writes them twice.
 */

/**
 * A job's state in ps, info, the dashboard and /metrics: pending (no host
 * yet), placed (its slave not done yet), what its slave reports (starting,
 * running, backoff, crash-loop, failed), lost (its host gone, dispatch moves
 * it), waiting-host (its host gone, its volume pinned there).
 */
export const JOB_STATES = ['pending', 'placed', 'starting', 'running', 'backoff', 'crash-loop', 'failed', 'lost', 'waiting-host'] as const;
/** A row of its own for a routing problem that no job shows (a stack without jobs, a record naming no stack). */
export const UNROUTABLE = 'unroutable';
export type JobStateName = (typeof JOB_STATES)[number] | typeof UNROUTABLE;

/** A row of `GET /v1/ps`: one job. */
export interface JobRow {
  stack: string;
  tag: string;
  node: string;
  instance: number;
  host: string | null;
  state: JobStateName;
  current: boolean;
  container: string | null;
  endpoints: string[];
  reason: string | null;
  logs: string[];
  image: string;
  /** Failures of the job on its host so far (crashes, failed starts, kills from outside). */
  restarts: number;
  /** When its host tries to start it again (ISO time), while it is in backoff or crash-loop. */
  nextTry: string | null;
}

/** A row of `GET /v1/stacks`. */
export interface StackRow {
  name: string;
  current: string | null;
  releases: number;
  domains: string[];
  updatedAt: string | null;
}

/** One replica in `GET /v1/allocate/:stack/:tag/:node`. */
export interface ReplicaAllocation {
  instance: number;
  /** Where it runs (placed) or would go (planned); null when no host fits. */
  host: string | null;
  status: 'placed' | 'planned' | 'unplaceable' | 'waiting-host';
  /** dowding's reasons when unplaceable ("2 hosts: not enough memory"). */
  reasons: string[];
}

/** dowding's verdict on one host for a node, in `GET /v1/allocate/:stack/:tag/:node`. */
export interface HostVerdict {
  host: string;
  fits: boolean;
  /** The first filter that refused the node, when it does not fit. */
  reason: string | null;
  /** Lower is better; null when it does not fit. */
  score: number | null;
  /** Replicas of this node already there. */
  replicas: number;
}

/** `GET /v1/allocate/:stack/:tag/:node`. */
export interface Allocation {
  stack: string;
  tag: string;
  node: string;
  /** true when the release has no jobs now and this is what a deploy of it would do. */
  hypothetical: boolean;
  revision: string;
  replicas: ReplicaAllocation[];
  hosts: HostVerdict[];
}

/** The stages a rollout (push, env, scale, rollback) goes through, in the order it reaches them. */
export type RolloutStage = 'vikingfile' | 'release' | 'build' | 'registry' | 'schedule' | 'deploy' | 'switch' | 'cleanup' | 'done' | 'rebalance';

/** A push in progress or just ended, as `/pushes/<stack>/<id>` holds it and `GET /v1/pushes/:stack` answers it. */
export interface PushRecord {
  id: string;
  stack: string;
  by: string;
  host: string;
  startedAt: string;
  state: 'running' | 'done' | 'failed';
  /** Each stage reached, in order, with its latest message. */
  stages: Array<{ stage: RolloutStage; message: string; at: string }>;
  /** The last lines of the push's output (every stage's messages), bounded by the writer. */
  output: string[];
  endedAt?: string;
  error?: string;
}

/** Memory (bytes), CPUs and containers: what a host has, or what its placed jobs reserve. */
export interface WireResources {
  memory: number;
  cpu: number;
  containers: number;
}

/**
 * A row of GET /v1/network (`viking hosts --json`, the dashboard's cluster
 * page): a live host's record (lib/store/records.ts HostRecord), whether it
 * leads, how many jobs are placed on it, and its etcd role.
 */
export interface NetworkRow {
  name: string;
  ip: string;
  tags: string[];
  capacity: WireResources;
  /** What the host gives a container whose node sets no limit; absent on older hosts. */
  limits?: { defaultMemory: number; pidsLimit: number };
  master: boolean;
  api: string;
  /** Port of the host's router (0 when it runs none). */
  routerPort: number;
  /** false: started with --no-router; absent on hosts older than the role. */
  router?: boolean;
  /** The router's HTTPS port (0: off) and engine; absent without a router and on older hosts. */
  httpsPort?: number;
  routerEngine?: 'node' | 'nginx';
  draining: boolean;
  /** A planned stop under its grace lease. */
  stopping?: { since: string; until: string };
  startedAt: string;
  version: string;
  leader: boolean;
  /** Jobs placed on the host. */
  jobs: number;
  /** jobs / capacity.containers, or jobs alone when unlimited. */
  load: number;
  /** member, learner or client; absent when etcd's member list could not be read. */
  etcd?: 'member' | 'learner' | 'client';
}

/** A row of GET /v1/capacity: what a host has and what its placed jobs reserve. */
export interface CapacityRow {
  host: string;
  capacity: WireResources;
  reserved: WireResources;
  replicas: number;
}

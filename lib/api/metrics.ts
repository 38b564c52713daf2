/**
 * `GET /metrics` in Prometheus' text format (prom-client).
 *
 * Counters and histograms are kept by this API process: requests by route
 * and status, their durations, pushes and other rollouts by result, and the
 * leader writes the fence refused on this host. Gauges
 * of cluster state (stacks, jobs by state, hosts) are read from etcd at
 * scrape time, so every host's /metrics tells the same cluster-wide truth
 * and nothing goes stale between scrapes. Each API gets its own registry,
 * so several in one process (tests) never share series.
 *
 * /metrics needs a token like every other route: it names stacks and hosts.
 * Point Prometheus' `authorization: {credentials: <token>}` at it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerCronMetrics } from './cron-metrics.js';
import type { FastifyInstance } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { listJobs, listStacks } from './status.js';
import { JOB_STATES } from './wire.js';
import { listHosts } from '../host-admin/ops.js';
import type { LeaderStats } from '../leader/leader.js';
import type { TrafficDump } from '../router/traffic-counters.js';
import { trafficMetricsText } from '../router/traffic-prometheus.js';
import type { ReplicaResources } from './resources.js';

/** Gauges of this host's replicas (resources.ts): what `viking ps --stats` shows. */
export function resourceMetricsText(list: readonly ReplicaResources[]): string {
  const out: string[] = [];
  const gauges: Array<[string, string, (r: ReplicaResources) => number | null]> = [
    ['viking_container_cpu_percent', 'CPU used by the replica, % of one core (Docker Engine stats).', (r) => r.cpuPct],
    ['viking_container_memory_bytes', 'Memory the replica uses, without page cache.', (r) => r.memoryBytes],
    ['viking_container_memory_limit_bytes', "The replica's memory limit (0: none).", (r) => r.memoryLimitBytes],
    ['viking_container_start_time_seconds', 'When the replica (its container) started, Unix time.', (r) => (r.startedAt ? Date.parse(r.startedAt) / 1000 : null)],
  ];
  for (const [name, help, value] of gauges) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const r of list) {
      const v = value(r);
      if (v !== null && Number.isFinite(v)) out.push(`${name}{stack="${r.stack}",node="${r.node}",tag="${r.tag}",replica="${r.instance}"} ${v}`);
    }
  }
  return `${out.join('\n')}\n`;
}

interface ClusterCounts {
  stacks: number;
  jobs: Map<string, number>;
  hosts: Map<string, number>;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  readonly pushes: Counter<'result'>;
  readonly operations: Counter<'kind' | 'result'>;
  private counts: { at: number; value: Promise<ClusterCounts> } | undefined;

  constructor(
    private readonly client: Etcd3,
    leaderStats: () => LeaderStats | undefined = () => undefined,
    private readonly routerTraffic?: () => Promise<TrafficDump>,
    private readonly replicaResources?: () => Promise<ReplicaResources[]>,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'viking_api_' });
    this.requests = new Counter({
      name: 'viking_http_requests_total',
      help: 'API requests answered, by method, route pattern and HTTP status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'viking_http_request_duration_seconds',
      help: 'Time to answer an API request (streams: until their end), by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.pushes = new Counter({
      name: 'viking_pushes_total',
      help: 'Pushes handled by this API, by result: ok or the VIKING_E_ code they failed with.',
      labelNames: ['result'],
      registers,
    });
    this.operations = new Counter({
      name: 'viking_operations_total',
      help: 'Rollbacks, scales, env changes and removals handled by this API, by kind and result.',
      labelNames: ['kind', 'result'],
      registers,
    });
    const self = this;
    // Kept by this host's leader role; read at scrape time (0 on a host that never led).
    new Counter({
      name: 'viking_leader_fenced_writes_total',
      help: 'Leader writes (dispatch transactions) refused by the leader fence because another host had become the leader: each one a deposed leader that woke or reconnected and tried to write. It steps down at once.',
      registers,
      collect() {
        this.reset();
        this.inc(leaderStats()?.fencedWrites ?? 0);
      },
    });
    new Gauge({
      name: 'viking_leader',
      help: '1 while this host is the elected leader, else 0.',
      registers,
      collect() {
        this.set(leaderStats()?.isLeader ? 1 : 0);
      },
    });
    new Gauge({
      name: 'viking_stacks',
      help: 'Stacks known to the cluster (read from etcd at scrape time).',
      registers,
      async collect() {
        this.set((await self.clusterCounts()).stacks);
      },
    });
    new Gauge({
      name: 'viking_jobs',
      help: `Containers wanted by the cluster, by state: ${JOB_STATES.join(', ')}.`,
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const c = await self.clusterCounts();
        for (const state of JOB_STATES) this.set({ state }, c.jobs.get(state) ?? 0);
        for (const [state, n] of c.jobs) this.set({ state }, n);
      },
    });
    registerCronMetrics(registers, this.client);
    new Gauge({
      name: 'viking_hosts',
      help: 'Live hosts, by state: up or draining.',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const c = await self.clusterCounts();
        this.set({ state: 'up' }, c.hosts.get('up') ?? 0);
        this.set({ state: 'draining' }, c.hosts.get('draining') ?? 0);
      },
    });
  }

  /** One etcd read per scrape, shared by the gauges. */
  private clusterCounts(): Promise<ClusterCounts> {
    const now = Date.now();
    if (this.counts && now - this.counts.at < 1000) return this.counts.value;
    const value = (async () => {
      const [stacks, jobs, hosts] = await Promise.all([listStacks(this.client), listJobs(this.client), listHosts(this.client)]);
      const byState = new Map<string, number>();
      for (const j of jobs) byState.set(j.state, (byState.get(j.state) ?? 0) + 1);
      const byHost = new Map<string, number>();
      for (const h of hosts) byHost.set(h.draining ? 'draining' : 'up', (byHost.get(h.draining ? 'draining' : 'up') ?? 0) + 1);
      return { stacks: stacks.length, jobs: byState, hosts: byHost };
    })();
    this.counts = { at: now, value };
    value.catch(() => (this.counts = undefined));
    return value;
  }

  /** Counts every answered request under its route pattern (not its URL: no label explosion). */
  register(app: FastifyInstance): void {
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      this.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      this.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    });
    app.get('/metrics', { schema: { querystring: { type: 'object', additionalProperties: false, properties: {} } } }, async (_req, reply) => {
      let body = await this.registry.metrics();
      // The router's traffic, summed over its workers now (traffic-prometheus.ts).
      if (this.routerTraffic) body += trafficMetricsText(await this.routerTraffic());
      // CPU and memory of this host's replicas, from its Docker Engine now.
      if (this.replicaResources) body += resourceMetricsText(await this.replicaResources().catch(() => []));
      return reply.type(this.registry.contentType).send(body);
    });
  }
}

/**
 * The /v1 REST API every host serves (fastify). The CLI talks only to it.
 *
 * Every route declares JSON schemas for what it accepts; every route but
 * `GET /v1/ping` needs a bearer token whose role and stacks hold the
 * permission the route needs (lib/auth/route-permissions.ts, the one table);
 * every request that changes something leaves one audit entry; errors leave as
 * `{statusCode, code, message}` from the one registry in lib/errors.ts,
 * whatever threw them, and `GET /metrics` counts it all for Prometheus.
 */
import { registerStatsRoutes } from './stats-routes.js';
import { ResourceSampler, localResources, registerResourceRoutes } from './resources.js';
import type { TrafficDump } from '../router/traffic-counters.js';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { VikingError, toVikingError } from '../errors.js';
import { registerAuth } from '../auth/hook.js';
import { NAME_PATTERN } from '../vikingfile/index.js';
import { registerPush } from './push-route.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { registerStackRoutes } from './stack-routes.js';
import { registerDeployRoutes } from './deploy-routes.js';
import { registerLogsRoute } from './logs-route.js';
import { registerAccessRoutes } from './access-route.js';
import type { AccessLogHub } from '../router/access-hub.js';
import { registerLocalRoutes } from './local-routes.js';
import { ApiMetrics } from './metrics.js';
import type { LeaderStats } from '../leader/leader.js';
import { registerWebsiteSource } from './website-route.js';
import { registerSettingsRoutes } from './settings-route.js';
import { registerCleanupRoute } from './cleanup.js';
import { registerCertRoutes } from './cert-routes.js';
import { registerOpsRoutes } from './ops-routes.js';
import { registerExecRoutes } from './exec-routes.js';
import { registerVolumeRoutes } from './volume-routes.js';
import type { ContainerLimits } from '../store/records.js';
import { registerUiRoutes } from './ui-routes.js';
import { noteAudit, registerAuditLog, registerAuditRoute } from './audit-route.js';
import { REQUEST_CALL_BUDGET_MS, runInCallScope, type CallScope } from '../store/call-scope.js';
import { etcdUnavailableError, isEtcdUnavailable } from '../store/unavailable.js';

/** Largest JSON body a route accepts (uploads have their own cap, maxUploadBytes). */
export const JSON_BODY_LIMIT = 1024 * 1024;

export interface ApiContext {
  client: Etcd3;
  docker: Docker;
  dataDir: string;
  hostName: string;
  /** The etcd members' URLs, named in the message of VIKING_E_ETCD_UNAVAILABLE. */
  etcdUrls?: string[];
  /** Time an etcd call may take while a request has not answered yet (default 1.2 s; see store/call-scope.ts). */
  etcdCallBudgetMs?: number;
  /**
   * The cluster's id: host-local routes see only containers labelled with it
   * (and the host's name). Read from etcd on first use when not given.
   */
  clusterId?: string;
  /** Largest source upload accepted, in bytes. */
  maxUploadBytes: number;
  /** Most files, folders and links one upload may hold (default 50,000). */
  maxUploadFiles?: number;
  /** Base URL of the router, to print the app's address after a push. */
  routerPort: number;
  /** How long a rollout may take to become healthy (default 120 s). */
  rolloutTimeoutMs?: number;
  metrics?: ApiMetrics;
  /** Limits of the containers this host starts (viking run's one-offs get them too; default DEFAULT_LIMITS). */
  limits?: ContainerLimits;
  /**
   * Makes this host's slave leave a node's replicas alone (no start, no
   * replacement) until the returned function is called: a volume restore
   * stops them meanwhile. Absent where no slave runs (tests of the API alone).
   */
  holdNode?: (stack: string, node: string) => Promise<() => void>;
  /** This host's leader role counts (masters only), for /metrics. */
  leaderStats?: () => LeaderStats | undefined;
  /** This host's router traffic counters, summed over its workers (absent: no router here). */
  routerTraffic?: () => Promise<TrafficDump>;
  /** This host's replicas' usage, sampled once per short TTL for every caller (made by createApi when absent). */
  resources?: ResourceSampler;
  /** This host's router's access log (absent: no router here). */
  accessLog?: AccessLogHub;
  log?: (msg: string) => void;
}

/** A schema refusal as a VikingError: bad names and unknown properties get their own codes, the rest VIKING_E_BAD_REQUEST. */
function validationError(e: FastifyError): VikingError {
  const items = (e.validation ?? []) as Array<{ keyword: string; instancePath: string; params: { pattern?: string; additionalProperty?: string } }>;
  const unknown = items.find((v) => v.keyword === 'additionalProperties' && typeof v.params.additionalProperty === 'string');
  if (unknown) {
    const where = `${e.validationContext ?? 'request'}${unknown.instancePath}`;
    const name = JSON.stringify(unknown.params.additionalProperty).slice(0, 80);
    return new VikingError('VIKING_E_UNKNOWN_PROPERTY', `${where} has no property ${name}; check its spelling (see the API table in the README)`, {
      property: String(unknown.params.additionalProperty).slice(0, 200),
    });
  }
  const badName = items.find((v) => v.keyword === 'pattern' && v.params.pattern === NAME_PATTERN.source);
  if (badName) {
    const where = `${e.validationContext ?? 'request'}${badName.instancePath}`;
    return new VikingError('VIKING_E_INVALID_NAME', `${where}: names are lowercase letters, digits and dashes, at most 63 characters, not starting or ending with a dash`);
  }
  return new VikingError('VIKING_E_BAD_REQUEST', e.message);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route the API serves (method and URL pattern), for tests that must cover them all. */
    vikingRoutes: Array<{ method: string; url: string }>;
  }
  interface FastifyRequest {
    /** The etcd call budget of this request (store/call-scope.ts). */
    callScope?: CallScope;
  }
}

/**
 * Every request runs in an etcd call scope from its first hook on, so a
 * request that needs etcd while etcd has no quorum answers 503 within 2 s.
 * The scope is entered again before the handler: fastify parses a body in
 * the socket's callbacks, which do not carry the first hook's context.
 */
function registerCallScope(app: FastifyInstance, budgetMs: number): void {
  app.decorateRequest('callScope', undefined);
  app.addHook('onRequest', (req, reply, done) => {
    const scope: CallScope = { budgetMs, answered: () => reply.raw.headersSent };
    req.callScope = scope;
    runInCallScope(scope, done);
  });
  app.addHook('preHandler', (req, _reply, done) => {
    if (req.callScope) runInCallScope(req.callScope, done);
    else done();
  });
}

export function createApi(ctx: ApiContext): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: JSON_BODY_LIMIT,
    // fastify's default ajv removes properties a schema does not declare; an
    // unknown property must be refused (a typo would otherwise be ignored).
    ajv: { customOptions: { removeAdditional: false } },
  });
  // One sample of the replicas' usage serves /metrics and /v1/local/resources alike (resources.ts).
  const resources = ctx.resources ?? new ResourceSampler(() => localResources(ctx.docker, ctx, () => true));
  const metrics = ctx.metrics ?? new ApiMetrics(ctx.client, ctx.leaderStats, ctx.routerTraffic, () => resources.get());
  const full: ApiContext = { ...ctx, metrics, resources };

  registerCallScope(app, ctx.etcdCallBudgetMs ?? REQUEST_CALL_BUDGET_MS);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const vk =
      isEtcdUnavailable(err)
        ? etcdUnavailableError(ctx.hostName, err, ctx.etcdUrls)
        : err instanceof VikingError
        ? err
        : err.validation
          ? validationError(err)
          : err.statusCode === 413
            ? new VikingError('VIKING_E_BODY_TOO_LARGE', `the request body is larger than the ${JSON_BODY_LIMIT / 1024 / 1024} MiB the API accepts`)
            : err.statusCode && err.statusCode < 500
            ? new VikingError('VIKING_E_BAD_REQUEST', err.message)
            : toVikingError(err);
    if (vk.statusCode >= 500) ctx.log?.(`api: ${vk.code}: ${vk.message}`);
    noteAudit(req, { code: vk.code });
    void reply.status(vk.statusCode).send(vk.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new VikingError('VIKING_E_NOT_FOUND', `no API route ${req.method} ${req.url.split('?')[0]}; see viking --help`);
    void reply.status(404).send(e.toJSON());
  });

  const routes: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });
  app.decorate('vikingRoutes', routes);
  registerAuditLog(app, full);
  registerAuth(app, ctx.client);
  metrics.register(app);
  registerClusterRoutes(app, full);
  registerStackRoutes(app, full);
  registerDeployRoutes(app, full);
  registerLogsRoute(app, full);
  registerAccessRoutes(app, full);
  registerLocalRoutes(app, full);
  registerPush(app, full);
  registerWebsiteSource(app, full);
  registerSettingsRoutes(app, full);
  registerCleanupRoute(app, full);
  registerCertRoutes(app, full);
  registerOpsRoutes(app, full);
  registerVolumeRoutes(app, full);
  registerExecRoutes(app, full);
  registerAuditRoute(app, full);
  registerStatsRoutes(app, full);
  registerResourceRoutes(app, full);
  registerUiRoutes(app, full);
  return app;
}

/**
 * `viking exec` and `viking run` (issue 15): websockets from the CLI to
 * Docker on the host that runs the container (protocol: lib/ops/session.ts).
 *
 *   GET /v1/exec/:stack/:node/:instance?cmd=[...]&tty=&stdin=    (websocket)
 *       a command in the running replica of the live release, on its host
 *   GET /v1/run/:stack/:node?cmd=[...]&tty=&stdin=&detach=       (websocket)
 *       a one-off container of the live release's node, on the host dowding picks
 *   GET /v1/runs?stack=
 *       the one-off containers of every live host (viking ps --all)
 *   GET /v1/local/exec/:stack/:tag/:node/:instance, GET /v1/local/run/:stack/:node,
 *   GET /v1/local/runs?stack=
 *       the same on this host only; the API the CLI reached calls them on the
 *       container's host with the caller's token
 *
 * `cmd` is a JSON array of strings. Both websockets need `stack:exec` on the
 * stack (admins; deployers of the stack), checked before the upgrade, and
 * each session leaves one audit entry with its exit code when it ends.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { VikingError } from '../errors.js';
import { accessOf, bearerOf } from '../auth/hook.js';
import { appendAudit } from '../audit/log.js';
import { placeJobs } from '../dowding/plan.js';
import { readSnapshot, toPlanHosts, toPlanJob } from '../dispatch/snapshot.js';
import { REGISTRY_KEY } from '../store/keys.js';
import { placementOf } from '../store/placements.js';
import type { JobId } from '../store/records.js';
import { LABEL, ownerLabels } from '../slave/containers.js';
import { liveNodeSpec } from '../ops/node-spec.js';
import { endSession, failSession, runSession, sendControl } from '../ops/session.js';
import { startExec } from '../ops/docker-exec.js';
import { listOneOffs, startOneOff, type OneOffRow } from '../ops/oneoff.js';
import { bridgeToPeer } from '../ops/ws-bridge.js';
import { requireStack } from '../rollout/releases.js';
import { actorOf } from './deploy-routes.js';
import { ownerOf } from './local-routes.js';
import { liveHosts, peerJson } from './peers.js';
import { FLAG, NAME, TAG, flagOn, params } from './schemas.js';
import type { ApiContext } from './server.js';

/** Longest command accepted, as its JSON text. */
const MAX_CMD_CHARS = 16_384;

interface SessionQuery {
  cmd: string;
  tty?: string;
  stdin?: string;
  detach?: string;
}

const sessionQuery = (detach: boolean) =>
  ({
    type: 'object',
    additionalProperties: false,
    required: ['cmd'],
    properties: { cmd: { type: 'string', minLength: 2, maxLength: MAX_CMD_CHARS }, tty: FLAG, stdin: FLAG, ...(detach ? { detach: FLAG } : {}) },
  }) as const;

/** The command of a session request: a non-empty JSON array of strings. */
export function parseCommand(text: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > 1000 || !v.every((x) => typeof x === 'string' && !x.includes('\0'))) {
    throw new VikingError('VIKING_E_BAD_REQUEST', 'cmd must be a JSON array of one or more strings, e.g. ["sh","-c","echo hi"]');
  }
  return v as string[];
}

const on = (v: string | undefined): boolean => v !== undefined && flagOn(v);

/** The query passed on to the peer: exactly what was asked. */
function peerQuery(q: SessionQuery): string {
  const p = new URLSearchParams({ cmd: q.cmd });
  if (on(q.tty)) p.set('tty', '1');
  if (on(q.stdin)) p.set('stdin', '1');
  if (on(q.detach)) p.set('detach', '1');
  return p.toString();
}

/** Checked before the upgrade, so a bad command is an HTTP 400, not a socket that opens and fails. */
async function checkCommand(req: FastifyRequest<{ Querystring: SessionQuery }>): Promise<void> {
  parseCommand(req.query.cmd);
}

function audit(ctx: ApiContext, req: FastifyRequest, stack: string, result: string): void {
  if (!req.token) return;
  const user = req.headers['x-viking-user'];
  void appendAudit(ctx.client, {
    token: { id: req.token.id, name: req.token.name },
    ...(typeof user === 'string' && user ? { user: user.slice(0, 100) } : {}),
    address: req.ip,
    method: 'GET',
    route: req.routeOptions.url ?? '(no route)',
    path: (req.url.split('?')[0] ?? '').slice(0, 300),
    stack,
    status: 101,
    result,
    host: ctx.hostName,
  }).catch((err: Error) => ctx.log?.(`audit: could not record ${req.url.split('?')[0]}: ${err.message}`));
}

/** The outcome of a session for its audit entry: ok, exit N, or the error code. */
async function outcome(work: () => Promise<number | undefined>): Promise<string> {
  try {
    const code = await work();
    return code === undefined || code === 0 ? 'ok' : `exit ${code}`;
  } catch (err) {
    return err instanceof VikingError ? err.code : 'VIKING_E_INTERNAL';
  }
}

/** The running container of a replica on this host, or VIKING_E_NOT_RUNNING. */
async function runningReplica(ctx: ApiContext, job: JobId): Promise<string> {
  const owner = await ownerOf(ctx);
  const list = await ctx.docker.listContainers({
    filters: { label: [...ownerLabels(owner), `${LABEL.stack}=${job.stack}`, `${LABEL.tag}=${job.tag}`, `${LABEL.node}=${job.node}`, `${LABEL.instance}=${job.instance}`] },
  });
  const c = list.find((x) => x.State === 'running');
  if (!c) throw new VikingError('VIKING_E_NOT_RUNNING', `${job.node}.${job.instance} (${job.tag}) has no running container on ${ctx.hostName}; viking ps ${job.stack} shows why`);
  return c.Id;
}

async function execHere(ctx: ApiContext, ws: WebSocket, job: JobId, q: SessionQuery): Promise<number | undefined> {
  try {
    const id = await runningReplica(ctx, job);
    const s = await startExec(ctx.docker, id, { cmd: parseCommand(q.cmd), tty: on(q.tty), stdin: on(q.stdin) });
    return await runSession(ws, ctx.docker, s, { type: 'started', host: ctx.hostName, container: id.slice(0, 12) });
  } catch (err) {
    failSession(ws, err);
    throw err;
  }
}

async function runHere(ctx: ApiContext, ws: WebSocket, req: FastifyRequest, stack: string, node: string, q: SessionQuery): Promise<number | undefined> {
  try {
    const { spec } = await liveNodeSpec(ctx.client, stack, node);
    const registry = (await ctx.client.get(REGISTRY_KEY).string()) ?? undefined;
    const run = await startOneOff({
      docker: ctx.docker,
      owner: await ownerOf(ctx),
      spec,
      cmd: parseCommand(q.cmd),
      tty: on(q.tty),
      stdin: on(q.stdin),
      detach: on(q.detach),
      by: actorOf(req),
      registry,
      limits: ctx.limits,
    });
    const where = { host: ctx.hostName, container: run.id.slice(0, 12), name: run.name };
    ctx.log?.(`run: ${actorOf(req)} started ${run.name}${run.session ? '' : ' (detached)'}`);
    if (!run.session) {
      sendControl(ws, { type: 'detached', ...where });
      endSession(ws);
      return undefined;
    }
    return await runSession(ws, ctx.docker, run.session, { type: 'started', ...where });
  } catch (err) {
    failSession(ws, err);
    throw err;
  }
}

/** The host that runs replica `instance` of the node in the live release. */
async function replicaOf(ctx: ApiContext, stack: string, node: string, instance: number): Promise<{ job: JobId; host: string }> {
  const record = await requireStack(ctx.client, stack);
  if (!record.current) throw new VikingError('VIKING_E_NOT_RUNNING', `${stack} has no live release yet; viking ps ${stack} shows its state`);
  const job = { stack, tag: record.current, node, instance };
  const host = (await placementOf(ctx.client, job))?.host;
  if (!host) throw new VikingError('VIKING_E_NOT_FOUND', `${stack} ${record.current} has no replica ${node}.${instance}; viking ps ${stack} lists them`);
  return { job, host };
}

/** Where dowding would put a container of the node now (its volume host when it has volumes). */
async function placeOneOff(ctx: ApiContext, stack: string, node: string): Promise<string> {
  const { spec } = await liveNodeSpec(ctx.client, stack, node);
  const snap = await readSnapshot(ctx.client);
  const plan = placeJobs({ hosts: toPlanHosts(snap) }, [{ ...toPlanJob(spec, snap.pins), id: `${stack}/${spec.tag}/${node}/run` }]);
  const host = plan.placements[0]?.host;
  if (host === undefined) throw new VikingError('VIKING_E_NOT_RUNNING', `no host can run a container of ${stack}/${node}: ${plan.unplaced[0]?.reasons.join('; ') ?? 'no live host'}`);
  return host;
}

async function hostRecord(ctx: ApiContext, name: string) {
  const h = (await liveHosts(ctx.client)).get(name);
  if (!h) throw new VikingError('VIKING_E_API_UNREACHABLE', `host ${name} is down; its containers cannot be reached`);
  return h;
}

function routes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { stack: string; node: string; instance: number }; Querystring: SessionQuery }>(
    '/v1/exec/:stack/:node/:instance',
    { websocket: true, preHandler: checkCommand, schema: { params: params({ stack: NAME, node: NAME, instance: { type: 'integer', minimum: 1 } }), querystring: sessionQuery(false) } },
    async (ws, req) => {
      // Frames the CLI sends at once (a resize, stdin) wait until the session takes them (session.ts resumes).
      ws.pause();
      const { stack, node, instance } = req.params;
      const result = await outcome(async () => {
        let target;
        try {
          target = await replicaOf(ctx, stack, node, instance);
          if (target.host === ctx.hostName) return await execHere(ctx, ws, target.job, req.query);
          const host = await hostRecord(ctx, target.host);
          const j = target.job;
          return await bridgeToPeer(ws, host, `/v1/local/exec/${j.stack}/${j.tag}/${j.node}/${j.instance}?${peerQuery(req.query)}`, bearerOf(req));
        } catch (err) {
          if (!target || target.host !== ctx.hostName) failSession(ws, err);
          throw err;
        }
      });
      audit(ctx, req, stack, result);
    },
  );

  app.get<{ Params: { stack: string; tag: string; node: string; instance: number }; Querystring: SessionQuery }>(
    '/v1/local/exec/:stack/:tag/:node/:instance',
    { websocket: true, preHandler: checkCommand, schema: { params: params({ stack: NAME, tag: TAG, node: NAME, instance: { type: 'integer', minimum: 1 } }), querystring: sessionQuery(false) } },
    async (ws, req) => {
      // Frames the CLI sends at once (a resize, stdin) wait until the session takes them (session.ts resumes).
      ws.pause();
      await execHere(ctx, ws, { ...req.params }, req.query).catch(() => {});
    },
  );

  app.get<{ Params: { stack: string; node: string }; Querystring: SessionQuery }>(
    '/v1/run/:stack/:node',
    { websocket: true, preHandler: checkCommand, schema: { params: params({ stack: NAME, node: NAME }), querystring: sessionQuery(true) } },
    async (ws, req) => {
      // Frames the CLI sends at once (a resize, stdin) wait until the session takes them (session.ts resumes).
      ws.pause();
      const { stack, node } = req.params;
      const result = await outcome(async () => {
        let host: string | undefined;
        try {
          host = await placeOneOff(ctx, stack, node);
          if (host === ctx.hostName) return await runHere(ctx, ws, req, stack, node, req.query);
          return await bridgeToPeer(ws, await hostRecord(ctx, host), `/v1/local/run/${stack}/${node}?${peerQuery(req.query)}`, bearerOf(req));
        } catch (err) {
          if (host !== ctx.hostName) failSession(ws, err);
          throw err;
        }
      });
      audit(ctx, req, stack, result);
    },
  );

  app.get<{ Params: { stack: string; node: string }; Querystring: SessionQuery }>(
    '/v1/local/run/:stack/:node',
    { websocket: true, preHandler: checkCommand, schema: { params: params({ stack: NAME, node: NAME }), querystring: sessionQuery(true) } },
    async (ws, req) => {
      // Frames the CLI sends at once (a resize, stdin) wait until the session takes them (session.ts resumes).
      ws.pause();
      await runHere(ctx, ws, req, req.params.stack, req.params.node, req.query).catch(() => {});
    },
  );

  app.get<{ Querystring: { stack?: string } }>(
    '/v1/local/runs',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { stack: NAME } } } },
    async (req) => {
      const access = accessOf(req);
      return (await listOneOffs(ctx.docker, await ownerOf(ctx))).filter((r) => (req.query.stack === undefined || r.stack === req.query.stack) && access.covers(r.stack));
    },
  );

  app.get<{ Querystring: { stack?: string } }>(
    '/v1/runs',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { stack: NAME } } } },
    async (req) => {
      const access = accessOf(req);
      const hosts = await liveHosts(ctx.client);
      const q = req.query.stack ? `?stack=${encodeURIComponent(req.query.stack)}` : '';
      const lists = await Promise.all(
        [...hosts.values()].map(async (h): Promise<OneOffRow[]> => {
          if (h.name === ctx.hostName) return listOneOffs(ctx.docker, await ownerOf(ctx));
          return peerJson<OneOffRow[]>(h, `/v1/local/runs${q}`, bearerOf(req)).catch(() => []);
        }),
      );
      return lists
        .flat()
        .filter((r) => (req.query.stack === undefined || r.stack === req.query.stack) && access.covers(r.stack))
        .sort((a, b) => a.created.localeCompare(b.created));
    },
  );
}

export function registerExecRoutes(app: FastifyInstance, ctx: ApiContext): void {
  void app.register(websocket, { options: { maxPayload: 1 << 20 } });
  // An upgrade refused with an HTTP answer (401, 403, 400) before the plugin's own hook saw it (the
  // auth hook runs first) keeps its socket open in CLOSE-WAIT, and the API then never finishes closing.
  app.addHook('onResponse', (req, _reply, done) => {
    if (String(req.headers.upgrade ?? '').toLowerCase() === 'websocket') req.raw.socket?.destroy();
    done();
  });
  // Routes with `websocket: true` must be declared once the plugin is loaded: in a child context.
  void app.register(async (child) => routes(child, ctx));
}

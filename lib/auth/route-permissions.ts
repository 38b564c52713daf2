/**
 * The one permission table: every route the API serves and what a token needs
 * to call it. A route missing here is refused to every token but an admin's,
 * and test/unit/route-permissions.test.ts fails for it, so a new route cannot
 * ship without a decision. To add one: a line `'METHOD /url/:pattern': rule`,
 * with the URL exactly as the route registers it.
 *
 * Where the stack of a request comes from (`stack`):
 *   {param: 'x'}   the URL parameter x
 *   {query: 'x'}   the query parameter x; without it the route lists several
 *                  stacks and the handler keeps the token's ones (`listing`)
 *   {body: 'x'}    the JSON body's field x (checked once the body is parsed)
 *   'vikingfile'   the stack of the pushed Vikingfile (checked by the push itself)
 */
import type { Permission } from './roles.js';

export type StackSource = { param: string } | { query: string } | { body: string } | 'vikingfile';

export type RouteRule =
  /** Anyone, without a token. */
  | { public: true }
  /** Any valid token. */
  | { anyToken: true }
  | {
      need: Permission;
      stack?: StackSource;
      /** Without a stack the route answers about every stack; the handler shows only the token's (Access.covers). */
      listing?: boolean;
    };

const ROUTES: Record<string, RouteRule> = {
  // liveness, and website files every router serves to the public anyway
  'GET /v1/ping': { public: true },
  'GET /v1/source/:stack/:tag/website/:node': { public: true },
  'GET /v1/whoami': { anyToken: true },

  // the cluster as a whole: hosts, settings, metrics
  'GET /v1/info': { need: 'cluster:read' },
  'GET /v1/network': { need: 'cluster:read' },
  'GET /v1/server/:name': { need: 'cluster:read' },
  'GET /v1/settings': { need: 'cluster:read' },
  'GET /metrics': { need: 'cluster:read' },
  'POST /v1/server/:name/drain': { need: 'hosts:write' },
  'DELETE /v1/server/:name': { need: 'hosts:write' },
  'POST /v1/rebalance': { need: 'hosts:write' },
  'POST /v1/settings': { need: 'settings:write' },
  // TLS certificates: anyone who reads the cluster sees them (never a key); adding or removing one is an admin's
  'GET /v1/certs': { need: 'cluster:read' },
  'POST /v1/certs': { need: 'certs:write' },
  'DELETE /v1/certs/:domain': { need: 'certs:write' },

  // tokens
  'GET /v1/tokens': { need: 'tokens:admin' },
  'POST /v1/tokens': { need: 'tokens:admin' },
  'DELETE /v1/tokens/:id': { need: 'tokens:admin' },
  'POST /v1/tokens/:id/rotate': { need: 'tokens:admin' },

  // reading stacks
  'GET /v1/stacks': { need: 'stack:read', listing: true },
  'GET /v1/stack/:name': { need: 'stack:read', stack: { param: 'name' } },
  'GET /v1/tags/:stack': { need: 'stack:read', stack: { param: 'stack' } },
  'GET /v1/nodes/:stack/:tag': { need: 'stack:read', stack: { param: 'stack' } },
  'GET /v1/allocate/:stack/:tag/:node': { need: 'stack:read', stack: { param: 'stack' } },
  'GET /v1/env/:stack': { need: 'stack:read', stack: { param: 'stack' } },
  'GET /v1/ps': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/local/containers': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  // router traffic counters (viking stats): this host's, and every host's summed
  'GET /v1/local/traffic': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/stats': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  // CPU and memory of the replicas (viking ps --stats, viking top): this host's, and every host's
  'GET /v1/local/resources': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/resources': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/logs/:stack/:node': { need: 'stack:logs', stack: { param: 'stack' } },
  'GET /v1/local/logs/:stack/:tag/:node/:instance': { need: 'stack:logs', stack: { param: 'stack' } },
  // the routers' access logs (viking logs --access): every host's merged, and this host's router's
  'GET /v1/access/:stack': { need: 'stack:logs', stack: { param: 'stack' } },
  'GET /v1/local/access/:stack': { need: 'stack:logs', stack: { param: 'stack' } },
  'GET /v1/audit': { need: 'audit:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/cron/:stack': { need: 'stack:read', stack: { param: 'stack' } },
  // names only; ?reveal=1 also needs secrets:reveal (admins), checked by the route (lib/secrets/access.ts)
  'GET /v1/secrets/:stack': { need: 'stack:read', stack: { param: 'stack' } },

  // changing stacks
  'POST /v1/push': { need: 'stack:push', stack: 'vikingfile' },
  'POST /v1/scale/:stack': { need: 'stack:scale', stack: { param: 'stack' } },
  'POST /v1/env/:stack': { need: 'stack:env', stack: { param: 'stack' } },
  // secrets are env a reader cannot see: a deployer who may change env may set them
  'POST /v1/secrets/:stack': { need: 'stack:env', stack: { param: 'stack' } },
  'POST /v1/rollback/:stack': { need: 'stack:rollback', stack: { param: 'stack' } },
  'DELETE /v1/stack/:name': { need: 'stack:rm', stack: { param: 'name' } },
  // viking run, exec and volumes (issue 15). A command in a stack's containers and its volumes' bytes
  // are the stack's to run and read as much as a push is: stack:exec (admins; deployers of the stack).
  'GET /v1/exec/:stack/:node/:instance': { need: 'stack:exec', stack: { param: 'stack' } },
  'GET /v1/run/:stack/:node': { need: 'stack:exec', stack: { param: 'stack' } },
  'GET /v1/runs': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/volumes': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/volume/:stack/:node/backup': { need: 'stack:exec', stack: { param: 'stack' } },
  'POST /v1/volume/:stack/:node/restore': { need: 'stack:exec', stack: { param: 'stack' } },
  // the same on the host holding the container or volume, asked by the API the CLI reached, with the caller's token
  'GET /v1/local/exec/:stack/:tag/:node/:instance': { need: 'stack:exec', stack: { param: 'stack' } },
  'GET /v1/local/run/:stack/:node': { need: 'stack:exec', stack: { param: 'stack' } },
  'GET /v1/local/runs': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/local/volumes': { need: 'stack:read', stack: { query: 'stack' }, listing: true },
  'GET /v1/local/volume/:stack/:node/backup': { need: 'stack:exec', stack: { param: 'stack' } },
  'POST /v1/local/volume/:stack/:node/restore': { need: 'stack:exec', stack: { param: 'stack' } },
  // asked of every host by an rm, with the caller's token
  'POST /v1/local/cleanup': { need: 'stack:rm', stack: { body: 'stack' } },

  // the dashboard (lib/api/ui-routes.ts): its files are public; a session is a checked token in a cookie
  'GET /ui': { public: true },
  'GET /ui/*': { public: true },
  'POST /ui/session': { anyToken: true },
  'DELETE /ui/session': { anyToken: true },
  // what changed, for the dashboard's tabs; each sees only its token's stacks
  'GET /v1/events': { need: 'stack:read', listing: true },
  // a stack's pushes in progress, with their stages and output tail (the dashboard's live push)
  'GET /v1/pushes/:stack': { need: 'stack:read', stack: { param: 'stack' } },
  'GET /v1/capacity': { need: 'cluster:read' },
};

const TABLE: ReadonlyMap<string, RouteRule> = new Map(Object.entries(ROUTES));

/** The rule of a registered route (HEAD answers as GET), or undefined when the table has none. */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  return TABLE.get(`${method === 'HEAD' ? 'GET' : method} ${url}`);
}

/** Every entry, for tests and docs. */
export function permissionTable(): ReadonlyMap<string, RouteRule> {
  return TABLE;
}

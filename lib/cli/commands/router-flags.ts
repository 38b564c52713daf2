/**
 * The router's client-facing limits as command-line flags, shared by
 * `viking host` and `viking up`: whose X-Forwarded-For is believed, how long
 * a client may take to send a request head, and how many connections one
 * router worker keeps.
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { parseCidr } from '../../router/forwarding.js';
import type { RouterTuning } from '../../router/server.js';
import { ROUTER_ENGINES, type RouterEngine } from '../../router/engine.js';

export interface RouterFlagArgs {
  'trusted-proxies'?: string[];
  'router-head-timeout'?: number;
  'router-idle-timeout'?: number;
  'router-max-connections'?: number;
  'https-port'?: number;
  'router-engine'?: RouterEngine;
  /** false: `--no-router`, this host runs no router (see runsRouter). */
  router?: boolean;
}

/** Flags only a router uses, shared by `viking host` and `viking up`. */
export const ROUTER_ONLY_FLAGS = ['router-port', 'https-port', 'router-engine', 'router-workers', 'trusted-proxies', 'router-head-timeout', 'router-idle-timeout', 'router-max-connections'] as const;

/**
 * Whether this host runs the HTTP/HTTPS router: false with `--no-router`.
 * A router flag given with `--no-router` is refused, not ignored: the
 * operator meant something to be served on that port, and a host that
 * starts anyway without it fails later and far from the cause.
 */
export function runsRouter(args: Record<string, unknown>, routerOnly: readonly string[] = ROUTER_ONLY_FLAGS): boolean {
  if (args.router !== false) return true;
  const given = routerOnly.filter((f) => args[f] !== undefined);
  if (given.length > 0) {
    const flags = given.map((f) => `--${f}`).join(', ');
    throw new VikingError('VIKING_E_FLAG_CONFLICT', `--no-router runs no router on this host, so ${flags} cannot apply: drop ${given.length === 1 ? 'it' : 'them'}, or drop --no-router`);
  }
  return false;
}

/** 443 as root, else 8443 (as --router-port is 80 or 8080). */
export function defaultHttpsPort(): number {
  return process.getuid?.() === 0 ? 443 : 8443;
}

/**
 * The HTTPS port for the host's router: the flag; when it is not given, the
 * default, or any free port when the router port is 0 (any free port) too,
 * so hosts started on port 0 (tests, several on one machine) do not fight
 * over 443. `--https-port 0` turns HTTPS off. -1 means any free port.
 */
export function httpsPortOf(args: RouterFlagArgs, routerPort: number): number {
  const given = args['https-port'];
  if (given !== undefined) {
    if (!Number.isInteger(given) || given < 0 || given > 65535) throw new Error(`--https-port: ${given} is not a port (0 turns HTTPS off)`);
    return given;
  }
  return routerPort === 0 ? -1 : defaultHttpsPort();
}

/** `10.0.0.0/8,192.168.1.7` -> a checked list; a bad entry stops the command with its name. */
export function parseTrustedProxies(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of list) if (!parseCidr(c)) throw new Error(`--trusted-proxies: ${JSON.stringify(c)} is not an IP address or CIDR range (e.g. 10.0.0.0/8)`);
  return list;
}

export function withRouterFlags<T>(a: Argv<T>): Argv<T & RouterFlagArgs> {
  return a
    .option('router', {
      type: 'boolean',
      describe: 'run the HTTP/HTTPS router here (default); --no-router: no router, no route watch, no ACME issuing: the host only runs containers and the API. Point DNS and load balancers at router hosts only',
    })
    .option('trusted-proxies', {
      type: 'string',
      coerce: parseTrustedProxies,
      describe: 'addresses/CIDR ranges (comma separated) of proxies in front of the router whose X-Forwarded-For is kept; from anyone else it is replaced (default: none)',
    })
    .option('router-engine', {
      choices: ROUTER_ENGINES,
      describe: 'what carries the requests: node (default: the router\'s Node workers) or nginx (the nginx binary listens, terminates TLS and proxies, from a configuration viking renders and reloads; about 2x less CPU per request, see the README)',
    })
    .option('router-head-timeout', { type: 'number', describe: 'seconds a client has to send a whole request head, from its first byte (default 15)' })
    .option('router-idle-timeout', { type: 'number', describe: 'seconds an idle kept-alive client connection stays open (default 65)' })
    .option('https-port', { type: 'number', describe: 'HTTPS port of the router, beside --router-port (default 443 as root, else 8443; any free port when --router-port is 0; 0 turns HTTPS off)' })
    .option('router-max-connections', { type: 'number', describe: 'client connections per router worker; more get 503 (default 4096)' }) as unknown as Argv<T & RouterFlagArgs>;
}

/** The flags as the host's router settings (only those given). */
export function routerTuning(args: RouterFlagArgs): RouterTuning {
  const t: RouterTuning = {};
  if (args['trusted-proxies'] && args['trusted-proxies'].length > 0) t.trustedProxies = args['trusted-proxies'];
  const head = args['router-head-timeout'];
  const idle = args['router-idle-timeout'];
  if (head !== undefined || idle !== undefined) t.clientTimeouts = { ...(head !== undefined ? { headMs: head * 1000 } : {}), ...(idle !== undefined ? { idleMs: idle * 1000 } : {}) };
  if (args['router-max-connections'] !== undefined) t.maxConnections = args['router-max-connections'];
  return t;
}

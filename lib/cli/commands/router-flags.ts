/**
 * The router's client-facing limits as command-line flags, shared by
 * `viking host` and `viking up`: whose X-Forwarded-For is believed, how long
 * a client may take to send a request head, and how many connections one
 * router worker keeps.
 */
import type { Argv } from 'yargs';
import { parseCidr } from '../../router/forwarding.js';
import type { RouterTuning } from '../../router/server.js';

export interface RouterFlagArgs {
  'trusted-proxies'?: string[];
  'router-head-timeout'?: number;
  'router-idle-timeout'?: number;
  'router-max-connections'?: number;
}

/** `10.0.0.0/8,192.168.1.7` -> a checked list; a bad entry stops the command with its name. */
export function parseTrustedProxies(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of list) if (!parseCidr(c)) throw new Error(`--trusted-proxies: ${JSON.stringify(c)} is not an IP address or CIDR range (e.g. 10.0.0.0/8)`);
  return list;
}

export function withRouterFlags<T>(a: Argv<T>): Argv<T & RouterFlagArgs> {
  return a
    .option('trusted-proxies', {
      type: 'string',
      coerce: parseTrustedProxies,
      describe: 'addresses/CIDR ranges (comma separated) of proxies in front of the router whose X-Forwarded-For is kept; from anyone else it is replaced (default: none)',
    })
    .option('router-head-timeout', { type: 'number', describe: 'seconds a client has to send a whole request head, from its first byte (default 15)' })
    .option('router-idle-timeout', { type: 'number', describe: 'seconds an idle kept-alive client connection stays open (default 65)' })
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

/**
 * The forwarding rules of the router, written once for both proxy engines
 * (the raw fast path, http1.ts + fast-exchange.ts, and the node:http path,
 * proxy.ts + upgrade.ts): which headers describe one connection and are
 * never forwarded, what a Connection list may remove, how X-Forwarded-* are
 * set, and which failed requests may be sent again.
 *
 * The rule that keeps request smuggling out: what a Connection header lists
 * is dropped, except the headers that frame or route a message
 * (Content-Length, Transfer-Encoding, Host). The router frames the message
 * it forwards from those; if a Connection list could remove them, the app
 * would frame the same bytes differently and read a body as a second
 * request on a shared, kept-alive connection.
 */
import net from 'node:net';
import type { PortEndpoint } from '../store/records.js';
import type { ContainerRoute } from './route-table.js';

/** Headers that describe one connection, never forwarded either way (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Request headers the router sets itself. */
export const ROUTER_SET: ReadonlySet<string> = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** Headers a Connection list can never remove: they frame or route the message. */
export const FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

/** Connection options that are not header names. */
const CONNECTION_OPTIONS: ReadonlySet<string> = new Set(['close', 'keep-alive', 'upgrade', '']);

/**
 * Adds the header names a Connection value lists to `into` (made on first
 * need), leaving out connection options and framing headers.
 */
export function connectionListed(value: string, into: Set<string> | null): Set<string> | null {
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (CONNECTION_OPTIONS.has(t) || FRAMING.has(t)) continue;
    (into ??= new Set()).add(t);
  }
  return into;
}

/** Methods whose request may be sent twice without harm (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Most tries of one request: the first endpoint and two others. */
export const MAX_ATTEMPTS = 3;

/** Errors meaning the request never reached the app: safe to send elsewhere. */
export const CONNECT_FAILED: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT_CONNECT']);

/** The connection broke before any answer byte (ECLOSED: the app closed it): an idempotent bodiless request may be replayed. */
export const BROKE_EARLY: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECLOSED', 'ECLOSED_REUSED']);

/**
 * Whether a request that failed before any answer byte reached the client
 * may be sent again: a connection that was never made, when no body byte
 * left; a connection that broke early, for an idempotent request without
 * a body.
 */
export function mayRetry(code: string, method: string, bodyless: boolean, bodySent: number): boolean {
  if (CONNECT_FAILED.has(code)) return bodySent === 0;
  return BROKE_EARLY.has(code) && bodyless && IDEMPOTENT.has(method);
}

/**
 * The proxies whose X-Forwarded-For the router believes (CIDR list, e.g.
 * a load balancer in front of it). From anyone else the header is replaced
 * by the client's own address, so a client cannot make an app believe it
 * comes from somewhere else. Default: nobody.
 */
export class TrustedProxies {
  private readonly list: net.BlockList | null;
  readonly cidrs: readonly string[];

  constructor(cidrs: readonly string[] = []) {
    this.cidrs = cidrs;
    if (cidrs.length === 0) {
      this.list = null;
      return;
    }
    const list = new net.BlockList();
    for (const c of cidrs) {
      const parsed = parseCidr(c);
      if (!parsed) throw new Error(`not an address or CIDR range: ${JSON.stringify(c)}`);
      if (parsed.prefix === null) list.addAddress(parsed.address, parsed.family);
      else list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.list = list;
  }

  /** Whether a connection from `remote` is a trusted proxy. */
  trusts(remote: string): boolean {
    if (this.list === null || remote === '') return false;
    if (net.isIPv4(remote)) return this.list.check(remote, 'ipv4');
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    if (remote.startsWith('::ffff:') && net.isIPv4(remote.slice(7))) return this.list.check(remote.slice(7), 'ipv4');
    return net.isIPv6(remote) && this.list.check(remote, 'ipv6');
  }

  /** The X-Forwarded-For value to send: the prior one extended when `remote` is trusted, else `remote` alone. */
  forwardedFor(prior: string | null | undefined, remote: string): string {
    return prior && this.trusts(remote) ? `${prior}, ${remote}` : remote;
  }
}

export const NO_TRUSTED_PROXIES = new TrustedProxies();

/**
 * The nginx engine's fallback servers (nginx-plane.ts): their one client is
 * nginx on loopback, which already set X-Forwarded-For by the operator's
 * rules (nginx-config.ts). Its value is kept as it is, not extended with
 * 127.0.0.1; anyone else (nothing else reaches a loopback port but local
 * processes) is treated as the client.
 */
export class FrontProxyTrust extends TrustedProxies {
  constructor() {
    super(['127.0.0.1', '::1']);
  }

  override forwardedFor(prior: string | null | undefined, remote: string): string {
    return prior && this.trusts(remote) ? prior : remote;
  }
}

/** `10.0.0.0/8`, `fd00::/8` or a single address; null when malformed. */
export function parseCidr(text: string): { address: string; prefix: number | null; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', bits, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const version = net.isIP(address);
  if (version === 0) return null;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) return { address, prefix: null, family };
  if (!/^\d{1,3}$/.test(bits)) return null;
  const prefix = Number(bits);
  if (prefix > (version === 4 ? 32 : 128)) return null;
  return { address, prefix, family };
}

/**
 * After a failure that may be retried on `failed`: the endpoints the next try
 * skips, or null when no try is left. Once every endpoint was tried, only a
 * broken keep-alive connection is worth a fresh one on the same endpoints.
 */
export function nextTry(tried: readonly PortEndpoint[] | null, failed: PortEndpoint, endpoints: number, brokeEarly: boolean, attempts: number): PortEndpoint[] | null {
  let next = [...(tried ?? []), failed];
  if (next.length >= endpoints && brokeEarly) next = [];
  return attempts < MAX_ATTEMPTS && next.length < endpoints ? next : null;
}

/** Where an endpoint is, for logs and error pages. */
export function endpointLabel(e: PortEndpoint | undefined): string {
  return e ? `${e.ip}:${e.hostPort} (${e.tag}/${e.instance})` : 'no endpoint';
}

/** The answer to a request no endpoint answered: 504 when it timed out, else 502 with the cause and where to look. */
export function failureAnswer(route: ContainerRoute, code: string, message: string, where: string, attempts: number): [status: number, title: string, detail: string] {
  if (code === 'ETIMEDOUT_HEAD') return [504, 'Gateway timeout', `${route.stack}/${route.node} did not answer in time (${where}).`];
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  return [502, 'Bad gateway', `${route.stack}/${route.node} did not answer${tries}: ${message} (${where}). Check it with: viking ps ${route.stack}`];
}

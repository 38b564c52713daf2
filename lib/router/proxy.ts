/**
 * The request and response headers of the node:http path, by the rules of
 * forwarding.ts (the fast path applies the same rules in http1.ts):
 * hop-by-hop headers and those a Connection header names are dropped both
 * ways (RFC 9110 §7.6.1), never the framing ones, and X-Forwarded-* are set.
 * The exchange itself, over raw kept-alive connections read with the fast
 * path's answer parser, is general-exchange.ts.
 */
import type { TrafficCounters } from './traffic-counters.js';
import type { IncomingMessage } from 'node:http';
import type { Upstreams } from './upstreams.js';
import { connectionListed, HOP_BY_HOP, NO_TRUSTED_PROXIES, ROUTER_SET, type TrustedProxies } from './forwarding.js';

/** Values of a Connection header (one or repeated) as the header names they list, framing headers excepted. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (!value) return null;
  let out: Set<string> | null = null;
  for (const v of Array.isArray(value) ? value : [value]) out = connectionListed(v, out);
  return out;
}

/**
 * The request headers to send upstream, as a flat [name, value, ...] list:
 * the client's minus hop-by-hop ones and those its Connection header names
 * (never Content-Length or Host: see forwarding.ts), plus X-Forwarded-For
 * (extended only for a trusted proxy, else replaced), -Proto and -Host (replaced).
 */
export function forwardHeaders(req: IncomingMessage, proto: string, keepUpgrade = false, trust: TrustedProxies = NO_TRUSTED_PROXIES): string[] {
  const listed = connectionTokens(req.headers.connection);
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    // HTTP/2 pseudo-headers (:method, :authority...) are no HTTP/1.1 headers.
    if (ROUTER_SET.has(lower) || lower === 'expect' || lower.charCodeAt(0) === 58) continue; // node:http answered Expect itself
    if (HOP_BY_HOP.has(lower) || (listed !== null && listed.has(lower))) {
      if (!(keepUpgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
      if (lower === 'connection') continue; // re-added below as exactly `upgrade`
    }
    out.push(name, raw[i + 1]!);
  }
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
  // A client that came over TLS (HTTP/1.1 or HTTP/2) is https whatever this listener's default.
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) proto = 'https';
  const remote = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out.push('host', host, 'x-forwarded-for', trust.forwardedFor(Array.isArray(prior) ? prior.join(', ') : prior, remote), 'x-forwarded-proto', proto, 'x-forwarded-host', host);
  if (keepUpgrade) out.push('connection', 'upgrade');
  return out;
}

/** The response headers to send to the client, flat, without hop-by-hop ones. */
export function responseHeaders(raw: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = [];
  let listed: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') listed = connectionListed(value, listed);
      continue;
    }
    out.push(name, value);
  }
  if (listed === null) return out;
  const filtered: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) filtered.push(out[i]!, out[i + 1]!);
  return filtered;
}

export interface ForwardContext {
  upstreams: Upstreams;
  proto: string;
  /** Whose X-Forwarded-For is believed. */
  trust: TrustedProxies;
  /** Traffic counters of this server (traffic-counters.ts); null when counting is off. */
  counters: TrafficCounters | null;
  log?: (msg: string) => void;
}

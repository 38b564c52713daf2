/**
 * The router's access log, in each worker process: one JSON line per request
 * to a node with `access_log: true`, handed in batches to the host process
 * (lib/router/access-hub.ts keeps and streams them).
 *
 * Routes without access_log pay one null check: the table builder gives a
 * route this writer only when its node logs (route-table.ts), as it gives
 * counter slots. A logged request costs one small string; nothing else is
 * kept per request.
 *
 * Nothing grows without bound. Lines wait here at most until the next flush
 * (every FLUSH_MS); one batch at a time is with the host process, and the
 * next leaves only once that one was taken (`taken`). While one is out, at
 * most MAX_PENDING lines wait; more are dropped and counted, and the count
 * goes with the next batch, so a reader learns that lines are missing.
 *
 * The path and the Host are what a client sent: both are cut to a bounded
 * length, and JSON.stringify escapes every quote and control byte, so no
 * request can end a line early or add a field.
 */
import type { ContainerRoute, RoutedEndpoint } from './route-table.js';

/** Longest path (with its query) kept in a line; longer ones are cut and marked `path_cut`. */
export const MAX_PATH = 1024;
/** Longest Host kept. */
export const MAX_DOMAIN = 255;
/** Lines waiting in one worker while its last batch is not taken yet. */
export const MAX_PENDING = 2000;
const FLUSH_MS = 50;

/** One request, as a line of `viking logs --access --json`. */
export interface AccessLine {
  time: string;
  /** The host whose router served the request (added by the host process). */
  router?: string;
  stack: string;
  node: string;
  /** The Host the client named (port stripped, cut to MAX_DOMAIN). */
  domain: string;
  method: string;
  path: string;
  path_cut?: true;
  status: number;
  /** From the request's first byte to its last answer byte, ms. */
  duration_ms: number;
  /** `node.instance` of the replica that answered; '' when the router answered itself (no replica). */
  replica: string;
  /** The host that runs that replica. */
  host: string;
  bytes_in: number;
  bytes_out: number;
  /** The router answered itself (502, 503, 504). */
  own?: true;
}

/** A batch as it travels to the host process: [stack, node, JSON line] triples, and lines dropped before it. */
export interface AccessBatch {
  entries: Array<[string, string, string]>;
  dropped: number;
}

export class AccessLogWriter {
  private entries: Array<[string, string, string]> = [];
  private dropped = 0;
  private out = false;
  private timer: NodeJS.Timeout | undefined;

  /** `deliver` hands a batch on; the receiver calls `taken()` once it has it. */
  constructor(private readonly deliver: (batch: AccessBatch) => void) {}

  /** One answered request of a logged route. */
  record(route: ContainerRoute, e: RoutedEndpoint | undefined, method: string, target: string, host: string, status: number, ms: number, bytesIn: number, bytesOut: number, own: boolean): void {
    if (this.entries.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    const cut = target.length > MAX_PATH;
    const line: AccessLine = {
      time: new Date().toISOString(),
      stack: route.stack,
      node: route.node,
      domain: domainOf(host),
      method: method.length > 32 ? method.slice(0, 32) : method,
      path: cut ? target.slice(0, MAX_PATH) : target,
      ...(cut ? { path_cut: true as const } : {}),
      status,
      duration_ms: Math.round(ms * 1000) / 1000,
      replica: e ? `${e.node}.${e.instance}` : '',
      host: e ? e.host : '',
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      ...(own ? { own: true as const } : {}),
    };
    this.entries.push([route.stack, route.node, JSON.stringify(line)]);
    if (!this.out && this.timer === undefined) this.timer = setTimeout(this.flush, FLUSH_MS).unref();
  }

  /** The host process has the last batch: the next may go. */
  taken(): void {
    this.out = false;
    if ((this.entries.length > 0 || this.dropped > 0) && this.timer === undefined) this.timer = setTimeout(this.flush, FLUSH_MS).unref();
  }

  /** Lines waiting now (tests). */
  get pending(): number {
    return this.entries.length;
  }

  private readonly flush = (): void => {
    this.timer = undefined;
    if (this.out || (this.entries.length === 0 && this.dropped === 0)) return;
    const batch: AccessBatch = { entries: this.entries, dropped: this.dropped };
    this.entries = [];
    this.dropped = 0;
    this.out = true;
    this.deliver(batch);
  };
}

/** The Host header as logged: lower case, port stripped, bounded. */
function domainOf(host: string): string {
  let h = host.length > MAX_DOMAIN + 6 ? host.slice(0, MAX_DOMAIN + 6) : host;
  const colon = h.lastIndexOf(':');
  if (colon > 0 && !h.startsWith('[')) h = h.slice(0, colon);
  h = h.toLowerCase();
  return h.length > MAX_DOMAIN ? h.slice(0, MAX_DOMAIN) : h;
}

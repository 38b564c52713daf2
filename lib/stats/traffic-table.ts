/**
 * What `viking stats` shows, from the routers' counters (traffic-counters.ts)
 * summed over every host: per stack and node, and per replica, requests per
 * second, error %, p50 and p99 latency, connections open now and totals.
 *
 * Rates and quantiles come from the difference of two readings taken
 * `seconds` apart (the histogram of that window only); with one reading they
 * cover everything since the routers started and the rate is unknown.
 */
import { CLASS_NAMES, Field, LATENCY_BOUNDS_MS, STRIDE, sumDumps, type TrafficDump } from '../router/traffic-counters.js';
import { histogramQuantile } from './quantiles.js';

export interface TrafficRow {
  stack: string;
  node: string;
  /** Instance number, or 'all' for the node's total. */
  replica: number | 'all';
  /** Requests in the window (or since start). */
  requests: number;
  /** Requests per second over the window; null with one reading. */
  rps: number | null;
  /** Answers 5xx (the app's and the router's own 502/503/504) over all answers, in %; null without requests. */
  errorPct: number | null;
  /** Latency quantiles in ms; null without requests. */
  p50: number | null;
  p99: number | null;
  /** Requests and websockets in flight now. */
  active: number;
  /** Answers by class (1xx..5xx, router_502..router_504) in the window. */
  classes: Record<string, number>;
  connectErrors: number;
  retries: number;
  bytesIn: number;
  bytesOut: number;
}

const key = (stack: string, node: string, replica: number | 'all'): string => `${stack}\u0000${node}\u0000${replica}`;

/** Slot values of `now` minus those of `before` (same labels), gauges (Active) kept as they are now. */
export function windowOf(now: TrafficDump, before: TrafficDump | undefined): TrafficDump {
  if (!before) return now;
  const prev = new Map(sumDumps([before]).slots.map((s) => [`${s.stack}\u0000${s.node}\u0000${s.domain}\u0000${s.replica}`, s.values]));
  return {
    unrouted: Math.max(0, now.unrouted - before.unrouted),
    slots: sumDumps([now]).slots.map((s) => {
      const p = prev.get(`${s.stack}\u0000${s.node}\u0000${s.domain}\u0000${s.replica}`);
      // A counter that went back (a router restarted) counts from zero again.
      const values = s.values.map((v, i) => (i === Field.Active || !p ? v : v >= p[i]! ? v - p[i]! : v));
      return { ...s, values };
    }),
  };
}

/** Rows per node (replica 'all') and per replica, sorted by stack, node, replica; `stack` filters. */
export function trafficRows(now: TrafficDump, before?: TrafficDump, seconds?: number, stack?: string): TrafficRow[] {
  const w = windowOf(now, before);
  const sums = new Map<string, { stack: string; node: string; replica: number | 'all'; values: number[] }>();
  for (const s of w.slots) {
    if (stack !== undefined && s.stack !== stack) continue;
    for (const replica of ['all', s.replica] as const) {
      // Slot replica 0 is the route itself (no replica answered): only in the node's total.
      if (replica === 0) continue;
      const k = key(s.stack, s.node, replica);
      let acc = sums.get(k);
      if (!acc) sums.set(k, (acc = { stack: s.stack, node: s.node, replica, values: new Array<number>(STRIDE).fill(0) }));
      for (let i = 0; i < STRIDE; i++) acc.values[i]! += s.values[i]!;
    }
  }
  const rows = [...sums.values()].map((a): TrafficRow => {
    const v = a.values;
    const classes: Record<string, number> = {};
    let requests = 0;
    CLASS_NAMES.forEach((name, i) => {
      classes[name] = v[i]!;
      requests += v[i]!;
    });
    const errors = v[Field.C5xx]! + v[Field.Own502]! + v[Field.Own503]! + v[Field.Own504]!;
    const buckets = v.slice(Field.Buckets, Field.Buckets + LATENCY_BOUNDS_MS.length + 1);
    const q = (x: number): number | null => (requests > 0 ? round(histogramQuantile(x, LATENCY_BOUNDS_MS, buckets)) : null);
    return {
      stack: a.stack,
      node: a.node,
      replica: a.replica,
      requests,
      rps: before && seconds && seconds > 0 ? round(requests / seconds) : null,
      errorPct: requests > 0 ? round((errors / requests) * 100) : null,
      p50: q(0.5),
      p99: q(0.99),
      active: v[Field.Active]!,
      classes,
      connectErrors: v[Field.ConnectErrors]!,
      retries: v[Field.Retries]!,
      bytesIn: v[Field.BytesIn]!,
      bytesOut: v[Field.BytesOut]!,
    };
  });
  return rows.sort((x, y) => x.stack.localeCompare(y.stack) || x.node.localeCompare(y.node) || (x.replica === 'all' ? -1 : y.replica === 'all' ? 1 : x.replica - y.replica));
}

const round = (n: number): number => Math.round(n * 100) / 100;

/**
 * The router's traffic counters, kept in each worker process with no lock
 * and no allocation per request.
 *
 * Every (stack, node, domain, replica) the route table can send to gets a
 * slot when the table is built (route-table.ts stores the slot number on the
 * route and on each of its endpoints), so a request only adds numbers into a
 * Float64Array at a fixed offset: no string is built, no map is read, no
 * object is made. A slot keeps its number for the life of the worker (a new
 * table reuses the slots of the keys it still has), so counters never go
 * back. The host process asks every worker for a dump on scrape (IPC, see
 * workers.ts) and sums them (sumDumps): the sum is what /metrics and the
 * stats API show.
 *
 * Labels are low-cardinality by construction: the domain is the route's
 * configured domain (a wildcard stays `*.example.com`), the replica is the
 * node's instance number; no path, no client address.
 */

/** Upper bounds of the latency histogram, in ms (the last bucket, +Inf, is implied). */
export const LATENCY_BOUNDS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

/** Offsets of one slot's fields. */
export const enum Field {
  /** Answers from the app, by status class. */
  C1xx = 0,
  C2xx = 1,
  C3xx = 2,
  C4xx = 3,
  C5xx = 4,
  /** The router's own answers for the route. */
  Own502 = 5,
  Own503 = 6,
  Own504 = 7,
  ConnectErrors = 8,
  Retries = 9,
  /** In flight now: requests and websocket tunnels (a gauge). */
  Active = 10,
  BytesIn = 11,
  BytesOut = 12,
  /** Sum of request durations, ms. */
  LatencySum = 13,
  /** First histogram bucket; LATENCY_BOUNDS_MS.length + 1 buckets (non-cumulative). */
  Buckets = 14,
}

export const BUCKETS = LATENCY_BOUNDS_MS.length + 1;
export const STRIDE = Field.Buckets + BUCKETS;

/** Names of the status classes, in field order (Field.C1xx .. Field.Own504). */
export const CLASS_NAMES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'router_502', 'router_503', 'router_504'] as const;

/** Who a slot counts for. `replica` is the instance number, 0 for the route itself (no replica chosen). */
export interface SlotLabels {
  stack: string;
  node: string;
  domain: string;
  replica: number;
}

/** One worker's (or a host's summed) counters: plain data, sent over IPC and the API. */
export interface TrafficDump {
  slots: Array<SlotLabels & { values: number[] }>;
  /** Requests for no known domain (answered 404 by the router). */
  unrouted: number;
}

const NUL = '\u0000';
const keyOf = (l: SlotLabels): string => `${l.stack}${NUL}${l.node}${NUL}${l.domain}${NUL}${l.replica}`;

/** Index of the bucket a duration falls in. */
export function bucketOf(ms: number): number {
  const bounds = LATENCY_BOUNDS_MS;
  let i = 0;
  while (i < bounds.length && ms > bounds[i]!) i++;
  return i;
}

export class TrafficCounters {
  private values = new Float64Array(STRIDE * 16);
  private readonly index = new Map<string, number>();
  private readonly labels: SlotLabels[] = [];
  /** Requests for unknown domains. */
  unrouted = 0;

  /** The slot of these labels, made if new. Called when a table is built, never per request. */
  slot(labels: SlotLabels): number {
    const key = keyOf(labels);
    const known = this.index.get(key);
    if (known !== undefined) return known;
    const n = this.labels.length;
    if ((n + 1) * STRIDE > this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.labels.push({ stack: labels.stack, node: labels.node, domain: labels.domain, replica: labels.replica });
    this.index.set(key, n);
    return n;
  }

  /** A request was answered: by the app (`own` false) or by the router itself (502, 503, 504). */
  answered(slot: number, status: number, own: boolean, ms: number, bytesIn: number, bytesOut: number): void {
    const v = this.values;
    const base = slot * STRIDE;
    let f: number;
    if (own && status >= 502 && status <= 504) f = Field.Own502 + (status - 502);
    else if (status < 200) f = Field.C1xx;
    else if (status >= 500) f = Field.C5xx;
    else f = Field.C1xx + ((status / 100) | 0) - 1;
    v[base + f]! += 1;
    v[base + Field.BytesIn]! += bytesIn;
    v[base + Field.BytesOut]! += bytesOut;
    v[base + Field.LatencySum]! += ms;
    v[base + Field.Buckets + bucketOf(ms)]! += 1;
  }

  add(slot: number, field: Field, n = 1): void {
    this.values[slot * STRIDE + field]! += n;
  }

  /** Everything counted so far, as plain data. */
  dump(): TrafficDump {
    const slots = this.labels.map((l, i) => ({ ...l, values: Array.from(this.values.subarray(i * STRIDE, (i + 1) * STRIDE)) }));
    return { slots, unrouted: this.unrouted };
  }
}

/** Sums dumps (of a router's workers, or of many hosts) slot by slot. */
export function sumDumps(dumps: readonly TrafficDump[]): TrafficDump {
  const out = new Map<string, SlotLabels & { values: number[] }>();
  let unrouted = 0;
  for (const d of dumps) {
    unrouted += d.unrouted;
    for (const s of d.slots) {
      if (!Array.isArray(s.values) || s.values.length !== STRIDE) continue;
      const key = keyOf(s);
      const have = out.get(key);
      if (!have) out.set(key, { stack: s.stack, node: s.node, domain: s.domain, replica: s.replica, values: [...s.values] });
      else for (let i = 0; i < STRIDE; i++) have.values[i]! += s.values[i]!;
    }
  }
  return { slots: [...out.values()], unrouted };
}

/** Empty counters for a dump with no slot. */
export const emptyDump = (): TrafficDump => ({ slots: [], unrouted: 0 });

/**
 * The cost of one router table with many endpoints (bench/scale --table):
 * what a router does on every /ports change, since the route feed re-reads
 * the whole of /domains, /stack and /ports and rebuilds its table. Timed in
 * three steps, on records shaped like the real ones: JSON parse of every
 * value (readRecords), the record checks (checkRouteRecords), and
 * RouteTable.build. Heap figures need `node --expose-gc`.
 */
import { RouteTable } from '../lib/router/route-table.js';
import { checkRouteRecords, type RawEntry } from '../lib/router/route-records.js';
import { PREFIX, domainKey, portsKey, stackKey } from '../lib/store/keys.js';
import type { PortEndpoint } from '../lib/store/records.js';

/** Endpoints per domain: 10 replicas of each node. */
const PER_DOMAIN = 10;
/** Nodes per stack. */
const PER_STACK = 10;

export interface TableCost {
  domains: number;
  parseMs: number;
  checkMs: number;
  buildMs: number;
  /** Heap a router holds: the checked snapshot's endpoint objects and the table built from them. */
  tableMiB: number;
  /** Heap held by the raw key/value strings as read from etcd. */
  recordsMiB: number;
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const heap = (): number => (gc(), process.memoryUsage().heapUsed / 1024 ** 2);

function median(f: () => number): number {
  const xs = [f(), f(), f()].sort((a, b) => a - b);
  return xs[1]!;
}

export function measureRouteTable(n: number): TableCost {
  const h0 = heap();
  const domainsN = Math.ceil(n / PER_DOMAIN);
  const stacksN = Math.ceil(domainsN / PER_STACK);
  const raw: { domains: Array<[string, string]>; stacks: Array<[string, string]>; ports: Array<[string, string]> } = { domains: [], stacks: [], ports: [] };
  for (let s = 0; s < stacksN; s++) {
    const stack = `s${s}`;
    const nodes = Array.from({ length: PER_STACK }, (_, i) => `n${i}`);
    raw.stacks.push([stackKey(stack), JSON.stringify({
      name: stack, current: 'v1', lastRelease: 1, domains: Object.fromEntries(nodes.map((x) => [x, [`${x}.${stack}.test`]])),
      releases: [{ tag: 'v1', number: 1, at: new Date().toISOString(), by: 'bench', images: { web: 'r/x:v1' }, source: '/var/lib/viking/src/x', builtOn: 'h1' }],
    })]);
    for (const node of nodes) raw.domains.push([domainKey(`${node}.${stack}.test`), JSON.stringify({ stack, node, kind: 'container' })]);
  }
  for (let i = 0; i < n; i++) {
    const d = Math.floor(i / PER_DOMAIN);
    const e: PortEndpoint = {
      stack: `s${Math.floor(d / PER_STACK)}`, tag: 'v1', node: `n${d % PER_STACK}`, instance: (i % PER_DOMAIN) + 1, host: `h${i % 1000}`,
      ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 80, hostPort: 20000 + (i % 40000), proto: 'tcp', container: `c${i.toString(16).padStart(12, '0')}`, primary: true,
    };
    raw.ports.push([portsKey(e), JSON.stringify(e)]);
  }
  const recordsMiB = heap() - h0;
  const parse = (list: Array<[string, string]>): RawEntry[] => list.map(([key, v]) => ({ key, value: JSON.parse(v) as unknown }));
  let entries = { domains: parse(raw.domains), stacks: parse(raw.stacks), ports: parse(raw.ports) };
  const parseMs = median(() => {
    const t = performance.now();
    entries = { domains: parse(raw.domains), stacks: parse(raw.stacks), ports: parse(raw.ports) };
    return performance.now() - t;
  });
  let checked = checkRouteRecords(entries.domains, entries.stacks, entries.ports, { domains: PREFIX.domains });
  const checkMs = median(() => {
    const t = performance.now();
    checked = checkRouteRecords(entries.domains, entries.stacks, entries.ports, { domains: PREFIX.domains });
    return performance.now() - t;
  });
  if (checked.problems.length > 0) throw new Error(`bench records rejected: ${checked.problems[0]!.reason}`);
  const snap = {
    revision: '1', domains: [...checked.domains], stacks: [...checked.stacks.values()].map((s) => ({ name: s.name, current: s.current })),
    endpoints: checked.endpoints, sites: [],
  };
  entries = { domains: [], stacks: [], ports: [] };
  let table = RouteTable.build(snap);
  const buildMs = median(() => {
    const t = performance.now();
    table = RouteTable.build(snap);
    return performance.now() - t;
  });
  if (table.endpoints.length !== n) throw new Error(`table holds ${table.endpoints.length} endpoints, not ${n}`);
  // The table holds the endpoint objects; count them with it (drop the raw strings first).
  raw.ports = [];
  raw.domains = [];
  raw.stacks = [];
  const tableMiB = heap() - h0;
  void table;
  return { domains: domainsN, parseMs, checkMs, buildMs, tableMiB, recordsMiB };
}

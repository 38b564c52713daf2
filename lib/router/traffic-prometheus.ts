/**
 * The router's traffic counters (traffic-counters.ts) in Prometheus' text
 * format, for the host's /metrics. prom-client keeps its own values; these
 * are already summed over the router's workers at scrape time, so they are
 * written out directly. Labels: stack, node, domain (as configured), replica
 * (instance number; "" for answers no replica gave) and, for requests, the
 * status class or the router's own 502/503/504. No path, no client address.
 */
import { CLASS_NAMES, Field, LATENCY_BOUNDS_MS, type TrafficDump } from './traffic-counters.js';

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export function trafficMetricsText(dump: TrafficDump): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const labels = dump.slots.map((s) => `stack="${escape(s.stack)}",node="${escape(s.node)}",domain="${escape(s.domain)}",replica="${s.replica === 0 ? '' : s.replica}"`);

  family('viking_router_requests_total', 'counter', 'Requests answered by this host\'s router, by stack, node, domain, replica and class: the app\'s status class (1xx..5xx) or the router\'s own router_502/router_503/router_504.');
  dump.slots.forEach((s, i) => {
    CLASS_NAMES.forEach((cls, f) => {
      if (s.values[f]! > 0) out.push(`viking_router_requests_total{${labels[i]},class="${cls}"} ${s.values[f]}`);
    });
  });
  const simple: Array<[string, string, string, Field]> = [
    ['viking_router_upstream_connect_errors_total', 'counter', 'Connections to a replica that failed (refused, timed out).', Field.ConnectErrors],
    ['viking_router_retries_total', 'counter', 'Requests sent again to this replica after another failed before answering.', Field.Retries],
    ['viking_router_active_connections', 'gauge', 'Requests and websocket tunnels to the replica in flight now.', Field.Active],
    ['viking_router_received_bytes_total', 'counter', 'Request bytes (head and body) received from clients.', Field.BytesIn],
    ['viking_router_sent_bytes_total', 'counter', 'Answer bytes sent to clients.', Field.BytesOut],
  ];
  for (const [name, type, help, f] of simple) {
    family(name, type, help);
    dump.slots.forEach((s, i) => out.push(`${name}{${labels[i]}} ${s.values[f]}`));
  }
  const hist = 'viking_router_request_duration_seconds';
  family(hist, 'histogram', 'Time from the first request byte to the last answer byte, per stack, node, domain and replica.');
  dump.slots.forEach((s, i) => {
    let cumulative = 0;
    for (let b = 0; b <= LATENCY_BOUNDS_MS.length; b++) {
      cumulative += s.values[Field.Buckets + b]!;
      const le = b < LATENCY_BOUNDS_MS.length ? String(LATENCY_BOUNDS_MS[b]! / 1000) : '+Inf';
      out.push(`${hist}_bucket{${labels[i]},le="${le}"} ${cumulative}`);
    }
    out.push(`${hist}_sum{${labels[i]}} ${s.values[Field.LatencySum]! / 1000}`, `${hist}_count{${labels[i]}} ${cumulative}`);
  });
  family('viking_router_unrouted_requests_total', 'counter', 'Requests for a domain no stack has (answered 404 by the router).');
  out.push(`viking_router_unrouted_requests_total ${dump.unrouted}`);
  return `${out.join('\n')}\n`;
}

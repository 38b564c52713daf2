/**
 * `viking stats [STACK] [--watch] [--json]`: what the routers of every host
 * saw, summed (GET /v1/stats): per node and per replica, requests per
 * second, error %, p50 and p99 latency, connections open now.
 *
 * Rates need two readings: the command reads the counters, waits
 * `--interval` seconds, reads them again and shows the difference (the
 * window's own latency histogram too). `--watch` goes on reading and
 * printing every interval; `--json` prints the rows (with the totals per
 * status class, retries, connect errors and bytes) instead of the table.
 */
import type { Argv } from 'yargs';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { ClusterTraffic } from '../../api/stats-routes.js';
import { trafficRows, type TrafficRow } from '../../stats/traffic-table.js';

interface StatsArgs extends ReadArgs {
  stack?: string;
  watch?: boolean;
  interval: number;
}

const dash = (v: number | null, unit = ''): string => (v === null ? '-' : `${v}${unit}`);

export function statsTable(rows: TrafficRow[]): string {
  return formatTable(
    ['STACK', 'NODE', 'REPLICA', 'REQ/S', 'ERRORS', 'P50', 'P99', 'ACTIVE', 'REQUESTS'],
    rows.map((r) => [r.stack, r.node, r.replica === 'all' ? '*' : r.replica, dash(r.rps), dash(r.errorPct, '%'), dash(r.p50, 'ms'), dash(r.p99, 'ms'), r.active, r.requests]),
  );
}

export function statsCommand(y: Argv): Argv {
  return y.command<StatsArgs>(
    'stats [stack]',
    'requests/s, error %, p50/p99 latency per node and replica, from the routers of every host',
    (a) =>
      withJson(
        a
          .positional('stack', { type: 'string', describe: 'only this stack' })
          .option('watch', { alias: 'w', type: 'boolean', describe: 'print again every interval until Ctrl-C' })
          .option('interval', { type: 'number', default: 2, describe: 'seconds between the two readings a rate is taken from' }),
      ) as unknown as Argv<StatsArgs>,
    handled(async (args: StatsArgs) => {
      const api = await ApiClient.from(args);
      const path = `/v1/stats${args.stack ? `?stack=${encodeURIComponent(args.stack)}` : ''}`;
      const seconds = Math.max(0.2, args.interval);
      let before = await api.get<ClusterTraffic>(path);
      for (;;) {
        await new Promise((r) => setTimeout(r, seconds * 1000));
        const now = await api.get<ClusterTraffic>(path);
        const elapsed = (Date.parse(now.at) - Date.parse(before.at)) / 1000 || seconds;
        const rows = trafficRows(now.traffic, before.traffic, elapsed, args.stack);
        const missing = now.hosts.filter((h) => !h.ok);
        // totals: since each router started (what a scrape of /metrics would sum), for scripts that want counts.
        if (args.json) printJson({ at: now.at, seconds: elapsed, hosts: now.hosts, rows, totals: trafficRows(now.traffic, undefined, undefined, args.stack) });
        else {
          if (args.watch) process.stdout.write(`\n${now.at}\n`);
          process.stdout.write(rows.length ? `${statsTable(rows)}\n` : 'no traffic counted yet for this stack\n');
          for (const h of missing) process.stdout.write(`warning: host ${h.host} left out: ${h.error}\n`);
        }
        if (!args.watch) return;
        before = now;
      }
    }),
  );
}

/**
 * Cron in /metrics, read from the kept run history at scrape time:
 *   viking_cron_runs{stack,node,state}       runs kept (last CRON_HISTORY per node) by state
 *   viking_cron_last_failed{stack,node}      1 when the last finished run failed (failed, unplaced, lost)
 *   viking_cron_last_exit_code{stack,node}   exit code of the last finished run that ran
 *   viking_cron_last_run_timestamp_seconds   tick of the last finished run
 * An alert on viking_cron_last_failed == 1 says which job broke.
 */
import type { Etcd3 } from 'etcd3';
import { Gauge, type Registry } from 'prom-client';
import { FAILED_STATES, cronTotals } from '../cron/history.js';

export function registerCronMetrics(registers: Registry[], client: Etcd3): void {
  let cache: { at: number; value: ReturnType<typeof cronTotals> } | undefined;
  const totals = (): ReturnType<typeof cronTotals> => {
    if (!cache || Date.now() - cache.at > 1000) cache = { at: Date.now(), value: cronTotals(client) };
    return cache.value;
  };
  new Gauge({
    name: 'viking_cron_runs',
    help: 'Cron runs kept in the history (the last 20 per node), by state: placed, running, succeeded, failed, skipped, unplaced, lost.',
    labelNames: ['stack', 'node', 'state'],
    registers,
    async collect() {
      this.reset();
      for (const t of await totals()) for (const [state, n] of Object.entries(t.byState)) this.set({ stack: t.stack, node: t.node, state }, n);
    },
  });
  new Gauge({
    name: 'viking_cron_last_failed',
    help: '1 when the last finished run of the cron node failed (exit code not 0, could not be placed or run, or its host vanished).',
    labelNames: ['stack', 'node'],
    registers,
    async collect() {
      this.reset();
      for (const t of await totals()) if (t.last) this.set({ stack: t.stack, node: t.node }, FAILED_STATES.has(t.last.state) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'viking_cron_last_exit_code',
    help: 'Exit code of the last finished run of the cron node that ran a container.',
    labelNames: ['stack', 'node'],
    registers,
    async collect() {
      this.reset();
      for (const t of await totals()) if (t.last?.exitCode !== undefined) this.set({ stack: t.stack, node: t.node }, t.last.exitCode);
    },
  });
  new Gauge({
    name: 'viking_cron_last_run_timestamp_seconds',
    help: 'Scheduled time of the last finished run of the cron node.',
    labelNames: ['stack', 'node'],
    registers,
    async collect() {
      this.reset();
      for (const t of await totals()) if (t.last) this.set({ stack: t.stack, node: t.node }, Date.parse(t.last.tick) / 1000);
    },
  });
}

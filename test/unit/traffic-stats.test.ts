/**
 * The maths of the router's traffic counters: which field a status lands in,
 * which bucket a duration lands in, quantiles from the buckets, sums over
 * workers and hosts, and the rates of a window between two readings.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BUCKETS, CLASS_NAMES, Field, LATENCY_BOUNDS_MS, STRIDE, TrafficCounters, bucketOf, sumDumps } from '../../lib/router/traffic-counters.js';
import { histogramQuantile } from '../../lib/stats/quantiles.js';
import { trafficRows, windowOf } from '../../lib/stats/traffic-table.js';

describe('histogramQuantile', () => {
  const bounds = [1, 2, 4, 8];
  const cases: Array<[string, number, number[], number]> = [
    ['all in the first bucket: interpolated from 0', 0.5, [10, 0, 0, 0, 0], 0.5],
    ['median across two buckets', 0.5, [5, 5, 0, 0, 0], 1],
    ['p99 in the third bucket', 0.99, [50, 0, 50, 0, 0], 2 + 2 * (49 / 50)],
    ['rank in the open last bucket answers the last bound', 0.99, [1, 0, 0, 0, 99], 8],
    ['q = 0 gives the lower edge of the first non-empty bucket', 0, [0, 0, 3, 0, 0], 2],
    ['q = 1 gives the upper edge of the last non-empty bucket', 1, [1, 1, 1, 0, 0], 4],
  ];
  for (const [name, q, counts, want] of cases) test(name, () => assert.ok(Math.abs(histogramQuantile(q, bounds, counts) - want) < 1e-9, `${histogramQuantile(q, bounds, counts)} != ${want}`));
  test('an empty histogram or a q out of range is NaN', () => {
    assert.ok(Number.isNaN(histogramQuantile(0.5, bounds, [0, 0, 0, 0, 0])));
    assert.ok(Number.isNaN(histogramQuantile(1.5, bounds, [1, 0, 0, 0, 0])));
  });
  test('property: the estimate lies in the bucket that holds the true quantile of the samples', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.001, max: 59_000, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (samples, q) => {
        const counts = new Array<number>(BUCKETS).fill(0);
        for (const s of samples) counts[bucketOf(s)]!++;
        const sorted = [...samples].sort((a, b) => a - b);
        const truth = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
        const b = bucketOf(truth);
        const est = histogramQuantile(q, LATENCY_BOUNDS_MS, counts);
        const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1]!;
        const upper = LATENCY_BOUNDS_MS[Math.min(b, LATENCY_BOUNDS_MS.length - 1)]!;
        return est >= lower - 1e-9 && est <= upper + 1e-9;
      }),
    );
  });
  test('property: quantiles never decrease with q', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: BUCKETS, maxLength: BUCKETS }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (counts, a, b) => {
        if (counts.every((c) => c === 0)) return true;
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        return histogramQuantile(lo, LATENCY_BOUNDS_MS, counts) <= histogramQuantile(hi, LATENCY_BOUNDS_MS, counts) + 1e-9;
      }),
    );
  });
});

describe('TrafficCounters', () => {
  test('bucketOf: a duration on a bound belongs to that bound, above the last to +Inf', () => {
    assert.equal(bucketOf(0), 0);
    assert.equal(bucketOf(1), 0);
    assert.equal(bucketOf(1.01), 1);
    assert.equal(bucketOf(LATENCY_BOUNDS_MS.at(-1)!), LATENCY_BOUNDS_MS.length - 1);
    assert.equal(bucketOf(1e9), LATENCY_BOUNDS_MS.length);
  });

  const statusCases: Array<[number, boolean, (typeof CLASS_NAMES)[number]]> = [
    [101, false, '1xx'], [200, false, '2xx'], [204, false, '2xx'], [301, false, '3xx'], [404, false, '4xx'], [499, false, '4xx'],
    [500, false, '5xx'], [502, false, '5xx'], [599, false, '5xx'], [502, true, 'router_502'], [503, true, 'router_503'], [504, true, 'router_504'], [500, true, '5xx'],
  ];
  for (const [status, own, want] of statusCases) {
    test(`${own ? "the router's own" : 'an app'} ${status} counts as ${want}`, () => {
      const c = new TrafficCounters();
      const s = c.slot({ stack: 's', node: 'n', domain: 'd', replica: 1 });
      c.answered(s, status, own, 3, 10, 20);
      const v = c.dump().slots[0]!.values;
      assert.equal(v[CLASS_NAMES.indexOf(want)], 1);
      assert.equal(CLASS_NAMES.reduce((sum, _n, i) => sum + v[i]!, 0), 1);
      assert.deepEqual([v[Field.BytesIn], v[Field.BytesOut], v[Field.LatencySum], v[Field.Buckets + bucketOf(3)]], [10, 20, 3, 1]);
    });
  }

  test('slots are stable across table rebuilds and survive growing the array', () => {
    const c = new TrafficCounters();
    const first = c.slot({ stack: 's', node: 'n', domain: 'd', replica: 1 });
    c.add(first, Field.Retries, 2);
    for (let i = 2; i < 100; i++) c.slot({ stack: 's', node: 'n', domain: 'd', replica: i });
    assert.equal(c.slot({ stack: 's', node: 'n', domain: 'd', replica: 1 }), first);
    assert.equal(c.dump().slots[first]!.values[Field.Retries], 2);
    assert.equal(c.dump().slots.length, 99);
  });

  test('sumDumps adds slot by slot over workers and hosts; odd slots are dropped', () => {
    const mk = (replica: number, retries: number) => {
      const c = new TrafficCounters();
      c.add(c.slot({ stack: 's', node: 'n', domain: 'd', replica }), Field.Retries, retries);
      c.unrouted = 1;
      return c.dump();
    };
    const sum = sumDumps([mk(1, 2), mk(1, 3), mk(2, 5), { slots: [{ stack: 's', node: 'n', domain: 'd', replica: 1, values: [1] }], unrouted: 0 }]);
    assert.equal(sum.unrouted, 3);
    assert.equal(sum.slots.find((s) => s.replica === 1)!.values[Field.Retries], 5);
    assert.equal(sum.slots.find((s) => s.replica === 2)!.values[Field.Retries], 5);
    assert.equal(sum.slots[0]!.values.length, STRIDE);
  });
});

describe('trafficRows', () => {
  const reading = (r1ok: number, r2err: number, active: number) => {
    const c = new TrafficCounters();
    const r0 = c.slot({ stack: 's', node: 'web', domain: 'd', replica: 0 });
    const r1 = c.slot({ stack: 's', node: 'web', domain: 'd', replica: 1 });
    const r2 = c.slot({ stack: 's', node: 'web', domain: 'e', replica: 2 });
    for (let i = 0; i < r1ok; i++) c.answered(r1, 200, false, 4, 1, 1);
    for (let i = 0; i < r2err; i++) c.answered(r2, 502, true, 40, 1, 1);
    c.add(r1, Field.Active, active);
    c.answered(r0, 503, true, 0, 0, 0);
    return c.dump();
  };
  test('a window: rates and errors of the difference, gauges as they are now', () => {
    const rows = trafficRows(reading(30, 10, 2), reading(10, 0, 5), 2, 's');
    const all = rows.find((r) => r.replica === 'all')!;
    // 20 ok + 10 router 502 in the window; the 503 of the route was in both readings.
    assert.equal(all.requests, 30);
    assert.equal(all.rps, 15);
    assert.equal(all.errorPct, 33.33);
    assert.equal(all.active, 2);
    const r1 = rows.find((r) => r.replica === 1)!;
    assert.deepEqual([r1.requests, r1.errorPct, r1.rps], [20, 0, 10]);
    assert.ok(r1.p50! > 2.5 && r1.p50! <= 5);
    assert.equal(rows.find((r) => r.replica === 2)!.classes.router_502, 10);
    assert.equal(rows.some((r) => r.replica === 0), false, 'the route slot is only in the total');
  });
  test('one reading: totals since start, no rate; a counter that went back starts from zero', () => {
    const rows = trafficRows(reading(3, 0, 0));
    assert.equal(rows.find((r) => r.replica === 1)!.rps, null);
    const w = windowOf(reading(2, 0, 0), reading(5, 0, 0));
    assert.equal(w.slots.find((s) => s.replica === 1)!.values[CLASS_NAMES.indexOf('2xx')], 2);
  });
});

/**
 * Quantiles from a fixed-bucket latency histogram, the way Prometheus'
 * histogram_quantile() estimates them: find the bucket the rank falls in and
 * interpolate linearly inside it. The router keeps only bucket counts (no
 * samples), so this is what `viking stats` can say about p50 and p99; the
 * error is at most the width of one bucket.
 */

/**
 * The q-quantile (0..1) of a histogram given as non-cumulative bucket counts,
 * where bucket i holds values in (bounds[i-1], bounds[i]] and the last bucket
 * (index bounds.length) everything above the last bound. NaN when empty. A
 * rank in the open last bucket answers the last bound (nothing better is known).
 */
export function histogramQuantile(q: number, bounds: readonly number[], counts: readonly number[]): number {
  let total = 0;
  for (const c of counts) total += c;
  if (!(total > 0) || !(q >= 0 && q <= 1)) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bounds[bounds.length - 1]!;
}

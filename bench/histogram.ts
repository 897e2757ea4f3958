// A log-bucket latency histogram (HDR-like): each bucket is ~2% wide, so a
// percentile is exact to ~2% without keeping samples. Histograms from several
// load-generator threads merge by adding their counts.

/** Bucket width as a ratio: bucket i holds latencies in [GROWTH^i, GROWTH^(i+1)) µs. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** 1 µs .. ~GROWTH^1024 µs (~10^8.8 µs, minutes): more than any request takes. */
export const HISTOGRAM_BUCKETS = 1024;

export function newHistogram(): Float64Array {
  return new Float64Array(HISTOGRAM_BUCKETS);
}

export function record(hist: Float64Array, latencyUs: number): void {
  const i = latencyUs <= 1 ? 0 : Math.floor(Math.log(latencyUs) / LOG_GROWTH);
  hist[i < HISTOGRAM_BUCKETS ? i : HISTOGRAM_BUCKETS - 1]++;
}

export function merge(into: Float64Array, from: ArrayLike<number>): void {
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) into[i] += from[i];
}

export function count(hist: Float64Array): number {
  let n = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) n += hist[i];
  return n;
}

/** The latency (µs, bucket midpoint) below which fraction q of the samples fall; 0 for no samples. */
export function percentile(hist: Float64Array, q: number): number {
  const total = count(hist);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    seen += hist[i];
    if (seen >= rank) return i === 0 ? 1 : Math.pow(GROWTH, i + 0.5);
  }
  return Math.pow(GROWTH, HISTOGRAM_BUCKETS);
}

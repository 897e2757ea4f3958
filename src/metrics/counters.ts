// Request and commit metrics that a thread keeps in shared memory: per
// command and result a counter, per command a fixed-bucket latency
// histogram, and histograms of commit batch size and commit (fsync) time.
// One writer per buffer (the thread that owns it), read by the supervisor at
// scrape time without the writer's help, so a scrape never touches the
// request path. Pure layout and arithmetic: no I/O.

import { Command } from '../protocol/constants.ts';

/** Commands with their own series; anything else counts as "other". */
export const METRIC_COMMANDS = [
  ['GET', Command.GET],
  ['PUT', Command.PUT],
  ['DEL', Command.DEL],
  ['CHK', Command.CHK],
  ['GET_TS', Command.GET_TS],
  ['GET_LAST_TS', Command.GET_LAST_TS],
  ['GET_FIRST_TS', Command.GET_FIRST_TS],
  ['INIT', Command.INIT],
  ['SHUT_DOWN', Command.SHUT_DOWN],
  ['other', -1],
] as const;
export const METRIC_RESULTS = ['ok', 'not_found', 'error'] as const;

/** Upper bounds (seconds) of the request latency buckets; the last bucket is +Inf. */
export const LATENCY_BOUNDS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;
/** Upper bounds of the commit batch size buckets (writes per transaction). */
export const BATCH_SIZE_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] as const;
/** Upper bounds (seconds) of the commit duration buckets (COMMIT, which fsyncs in durability "full"). */
export const COMMIT_BOUNDS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

/** A histogram's slots: one per bucket (not cumulative), +Inf, then the sum. */
const histogramSlots = (bounds: readonly number[]) => bounds.length + 2;

const commandIndex = new Map<number, number>(METRIC_COMMANDS.map(([, n], i) => [n, i]));
const OTHER = METRIC_COMMANDS.length - 1;

const COUNTERS_AT = 0;
const LATENCY_AT = COUNTERS_AT + METRIC_COMMANDS.length * METRIC_RESULTS.length;
const LATENCY_SLOTS = histogramSlots(LATENCY_BOUNDS_S);
const BATCH_AT = LATENCY_AT + METRIC_COMMANDS.length * LATENCY_SLOTS;
const COMMIT_AT = BATCH_AT + histogramSlots(BATCH_SIZE_BOUNDS);
/** Float64 slots of one buffer. */
export const METRIC_SLOTS = COMMIT_AT + histogramSlots(COMMIT_BOUNDS_S);

export function newMetricsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(METRIC_SLOTS * 8);
}

function observeInto(a: Float64Array, at: number, bounds: readonly number[], value: number): void {
  let i = 0;
  while (i < bounds.length && value > bounds[i]) i++;
  a[at + i]++;
  a[at + bounds.length + 1] += value;
}

/** The writing side, used by the thread that owns the buffer. */
export class MetricsWriter {
  private readonly a: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.a = new Float64Array(buffer);
  }

  /** One answered request: its command, the reply's command (OK / NO_VAL / ERROR) and its time in the daemon. */
  request(command: number, replyCommand: number, seconds: number): void {
    const c = commandIndex.get(command) ?? OTHER;
    const result = replyCommand === Command.OK ? 0 : replyCommand === Command.NO_VAL ? 1 : 2;
    this.a[COUNTERS_AT + c * METRIC_RESULTS.length + result]++;
    observeInto(this.a, LATENCY_AT + c * LATENCY_SLOTS, LATENCY_BOUNDS_S, seconds);
  }

  /** One committed write transaction: how many writes it held and how long its COMMIT took. */
  commit(writes: number, commitSeconds: number): void {
    observeInto(this.a, BATCH_AT, BATCH_SIZE_BOUNDS, writes);
    observeInto(this.a, COMMIT_AT, COMMIT_BOUNDS_S, commitSeconds);
  }
}

export interface HistogramSnapshot {
  /** counts per bucket, not cumulative; the last one is +Inf */
  buckets: number[];
  sum: number;
}

/** A copy of the counters of one or more buffers, added up (the reading side). */
export class MetricsSnapshot {
  readonly values = new Float64Array(METRIC_SLOTS);

  /** Adds a buffer's current values (a live thread's) or a saved copy (threads that have exited). */
  add(source: SharedArrayBuffer | Float64Array): this {
    const a = source instanceof Float64Array ? source : new Float64Array(source);
    for (let i = 0; i < METRIC_SLOTS; i++) this.values[i] += a[i];
    return this;
  }

  requests(commandIdx: number, resultIdx: number): number {
    return this.values[COUNTERS_AT + commandIdx * METRIC_RESULTS.length + resultIdx];
  }

  latency(commandIdx: number): HistogramSnapshot {
    return this.histogram(LATENCY_AT + commandIdx * LATENCY_SLOTS, LATENCY_BOUNDS_S);
  }

  batchSize(): HistogramSnapshot {
    return this.histogram(BATCH_AT, BATCH_SIZE_BOUNDS);
  }

  commitSeconds(): HistogramSnapshot {
    return this.histogram(COMMIT_AT, COMMIT_BOUNDS_S);
  }

  /** All requests answered, every command and result. */
  totalRequests(): number {
    let n = 0;
    for (let i = 0; i < METRIC_COMMANDS.length * METRIC_RESULTS.length; i++) n += this.values[COUNTERS_AT + i];
    return n;
  }

  /** All commands' latency histograms merged. */
  allLatency(): HistogramSnapshot {
    const merged: HistogramSnapshot = { buckets: new Array(LATENCY_BOUNDS_S.length + 1).fill(0), sum: 0 };
    for (let c = 0; c < METRIC_COMMANDS.length; c++) {
      const h = this.latency(c);
      h.buckets.forEach((n, i) => (merged.buckets[i] += n));
      merged.sum += h.sum;
    }
    return merged;
  }

  private histogram(at: number, bounds: readonly number[]): HistogramSnapshot {
    return { buckets: Array.from(this.values.subarray(at, at + bounds.length + 1)), sum: this.values[at + bounds.length + 1] };
  }
}

/**
 * The q-quantile of what was observed between two snapshots of a histogram,
 * as the upper bound of the bucket it falls in (the +Inf bucket reports the
 * last finite bound). null when nothing was observed.
 */
export function quantileBetween(before: HistogramSnapshot, after: HistogramSnapshot, bounds: readonly number[], q: number): number | null {
  const counts = after.buckets.map((n, i) => n - (before.buckets[i] ?? 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return bounds[Math.min(i, bounds.length - 1)];
  }
  return bounds[bounds.length - 1];
}

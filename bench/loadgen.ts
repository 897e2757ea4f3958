// The load generator's coordinator: spreads a case's connections over worker
// threads (bench/loadgen-worker.ts), runs warm-up then the measured window,
// and merges what the threads counted. The main thread only sends phase
// messages, so it stays free for sampling the server's memory.

import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { merge, newHistogram } from './histogram.ts';

export type ClientStyle = 'persistent' | 'pipelined' | 'oneshot';

export interface LoadSpec {
  host: string;
  port: number;
  style: ClientStyle;
  /** connections (oneshot: concurrent connect-request-close loops), over all threads */
  connections: number;
  /** requests in flight per connection in the pipelined style */
  depth: number;
  /** share of GETs; the rest are PUTs */
  getFraction: number;
  valueSize: number;
  /** keys are keyPrefix + 0 .. keyCount-1, chosen uniformly */
  keyPrefix: string;
  keyCount: number;
  /** request flag bits (e.g. the consistency level); default 0 */
  flag?: number;
}

export type WorkerSpec = LoadSpec;

export type ToLoadWorker = { type: 'go' } | { type: 'measure' } | { type: 'stop' };
export type FromLoadWorker =
  | { type: 'ready' }
  | { type: 'done'; ops: number; errors: number; misses: number; hist: Float64Array };

export interface LoadResult {
  opsPerSec: number;
  ops: number;
  errors: number;
  /** GETs answered NO_VAL (not errors; a preloaded key space should have none) */
  misses: number;
  hist: Float64Array;
  elapsedS: number;
}

const WORKER = new URL('./loadgen-worker.ts', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one measured load: connect, warm up for warmupMs, count for durationMs. */
export async function runLoad(
  spec: LoadSpec,
  o: {
    threads: number;
    warmupMs: number;
    durationMs: number;
    /** called every 100 ms of the measured window */
    onSample?: () => void;
    /** called when the measured window opens and closes */
    onWindow?: (edge: 'start' | 'end') => void;
  },
): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(o.threads, spec.connections));
  const workers: Worker[] = [];
  const failures: Promise<never>[] = [];
  for (let i = 0; i < threads; i++) {
    // connections split as evenly as possible
    const connections = Math.floor(spec.connections / threads) + (i < spec.connections % threads ? 1 : 0);
    const w = new Worker(WORKER, { workerData: { ...spec, connections } satisfies WorkerSpec });
    workers.push(w);
    failures.push(new Promise((_r, reject) => w.once('error', (e) => reject(new Error(`load generator thread failed: ${e.message}`)))));
  }
  const failed = Promise.race(failures);
  // each worker sends exactly one message per phase ('ready', then 'done')
  const next = (w: Worker) => new Promise<FromLoadWorker>((res) => w.once('message', res));
  const ready = workers.map(next);
  try {
    let timer: NodeJS.Timeout | undefined;
    const readyTimeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`load generator could not connect to ${spec.host}:${spec.port} within 10 s`)), 10_000);
    });
    await Promise.race([Promise.all(ready), failed, readyTimeout]).finally(() => clearTimeout(timer));
    for (const w of workers) w.postMessage({ type: 'go' } satisfies ToLoadWorker);
    await sleep(o.warmupMs);
    for (const w of workers) w.postMessage({ type: 'measure' } satisfies ToLoadWorker);
    o.onWindow?.('start');
    const started = performance.now();
    const sampler = o.onSample ? setInterval(o.onSample, 100) : undefined;
    await sleep(o.durationMs);
    if (sampler) clearInterval(sampler);
    const done = workers.map(next);
    for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToLoadWorker);
    o.onWindow?.('end');
    const elapsedS = (performance.now() - started) / 1000;
    const results = (await Promise.race([Promise.all(done), failed])) as Array<Extract<FromLoadWorker, { type: 'done' }>>;
    const hist = newHistogram();
    let ops = 0;
    let errors = 0;
    let misses = 0;
    for (const r of results) {
      ops += r.ops;
      errors += r.errors;
      misses += r.misses;
      merge(hist, r.hist);
    }
    return { opsPerSec: ops / elapsedS, ops, errors, misses, hist, elapsedS };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

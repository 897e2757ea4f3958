// The daemon's own figures in `pm2 monit` and `pm2 show`, through @pm2/io:
// requests/s and p99 latency over the last second, connections, keys, the
// cluster role and the replication lag. Sampled once a second on the
// supervisor's thread from the same shared counters as /metrics.

import io from '@pm2/io';
import { LATENCY_BOUNDS_S, MetricsSnapshot, quantileBetween } from '../metrics/counters.ts';
import type { DaemonFigures } from '../metrics/exporter.ts';

const SAMPLE_EVERY_MS = 1000;

/** Starts the pm2 metrics; returns a function that stops them. Only under pm2 (it reads them over the IPC channel). */
export function startPm2Metrics(figures: DaemonFigures & { role(): string }): () => void {
  io.init({ catchExceptions: false, metrics: { http: false, runtime: false, eventLoop: true, network: false, v8: true }, profiling: false } as never);
  let previous = sample(figures);
  let previousAtMs = performance.now();
  let requestsPerSecond = 0;
  let p99Ms: number | null = null;
  const timer = setInterval(() => {
    const now = performance.now();
    const current = sample(figures);
    requestsPerSecond = Math.round(((current.totalRequests() - previous.totalRequests()) * 1000) / (now - previousAtMs));
    const p99 = quantileBetween(previous.allLatency(), current.allLatency(), LATENCY_BOUNDS_S, 0.99);
    p99Ms = p99 === null ? null : p99 * 1000;
    previous = current;
    previousAtMs = now;
  }, SAMPLE_EVERY_MS);
  timer.unref();
  io.metric({ name: 'req/s', value: () => requestsPerSecond });
  io.metric({ name: 'p99 latency', unit: 'ms', value: () => (p99Ms === null ? 0 : p99Ms) });
  io.metric({ name: 'connections', value: () => figures.connections() });
  io.metric({ name: 'keys', value: () => figures.keys() ?? 0 });
  // pm2 shows whatever value it is given; a role is a word
  io.metric({ name: 'role', value: (() => figures.role()) as unknown as () => number });
  io.metric({
    name: 'replication lag',
    unit: 'ms',
    value: () => Math.round(Math.max(0, ...(figures.cluster()?.peers ?? []).map((p) => p.lagSeconds ?? 0)) * 1000),
  });
  return () => {
    clearInterval(timer);
    io.destroy();
  };
}

function sample(figures: DaemonFigures): MetricsSnapshot {
  const s = new MetricsSnapshot();
  figures.addRequestMetrics(s);
  return s;
}

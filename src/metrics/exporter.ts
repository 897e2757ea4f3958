// The daemon's Prometheus endpoint: GET /metrics over HTTP, in the text
// format, built with prom-client. Every figure is read at scrape time from
// what the daemon already keeps (the processors' shared-memory counters, the
// supervisor's group state, the cluster member), on the supervisor's thread:
// a scrape never sends a message to a processor or waits for one.

import { createServer, type Server } from 'node:http';
import { Registry, collectDefaultMetrics, type MetricValue } from 'prom-client';
import {
  BATCH_SIZE_BOUNDS,
  COMMIT_BOUNDS_S,
  LATENCY_BOUNDS_S,
  METRIC_COMMANDS,
  METRIC_RESULTS,
  MetricsSnapshot,
  type HistogramSnapshot,
} from './counters.ts';

/** What the exporter reads; the supervisor implements it. */
export interface DaemonFigures {
  /** adds the request and commit counters of every processor, past and present */
  addRequestMetrics(into: MetricsSnapshot): void;
  connections(): number;
  processorsAlive(): number;
  processorRestarts(): number;
  storeBytes(): number;
  /** live keys from the last background count; null before the first count */
  keys(): number | null;
  /** null for a lone daemon */
  cluster(): ClusterFigures | null;
}

export interface ClusterFigures {
  isLeader: boolean;
  term: number;
  peers: { id: string; up: boolean; lagSeconds: number | null }[];
}

type Labels = Record<string, string | number>;
type ComputedType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose values are computed from a snapshot at scrape time (prom-client
 * only needs `name`, `help`, `type` and `get()` from a registered metric).
 */
class ComputedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: ComputedType;
  readonly aggregator = 'sum' as const;
  private readonly values: () => MetricValue<string>[];

  constructor(name: string, help: string, type: ComputedType, values: () => MetricValue<string>[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.values = values;
  }

  get(): Promise<{ name: string; help: string; type: ComputedType; aggregator: 'sum'; values: MetricValue<string>[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }
}

/** Prometheus histogram series (cumulative buckets, sum, count) from fixed non-cumulative buckets. */
function histogramValues(name: string, labels: Labels, h: HistogramSnapshot, bounds: readonly number[]): MetricValue<string>[] {
  const out: MetricValue<string>[] = [];
  let cumulative = 0;
  h.buckets.forEach((n, i) => {
    cumulative += n;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: i < bounds.length ? bounds[i] : '+Inf' }, value: cumulative } as MetricValue<string>);
  });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum } as MetricValue<string>);
  out.push({ metricName: `${name}_count`, labels, value: cumulative } as MetricValue<string>);
  return out;
}

export function metricsRegistry(daemonId: string, figures: DaemonFigures): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ daemon: daemonId });
  collectDefaultMetrics({ register: registry });

  // one snapshot of the shared counters per scrape, shared by the metrics below
  let snapshot = new MetricsSnapshot();
  let snapshotAtMs = -Infinity;
  const counters = () => {
    const now = performance.now();
    if (now - snapshotAtMs > 100) {
      snapshot = new MetricsSnapshot();
      figures.addRequestMetrics(snapshot);
      snapshotAtMs = now;
    }
    return snapshot;
  };
  const add = (m: ComputedMetric) => registry.registerMetric(m as never);

  add(new ComputedMetric('kv_requests_total', 'Client requests answered, by command and result (ok, not_found = NO_VAL, error)', 'counter', () => {
    const s = counters();
    const out: MetricValue<string>[] = [];
    METRIC_COMMANDS.forEach(([command], c) =>
      METRIC_RESULTS.forEach((result, r) => out.push({ labels: { command, result }, value: s.requests(c, r) })),
    );
    return out;
  }));
  add(new ComputedMetric('kv_request_duration_seconds', 'Time from reading a request to writing its reply, by command', 'histogram', () => {
    const s = counters();
    return METRIC_COMMANDS.flatMap(([command], c) => histogramValues('kv_request_duration_seconds', { command }, s.latency(c), LATENCY_BOUNDS_S));
  }));
  add(new ComputedMetric('kv_commit_batch_size', 'Writes per committed write transaction (group commit)', 'histogram', () =>
    histogramValues('kv_commit_batch_size', {}, counters().batchSize(), BATCH_SIZE_BOUNDS),
  ));
  add(new ComputedMetric('kv_fsync_duration_seconds', 'Duration of COMMIT of a write transaction (the WAL fsync with durability "full")', 'histogram', () =>
    histogramValues('kv_fsync_duration_seconds', {}, counters().commitSeconds(), COMMIT_BOUNDS_S),
  ));
  add(new ComputedMetric('kv_processor_restarts_total', 'Processor threads replaced after a crash or hang', 'counter', () => [
    { labels: {}, value: figures.processorRestarts() },
  ]));

  const gauge = (name: string, help: string, read: () => number | null) =>
    add(new ComputedMetric(name, help, 'gauge', () => {
      const v = read();
      return v === null ? [] : [{ labels: {}, value: v }];
    }));
  gauge('kv_connections', 'Open client connections', () => figures.connections());
  gauge('kv_processors_alive', 'Processor threads serving', () => figures.processorsAlive());
  gauge('kv_store_bytes', 'Size of the SQLite files (database and WAL)', () => figures.storeBytes());
  gauge('kv_keys', 'Live keys, from the last background count (every 10 s)', () => figures.keys());
  gauge('kv_cluster_is_leader', '1 when this daemon is the cluster leader', () => {
    const c = figures.cluster();
    return c ? (c.isLeader ? 1 : 0) : null;
  });
  gauge('kv_cluster_term', 'Election term this daemon is in', () => figures.cluster()?.term ?? null);
  const perPeer = (name: string, help: string, read: (p: ClusterFigures['peers'][number]) => number | null) =>
    add(new ComputedMetric(name, help, 'gauge', () =>
      (figures.cluster()?.peers ?? []).flatMap((p) => {
        const v = read(p);
        return v === null ? [] : [{ labels: { peer: p.id }, value: v }];
      }),
    ));
  perPeer('kv_peer_up', '1 while the authenticated peer connection to this daemon is up', (p) => (p.up ? 1 : 0));
  perPeer('kv_replication_lag_seconds', 'Age of the newest change of that peer when this daemon received it; 0 when its last pull found nothing new', (p) => p.lagSeconds);
  return registry;
}

/** Serves GET /metrics on host:port; resolves once listening. */
export function startMetricsServer(host: string, port: number, registry: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`metrics endpoint cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen({ host, port }, () => resolve(server));
  });
}

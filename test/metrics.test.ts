// The Prometheus endpoint of a real daemon: request counters by command and
// result, latency/commit histograms, connections, processors, restarts,
// store size and key count; counters never go down when a processor is
// replaced. And the shared-memory counters themselves.
import test from 'ava';
import { Command } from '../src/protocol/index.ts';
import { LATENCY_BOUNDS_S, MetricsSnapshot, MetricsWriter, METRIC_COMMANDS, newMetricsBuffer, quantileBetween } from '../src/metrics/counters.ts';
import { ReplicationLag } from '../src/metrics/replication-lag.ts';
import { startDaemon, waitFor } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

/** Parses the text format into "name{labels}" → value (labels as written by prom-client). */
async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`scrape answered ${res.status}`);
  const series = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at).replace(/,?daemon="test"/, '').replace('{}', ''), Number(line.slice(at + 1)));
  }
  return series;
}

test('counters and histograms in shared memory add up across buffers; quantiles come from bucket bounds', (t) => {
  const a = newMetricsBuffer(), b = newMetricsBuffer();
  const wa = new MetricsWriter(a), wb = new MetricsWriter(b);
  wa.request(Command.GET, Command.OK, 0.0002);
  wa.request(Command.GET, Command.NO_VAL, 0.003);
  wb.request(Command.PUT, Command.ERROR, 5);
  wb.request(12345, Command.OK, 0.00001);
  wb.commit(3, 0.0004);
  const before = new MetricsSnapshot();
  const s = new MetricsSnapshot().add(a).add(b);
  const get = METRIC_COMMANDS.findIndex(([n]) => n === 'GET');
  const put = METRIC_COMMANDS.findIndex(([n]) => n === 'PUT');
  t.is(s.requests(get, 0), 1);
  t.is(s.requests(get, 1), 1);
  t.is(s.requests(put, 2), 1);
  t.is(s.requests(METRIC_COMMANDS.length - 1, 0), 1, 'an unknown command counts as "other"');
  t.is(s.totalRequests(), 4);
  t.deepEqual(s.latency(put).buckets.at(-1), 1, 'over the last bound lands in +Inf');
  t.is(s.batchSize().buckets.reduce((x, y) => x + y, 0), 1);
  t.is(s.batchSize().sum, 3);
  t.is(quantileBetween(before.allLatency(), s.allLatency(), LATENCY_BOUNDS_S, 0.5), 0.00025);
  t.is(quantileBetween(before.allLatency(), s.allLatency(), LATENCY_BOUNDS_S, 0.99), 2.5);
  t.is(quantileBetween(s.allLatency(), s.allLatency(), LATENCY_BOUNDS_S, 0.99), null, 'nothing observed in between');
});

test('replication lag: the age of the newest change in a page; 0 once a pull finds nothing new', (t) => {
  const lag = new ReplicationLag();
  const atMs = (ms: number) => ({ ts: BigInt(ms) * 1000n });
  t.is(lag.of('b'), null, 'nothing pulled yet');
  lag.onChanges('b', { entries: [atMs(1_000), atMs(9_500), atMs(4_000)], more: true }, 10_000);
  t.is(lag.of('b'), 0.5);
  lag.onChanges('b', { entries: [], more: true }, 10_100);
  t.is(lag.of('b'), 0.5, 'an empty page with more to come says nothing');
  lag.onChanges('b', { entries: [atMs(20_000)], more: false }, 19_000);
  t.is(lag.of('b'), 0, 'a timestamp ahead of this clock (skew, logical ticks) is no lag');
  lag.onChanges('b', { entries: [atMs(30_000)], more: false }, 30_250);
  lag.onChanges('b', { entries: [], more: false }, 30_300);
  t.is(lag.of('b'), 0, 'caught up');
  t.is(lag.of('c'), null);
});

test('a daemon serves /metrics: requests by command and result, latency and commit histograms, gauges; counters survive a processor crash', async (t) => {
  const d = await startDaemon({ metrics: true, processors: 2, faultInjection: true });
  t.teardown(() => d.kill());
  const port = d.ports[0];
  const conn = await PersistentConnection.open(port);
  t.teardown(() => conn.close());
  for (let i = 0; i < 20; i++) await conn.send({ command: Command.PUT, key: `k${i}`, value: Buffer.from('v') });
  for (let i = 0; i < 10; i++) await conn.send({ command: Command.GET, key: `k${i}` });
  await conn.send({ command: Command.GET, key: 'missing' });
  await conn.send({ command: Command.DEL, key: 'k0' });
  await requestOnce(port, { command: Command.CHK });

  const m = await scrape(d.metricsPort!);
  t.is(m.get('kv_requests_total{command="PUT",result="not_found"}'), 20, 'a PUT of a new key answers NO_VAL');
  t.is(m.get('kv_requests_total{command="GET",result="ok"}'), 10);
  t.is(m.get('kv_requests_total{command="GET",result="not_found"}'), 1);
  t.is(m.get('kv_requests_total{command="DEL",result="ok"}'), 1);
  t.is(m.get('kv_requests_total{command="CHK",result="ok"}'), 1);
  t.is(m.get('kv_request_duration_seconds_count{command="GET"}'), 11);
  t.is(m.get('kv_request_duration_seconds_bucket{command="PUT",le="+Inf"}'), 20);
  t.true(m.get('kv_request_duration_seconds_sum{command="PUT"}')! > 0);
  t.is(m.get('kv_commit_batch_size_sum'), 21, 'every PUT and the DEL were committed');
  t.true(m.get('kv_commit_batch_size_count')! >= 1);
  t.is(m.get('kv_fsync_duration_seconds_count'), m.get('kv_commit_batch_size_count'));
  t.is(m.get('kv_connections'), 1, 'the persistent connection');
  t.is(m.get('kv_processors_alive'), 2);
  t.is(m.get('kv_processor_restarts_total'), 0);
  t.true(m.get('kv_store_bytes')! > 0);
  t.false(m.has('kv_cluster_is_leader'), 'a lone daemon has no cluster figures');
  t.true(m.has('process_resident_memory_bytes'), 'process figures from prom-client');
  await waitFor('19 keys counted', async () => (await scrape(d.metricsPort!)).get('kv_keys') === 19, 15_000);

  // a crashed processor's counts stay in the totals
  const status = await d.admin({ op: 'status' });
  const slot = status.status.groups[0].processors[0].slot;
  t.true((await d.admin({ op: 'fault', port, slot, fault: 'crash' })).ok);
  const after = await waitFor('the processor replaced', async () => {
    const s = await scrape(d.metricsPort!);
    return s.get('kv_processor_restarts_total') === 1 && s.get('kv_processors_alive') === 2 ? s : undefined;
  });
  t.true(after.get('kv_requests_total{command="PUT",result="not_found"}')! >= 20);
  t.true(after.get('kv_commit_batch_size_sum')! >= 21);

  const notFound = await fetch(`http://127.0.0.1:${d.metricsPort}/other`);
  t.is(notFound.status, 404);
});

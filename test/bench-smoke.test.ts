// Smoke test of `npm run bench`: a tiny run of a few cases against a real
// daemon, echo server and SQLite file; checks the JSON report's shape and that
// every case did work without errors. Never asserts a timing or a ratio.

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchReport } from '../bench/report.ts';

const run = promisify(execFile);
const BENCH = new URL('../bench/run.ts', import.meta.url).pathname;

test('bench runs the selected cases with their baselines and writes a complete report', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-bench-smoke-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'report.json');
  const { stdout } = await run(process.execPath, [BENCH, '--duration', '0.3', '--runs', '1', '--only', 'kv (GET|PUT) hot128 persistent p1$', '--out', out], {
    timeout: 60_000,
  });
  const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;

  t.is(report.options.runs, 1);
  t.true(report.machine.cores >= 1);
  t.is(typeof report.machine.cpuModel, 'string');
  t.is(report.machine.node, process.version);
  t.true(report.machine.totalMemoryBytes > 0);

  // the two selected cases plus the baselines they are compared with
  const names = report.cases.map((c) => c.name).sort();
  t.deepEqual(names, ['echo persistent t1', 'kv GET hot128 persistent p1', 'kv PUT hot128 persistent p1', 'sqlite insert hot128 batch50']);
  for (const c of report.cases) {
    t.is(c.runs.length, 1, c.name);
    t.true(c.opsPerSec > 0, `${c.name} did some work`);
    t.is(c.errors, 0, `${c.name} had no errors`);
    t.true(c.p50Us > 0 && c.p50Us <= c.p99Us && c.p99Us <= c.p999Us, `${c.name} percentiles are ordered`);
  }
  const get = report.cases.find((c) => c.name === 'kv GET hot128 persistent p1')!;
  t.is(get.baseline, 'echo persistent t1');
  t.is(get.misses, 0, 'every GET found its preloaded key');
  t.is(typeof get.ratio, 'number');
  t.is(typeof get.meetsTarget, 'boolean');
  const put = report.cases.find((c) => c.name === 'kv PUT hot128 persistent p1')!;
  t.is(put.baseline, 'sqlite insert hot128 batch50');
  t.is(typeof put.ratio, 'number');

  t.deepEqual(report.memory.map((m) => m.processors), [1]);
  t.true(report.memory[0].idleRssBytes > 0 && report.memory[0].loadRssBytes > 0);

  // the human-readable table names every case
  for (const name of names) t.true(stdout.includes(name), `table shows ${name}`);
});

test('the cluster cases measure lag, failover and catch-up on three real daemons', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-bench-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'report.json');
  const { stdout } = await run(process.execPath, [BENCH, '--duration', '0.3', '--runs', '1', '--only', '^cluster', '--catch-up-keys', '2000', '--out', out], {
    timeout: 90_000,
  });
  const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
  t.deepEqual(report.cases, [], 'no matrix case matches ^cluster');
  const figures = report.cluster!.figures;
  t.deepEqual(figures.map((f) => f.name), [
    'cluster lag idle',
    'cluster lag load',
    'cluster GET one',
    'cluster GET majority',
    'cluster PUT one',
    'cluster PUT majority',
    'cluster PUT all',
    'cluster failover',
    'cluster catch-up',
  ]);
  for (const f of figures) {
    t.is(f.runs.length, 1, f.name);
    t.true(f.median > 0 && Number.isFinite(f.median), `${f.name} measured something`);
    t.true(stdout.includes(f.name), `table shows ${f.name}`);
  }
  const lag = figures.find((f) => f.name === 'cluster lag idle')!;
  t.true(lag.samples >= 2 && lag.p99! >= lag.median, 'lag has samples from both followers and ordered percentiles');
  const majority = figures.find((f) => f.name === 'cluster PUT majority')!;
  t.regex(majority.detail, /× level ONE in the same run/, 'each level is compared with ONE');
  t.is(report.cluster!.settings.electionTimeoutMinMs, 300, 'the settings the daemons ran with');
});

// What a benchmark run produces: the per-case summary (median of the runs),
// the JSON document, and the table printed on stdout.

import { cpus, loadavg, totalmem } from 'node:os';
import { percentile } from './histogram.ts';
import type { CaseDef } from './cases.ts';
import type { ClusterFigure } from './cluster.ts';

export interface RunResult {
  opsPerSec: number;
  /** CPU time the server process used per operation (all its threads); null when not measured */
  serverCpuUsPerOp: number | null;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  errors: number;
  misses: number;
}

export interface CaseResult {
  name: string;
  kind: CaseDef['kind'];
  style: string | null;
  workload: string | null;
  valueSize: number;
  keyCount: number;
  /** daemon processors / echo threads / 1 for SQLite */
  threads: number;
  runs: RunResult[];
  /** medians over the runs; errors and misses are totals */
  opsPerSec: number;
  opsPerSecPerThread: number;
  serverCpuUsPerOp: number | null;
  /** operations per second of server CPU time: throughput per core even when cores are shared */
  opsPerServerCpuSecond: number | null;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  errors: number;
  misses: number;
  baseline: string | null;
  ratio: number | null;
  target: number | null;
  meetsTarget: boolean | null;
}

export interface MemoryResult {
  processors: number;
  idleRssBytes: number;
  loadRssBytes: number;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  platform: string;
  totalMemoryBytes: number;
  loadAverageAtStart: number[];
  generatorThreads: number;
  /** true when the load generator's threads and the largest server's threads are more than the cores */
  sharedCores: boolean;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  options: { quick: boolean; runs: number; durationS: number; warmupS: number; only: string | null };
  machine: Machine;
  cases: CaseResult[];
  memory: MemoryResult[];
  /** three daemons on loopback: lag, failover, catch-up (absent when not selected) */
  cluster: { figures: ClusterFigure[]; settings: Record<string, unknown> } | null;
}

export function machineFacts(generatorThreads: number, maxServerThreads: number): Machine {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    totalMemoryBytes: totalmem(),
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    generatorThreads,
    sharedCores: generatorThreads + maxServerThreads > c.length,
  };
}

export function runResult(
  r: { opsPerSec: number; errors?: number; misses?: number; hist: Float64Array },
  serverCpuUsPerOp: number | null = null,
): RunResult {
  return {
    opsPerSec: r.opsPerSec,
    serverCpuUsPerOp,
    p50Us: percentile(r.hist, 0.5),
    p99Us: percentile(r.hist, 0.99),
    p999Us: percentile(r.hist, 0.999),
    errors: r.errors ?? 0,
    misses: r.misses ?? 0,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(c: CaseDef, runs: RunResult[]): CaseResult {
  const opsPerSec = median(runs.map((r) => r.opsPerSec));
  const cpu = runs.every((r) => r.serverCpuUsPerOp !== null) ? median(runs.map((r) => r.serverCpuUsPerOp!)) : null;
  return {
    name: c.name,
    kind: c.kind,
    style: c.style ?? null,
    workload: c.workload ?? (c.sqlite ? c.sqlite.toUpperCase() : null),
    valueSize: c.keys.valueSize,
    keyCount: c.keys.count,
    threads: c.threads,
    runs,
    opsPerSec,
    opsPerSecPerThread: opsPerSec / c.threads,
    serverCpuUsPerOp: cpu,
    opsPerServerCpuSecond: cpu ? 1_000_000 / cpu : null,
    p50Us: median(runs.map((r) => r.p50Us)),
    p99Us: median(runs.map((r) => r.p99Us)),
    p999Us: median(runs.map((r) => r.p999Us)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    misses: runs.reduce((n, r) => n + r.misses, 0),
    baseline: c.baseline ?? null,
    ratio: null,
    target: c.target ?? null,
    meetsTarget: null,
  };
}

/** Fills ratio and meetsTarget once every case (and so every baseline) has run. */
export function compareWithBaselines(results: CaseResult[]): void {
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const r of results) {
    const b = r.baseline ? byName.get(r.baseline) : undefined;
    if (!b || b.opsPerSec === 0) continue;
    r.ratio = r.opsPerSec / b.opsPerSec;
    if (r.target !== null) r.meetsTarget = r.ratio >= r.target;
  }
}

const fmtOps = (n: number) => (n >= 100_000 ? `${Math.round(n / 1000)}k` : n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));
const fmtUs = (us: number) => (us === 0 ? '-' : us < 1000 ? `${Math.round(us)}µs` : us < 1_000_000 ? `${(us / 1000).toFixed(2)}ms` : `${(us / 1e6).toFixed(2)}s`);
const fmtMiB = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The human-readable report: machine, case table (Markdown), memory. */
export function formatReport(r: BenchReport): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${fmtMiB(m.totalMemoryBytes)} RAM, Node ${m.node}, ${m.platform}; load average at start ${m.loadAverageAtStart.join(' ')}`,
  );
  out.push(
    `Run: ${r.options.quick ? 'quick, ' : ''}median of ${r.options.runs} runs of ${r.options.durationS} s (after ${r.options.warmupS} s warm-up) per case; load generator: ${m.generatorThreads} worker threads`,
  );
  if (m.sharedCores) {
    out.push(
      `Note: the load generator (${m.generatorThreads} threads) and the server share these ${m.cores} cores, so absolute ops/s are lower than with a separate client machine; the baselines run the same way, so ratios compare like with like, and ops/CPU-s counts only the server's own CPU time.`,
    );
  }
  const rows = r.cases.map((c) => [
    c.name,
    String(c.threads),
    fmtOps(c.opsPerSec),
    fmtOps(c.opsPerSecPerThread),
    c.opsPerServerCpuSecond === null ? '' : fmtOps(c.opsPerServerCpuSecond),
    fmtUs(c.p50Us),
    fmtUs(c.p99Us),
    fmtUs(c.p999Us),
    c.ratio === null ? '' : `${c.ratio.toFixed(2)}× ${c.baseline}`,
    c.target === null ? '' : `≥${c.target} ${c.meetsTarget === null ? '?' : c.meetsTarget ? '✓' : '✗'}`,
    c.errors > 0 ? `${c.errors} ⚠` : '0',
  ]);
  if (rows.length > 0) {
    out.push('');
    out.push(table(['case', 'threads', 'ops/s', 'ops/s/thread', 'ops/CPU-s', 'p50', 'p99', 'p99.9', 'ratio to baseline', 'target', 'errors'], rows));
  }
  if (r.memory.length > 0) {
    out.push('');
    out.push(table(['daemon processors', 'RSS idle', 'RSS under load (peak)'], r.memory.map((x) => [String(x.processors), fmtMiB(x.idleRssBytes), fmtMiB(x.loadRssBytes)])));
  }
  if (r.cluster && r.cluster.figures.length > 0) {
    out.push('');
    const fmt = (f: ClusterFigure, x: number | undefined) => (x === undefined ? '' : f.unit === 'ms' ? `${x.toFixed(1)} ms` : `${fmtOps(x)} ${f.unit}`);
    const fmtP99 = (f: ClusterFigure) => (f.p99 === undefined ? '' : `${f.p99.toFixed(1)} ms`);
    out.push(table(
      ['cluster (3 daemons, loopback, 1 processor each)', 'median (p50 for lag)', 'p99 (lag or request)', 'runs', 'samples', 'what is measured'],
      r.cluster.figures.map((f) => [f.name, fmt(f, f.median), fmtP99(f), f.runs.map((x) => fmt(f, x)).join(', '), String(f.samples), f.detail]),
    ));
  }
  out.push('');
  out.push('ops/CPU-s: operations per second of CPU time used by the server process (all threads, from /proc): throughput per core, even with the load generator on the same cores.');
  out.push('sqlite rows: ops/s = SELECTs/s or inserted rows/s; latency per SELECT or per committed transaction. kv PUT is compared with sqlite insert rows/s; kv GET/MIX with the echo server in the same client style and thread count.');
  return out.join('\n');
}

// `npm run bench [-- --quick] [--runs N] [--duration S] [--only REGEX] [--catch-up-keys N] [--out FILE] [--cpu-prof DIR]`
// Starts its own servers on free ports with a temporary data directory,
// runs the case matrix (bench/cases.ts), prints a table on stdout and a
// progress bar on stderr, writes JSON under bench/results/, and stops
// everything it started, also on Ctrl-C and on errors.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CONNECTIONS, GET_FRACTION, INSERT_BATCH_ROWS, PIPELINE_DEPTH, allCases, processorCounts, selectCases, type CaseDef } from './cases.ts';
import { runLoad } from './loadgen.ts';
import { keySets, preload, type KeySet } from './preload.ts';
import { compareWithBaselines, formatReport, machineFacts, runResult, summarize, type BenchReport, type CaseResult, type MemoryResult, type RunResult } from './report.ts';
import { HOST, cpuTimeUs, killAllNow, rssBytes, startDaemon, startEcho, stopAll, type Server } from './servers.ts';
import { runSqliteBaseline } from './sqlite-baseline.ts';
import { CLUSTER_CASES, runClusterBench } from './cluster.ts';
import { GATEWAY_CASES, formatGatewayTable, runGatewayBench } from './gateway.ts';

const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--duration S] [--only REGEX] [--catch-up-keys N] [--out FILE] [--cpu-prof DIR]
  --quick        short runs (about a minute); leaves out the value-size/key-space cases
  --runs N       runs per case, the median is reported (default 3)
  --duration S   measured seconds per run (default 5, quick 0.5)
  --only REGEX   only cases whose name matches (plus the baselines they compare with);
                 the cluster cases are "cluster lag idle", "cluster lag load", "cluster failover", "cluster catch-up"
  --catch-up-keys N  keys an empty daemon copies in "cluster catch-up" (default 200000, quick 20000)
  --out FILE     write the JSON here instead of bench/results/<time>.json and latest.json
  --cpu-prof DIR write V8 CPU profiles of the daemon's threads into DIR`;

function parseOptions() {
  let v;
  try {
    v = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        runs: { type: 'string' },
        duration: { type: 'string' },
        only: { type: 'string' },
        'catch-up-keys': { type: 'string' },
        out: { type: 'string' },
        'cpu-prof': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, fallback: number, min: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) {
      console.error(`bench: --${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const durationS = number('duration', v.duration, v.quick ? 0.5 : 5, 0.05);
  return {
    quick: v.quick!,
    runs: Math.round(number('runs', v.runs, 3, 1)),
    durationS,
    // warm-up: connections open, caches and JIT warm; half the run, at most 1 s
    warmupS: Math.min(1, durationS / 2),
    only: v.only,
    catchUpKeys: Math.round(number('catch-up-keys', v['catch-up-keys'], v.quick ? 20_000 : 200_000, 1)),
    out: v.out,
    cpuProfDir: v['cpu-prof'],
  };
}

/** Progress on stderr: a redrawn bar on a terminal, one line per case otherwise. */
function progressBar(total: number) {
  let done = 0;
  const tty = process.stderr.isTTY;
  return {
    step(label: string) {
      done++;
      if (tty) {
        const width = 30;
        const filled = Math.round((done / total) * width);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(100).slice(0, 120));
      }
    },
    line(text: string) {
      if (tty) process.stderr.write(`\r${' '.repeat(120)}\r`);
      process.stderr.write(`${text}\n`);
    },
    end() {
      if (tty) process.stderr.write(`\r${' '.repeat(120)}\r`);
    },
  };
}

const options = parseOptions();
const cores = cpus().length;
// enough threads to keep the server busy, few enough to leave it cores on small machines
const generatorThreads = Math.max(2, Math.min(4, Math.floor(cores / 2)));
let cases: CaseDef[];
try {
  cases = selectCases(allCases(cores), { quick: options.quick, only: options.only });
} catch (e) {
  console.error(`bench: --only: ${(e as Error).message}`);
  process.exit(2);
}
const clusterCases = CLUSTER_CASES.filter((name) => !options.only || new RegExp(options.only, 'i').test(name));
const gatewayCases = GATEWAY_CASES.map((c) => c.name).filter((name) => !options.only || new RegExp(options.only, 'i').test(name));
if (cases.length === 0 && clusterCases.length === 0 && gatewayCases.length === 0) {
  console.error(`bench: no case matches --only ${JSON.stringify(options.only)}; names look like "kv GET hot128 persistent p2", "echo pipelined t1", "sqlite insert hot128 batch50", "cluster failover"`);
  process.exit(2);
}

const dataDir = mkdtempSync(join(tmpdir(), 'kv-bench-'));
const storeFile = join(dataDir, 'bench.sqlite');
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, stopping the servers it started\n`);
    void stopAll().finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
process.on('exit', killAllNow);

const progress = progressBar((cases.length + clusterCases.length + 2 * gatewayCases.length) * options.runs);
const results: CaseResult[] = [];
const memory: MemoryResult[] = [];
const startedAt = new Date();

/** One measured run of a case against its server (none for the SQLite baselines). */
async function measureRun(c: CaseDef, server: Server | undefined, onSample?: () => void): Promise<RunResult> {
  if (c.kind === 'sqlite') {
    const r = await runSqliteBaseline({
      kind: c.sqlite!,
      file: c.sqlite === 'select' ? storeFile : join(dataDir, 'raw-insert.sqlite'),
      keyPrefix: c.keys.prefix,
      keyCount: c.keys.count,
      valueSize: c.keys.valueSize,
      batchRows: INSERT_BATCH_ROWS,
      warmupMs: options.warmupS * 1000,
      durationMs: options.durationS * 1000,
    });
    return runResult(r);
  }
  const style = c.style!;
  let cpuAtStart: number | undefined;
  let cpuAtEnd: number | undefined;
  const onWindow = (edge: 'start' | 'end') => {
    if (edge === 'start') cpuAtStart = cpuTimeUs(server!.pid);
    else cpuAtEnd = cpuTimeUs(server!.pid);
  };
  const r = await runLoad(
    {
      host: HOST,
      port: server!.port,
      style,
      connections: CONNECTIONS[style],
      depth: PIPELINE_DEPTH,
      getFraction: GET_FRACTION[c.workload ?? 'GET'],
      valueSize: c.keys.valueSize,
      keyPrefix: c.keys.prefix,
      keyCount: c.keys.count,
    },
    { threads: generatorThreads, warmupMs: options.warmupS * 1000, durationMs: options.durationS * 1000, onSample, onWindow },
  );
  const cpuUs = cpuAtEnd !== undefined && cpuAtStart !== undefined ? cpuAtEnd - cpuAtStart : undefined;
  return runResult(r, cpuUs !== undefined && r.ops > 0 ? cpuUs / r.ops : null);
}

/**
 * Measures the cases of one processor count. The echo server and the daemon
 * run side by side and the runs go round-robin over the cases, so a burst of
 * other load on the machine hits a case and its baseline alike.
 */
async function measureGroup(p: number, group: CaseDef[]): Promise<void> {
  const echo = group.some((c) => c.kind === 'echo') ? await startEcho(p) : undefined;
  let daemon: Server | undefined;
  try {
    daemon = group.some((c) => c.kind === 'kv') ? await startDaemon({ processors: p, dbFile: storeFile, dataDir, cpuProfDir: options.cpuProfDir }) : undefined;
    let mem: MemoryResult | undefined;
    if (daemon) {
      // let the threads settle before the idle sample
      await new Promise((r) => setTimeout(r, 300));
      mem = { processors: p, idleRssBytes: rssBytes(daemon.pid), loadRssBytes: 0 };
    }
    const sample = () => (mem!.loadRssBytes = Math.max(mem!.loadRssBytes, rssBytes(daemon!.pid)));
    const runs = new Map<CaseDef, RunResult[]>(group.map((c) => [c, []]));
    for (let i = 0; i < options.runs; i++) {
      for (const c of group) {
        progress.step(`${c.name} (run ${i + 1}/${options.runs})`);
        const server = c.kind === 'echo' ? echo : c.kind === 'kv' ? daemon : undefined;
        runs.get(c)!.push(await measureRun(c, server, c.kind === 'kv' ? sample : undefined));
      }
    }
    for (const [c, r] of runs) {
      const summary = summarize(c, r);
      results.push(summary);
      progress.line(`${c.name}: ${Math.round(summary.opsPerSec)} ops/s${summary.errors ? `, ${summary.errors} errors` : ''}`);
    }
    if (mem) memory.push(mem);
  } finally {
    await Promise.all([echo?.stop(), daemon?.stop()]);
  }
}

async function main(): Promise<void> {
  // the store file every daemon opens: hot sets, and the large key space if a case reads it
  const needed = new Set<KeySet>([keySets.hot128]);
  for (const c of cases) if (c.kind !== 'echo') needed.add(c.keys);
  const sets = [...needed].sort((a, b) => a.count - b.count);
  const rows = sets.reduce((n, s) => n + s.count, 0);
  progress.line(`preloading ${rows} keys into ${storeFile}`);
  preload(storeFile, sets);

  // the SQLite baselines (one thread) run with the first group
  const counts = processorCounts(cores);
  for (const [i, p] of counts.entries()) {
    const group = cases.filter((c) => (c.kind === 'sqlite' ? i === 0 : c.threads === p));
    if (group.length > 0) await measureGroup(p, group);
  }
  const cluster = clusterCases.length === 0
    ? null
    : await runClusterBench({
      cases: clusterCases,
      runs: options.runs,
      // lag runs need enough probes for a p99
      durationS: Math.max(options.durationS, 2),
      catchUpKeys: options.catchUpKeys,
      generatorThreads,
      dataDir,
      progress: (label) => progress.step(label),
    });
  const gateway = gatewayCases.length === 0
    ? []
    : await runGatewayBench({ cases: gatewayCases, runs: options.runs, durationS: options.durationS, warmupS: options.warmupS, processors: 2, generatorThreads, dataDir, progress: (label) => progress.step(label) });
  progress.end();

  // keep the matrix's order in the table
  const order = new Map(cases.map((c, i) => [c.name, i]));
  results.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  compareWithBaselines(results);
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: { quick: options.quick, runs: options.runs, durationS: options.durationS, warmupS: options.warmupS, only: options.only ?? null },
    machine: machineFacts(generatorThreads, Math.max(1, ...cases.map((c) => c.threads))),
    cases: results,
    memory,
    cluster,
  };
  console.log(formatReport(report));
  if (gateway.length > 0) console.log(`\n${formatGatewayTable(gateway)}`);
  const json = JSON.stringify({ ...report, gateway }, null, 2);
  if (options.out) {
    writeFileSync(options.out, json);
  } else {
    const dir = new URL('./results/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const name = `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
    writeFileSync(join(dir, name), json);
    writeFileSync(join(dir, 'latest.json'), json);
    progress.line(`results: bench/results/${name} (and bench/results/latest.json)`);
  }
}

try {
  await main();
} catch (e) {
  progress.end();
  console.error(`bench: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  rmSync(dataDir, { recursive: true, force: true });
}

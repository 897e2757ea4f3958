// The gateway next to direct access on the same daemon: GET and PUT through
// src/gateway (its own process, as pm2 runs it) and straight to the daemon's
// port, with the same load generator, runs alternating between the two so
// that other load on the machine hits both alike. Reports the median ops/s,
// p50/p99 and the ratio gateway/direct per case. `npm run bench` runs these
// cases too (names "gateway ..."); alone:
//   node bench/gateway.ts [--runs N] [--duration S] [--processors P] [--out FILE]

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts } from '../test/helpers/ports.ts';
import { CONNECTIONS, PIPELINE_DEPTH } from './cases.ts';
import { percentile } from './histogram.ts';
import { runLoad, type ClientStyle } from './loadgen.ts';
import { performance } from 'node:perf_hooks';
import { keySets, preload } from './preload.ts';
import { HOST, launch, stopAll, type Server } from './servers.ts';
import { KvClient } from '../src/client/index.ts';
import { newHistogram, record } from './histogram.ts';

const DAEMON_MAIN = new URL('../src/supervisor/main.ts', import.meta.url).pathname;
const GATEWAY_MAIN = new URL('../src/gateway/main.ts', import.meta.url).pathname;

interface GatewayCase {
  name: string;
  workload: 'GET' | 'PUT';
  /** a load-generator style, or 'kvclient': the TypeScript client (src/client), KV_CLIENT_CALLERS calls in flight on one KvClient */
  style: ClientStyle | 'kvclient';
}

/** Concurrent calls on the one KvClient of the 'kvclient' cases (its one pipelined connection carries them). */
const KV_CLIENT_CALLERS = 50;

export const GATEWAY_CASES: readonly GatewayCase[] = [
  { name: 'gateway GET hot128 persistent', workload: 'GET', style: 'persistent' },
  { name: 'gateway GET hot128 pipelined', workload: 'GET', style: 'pipelined' },
  { name: 'gateway GET hot128 oneshot', workload: 'GET', style: 'oneshot' },
  { name: 'gateway PUT hot128 persistent', workload: 'PUT', style: 'persistent' },
  { name: 'gateway GET hot128 KvClient', workload: 'GET', style: 'kvclient' },
  { name: 'gateway PUT hot128 KvClient', workload: 'PUT', style: 'kvclient' },
];

export interface GatewayRow {
  name: string;
  processors: number;
  directOpsPerSec: number;
  gatewayOpsPerSec: number;
  /** gateway / direct, medians of the runs */
  ratio: number;
  directP50Us: number;
  gatewayP50Us: number;
  directP99Us: number;
  gatewayP99Us: number;
  directRuns: number[];
  gatewayRuns: number[];
  errors: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface GatewayBenchOptions {
  cases: readonly string[];
  runs: number;
  durationS: number;
  warmupS: number;
  processors: number;
  generatorThreads: number;
  dataDir: string;
  progress?: (label: string) => void;
}

/** Starts one daemon and a gateway in front of it, and measures each case both ways. */
export async function runGatewayBench(o: GatewayBenchOptions): Promise<GatewayRow[]> {
  const dbFile = join(o.dataDir, 'gateway-bench.sqlite');
  preload(dbFile, [keySets.hot128]);
  const [port, peerPort, adminPort, gatewayPort] = await freePorts(4);
  const config = {
    daemons: [{ id: 'bench', host: HOST, peerPort, adminPort, groups: [{ port, dbFile, processors: o.processors }] }],
    durability: 'full',
    allowShutdown: false,
    setTcpMigrateReq: false,
    gateway: { port: gatewayPort },
  };
  const configFile = join(o.dataDir, 'gateway-bench.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const servers: Server[] = [];
  try {
    servers.push(await launch(DAEMON_MAIN, [], { KV_CONFIG: configFile, KV_DAEMON_ID: 'bench' }, [], 'daemon', port!));
    servers.push(await launch(GATEWAY_MAIN, [], { KV_CONFIG: configFile }, [], 'gateway', gatewayPort!));
    const rows: GatewayRow[] = [];
    for (const c of GATEWAY_CASES.filter((x) => o.cases.includes(x.name))) {
      const measured = { direct: [] as { ops: number; p50: number; p99: number }[], gateway: [] as { ops: number; p50: number; p99: number }[] };
      let errors = 0;
      for (let i = 0; i < o.runs; i++) {
        for (const via of ['direct', 'gateway'] as const) {
          o.progress?.(`${c.name} ${via} (run ${i + 1}/${o.runs})`);
          const target = via === 'direct' ? port! : gatewayPort!;
          const r = c.style === 'kvclient' ? await kvClientLoad(target, c.workload, o.warmupS * 1000, o.durationS * 1000) : await runLoad(
            {
              host: HOST,
              port: target,
              style: c.style,
              connections: CONNECTIONS[c.style],
              depth: PIPELINE_DEPTH,
              getFraction: c.workload === 'GET' ? 1 : 0,
              valueSize: keySets.hot128.valueSize,
              keyPrefix: keySets.hot128.prefix,
              keyCount: keySets.hot128.count,
            },
            { threads: o.generatorThreads, warmupMs: o.warmupS * 1000, durationMs: o.durationS * 1000 },
          );
          errors += r.errors;
          measured[via].push({ ops: r.opsPerSec, p50: percentile(r.hist, 0.5), p99: percentile(r.hist, 0.99) });
        }
      }
      const m = (via: 'direct' | 'gateway', f: 'ops' | 'p50' | 'p99') => median(measured[via].map((x) => x[f]));
      rows.push({
        name: c.name,
        processors: o.processors,
        directOpsPerSec: m('direct', 'ops'),
        gatewayOpsPerSec: m('gateway', 'ops'),
        ratio: m('gateway', 'ops') / m('direct', 'ops'),
        directP50Us: m('direct', 'p50'),
        gatewayP50Us: m('gateway', 'p50'),
        directP99Us: m('direct', 'p99'),
        gatewayP99Us: m('gateway', 'p99'),
        directRuns: measured.direct.map((x) => Math.round(x.ops)),
        gatewayRuns: measured.gateway.map((x) => Math.round(x.ops)),
        errors,
      });
    }
    return rows;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/**
 * The TypeScript client as an application uses it: one KvClient, calls in
 * flight from KV_CLIENT_CALLERS async loops, each call awaited. Runs in this
 * thread (the load generator's threads speak raw frames).
 */
async function kvClientLoad(port: number, workload: 'GET' | 'PUT', warmupMs: number, durationMs: number) {
  const client = new KvClient({ servers: [`${HOST}:${port}`], deadlineMs: 10_000 });
  const hist = newHistogram();
  const value = Buffer.alloc(keySets.hot128.valueSize, 'v');
  let measuring = false;
  let running = true;
  let ops = 0;
  let errors = 0;
  const loop = async () => {
    while (running) {
      const key = `${keySets.hot128.prefix}${Math.floor(Math.random() * keySets.hot128.count)}`;
      const t0 = performance.now();
      try {
        if (workload === 'GET') await client.get(key);
        else await client.put(key, value);
        if (measuring) {
          ops++;
          record(hist, (performance.now() - t0) * 1000);
        }
      } catch {
        if (measuring) errors++;
      }
    }
  };
  const loops = Array.from({ length: KV_CLIENT_CALLERS }, loop);
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  measuring = false;
  const elapsedS = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(loops);
  client.close();
  return { opsPerSec: ops / elapsedS, ops, errors, hist };
}

const fmtOps = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));
const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)}ms` : `${Math.round(us)}µs`);

export function formatGatewayTable(rows: readonly GatewayRow[]): string {
  const header = ['case (1 daemon, gateway in front)', 'processors', 'direct ops/s', 'gateway ops/s', 'ratio gateway/direct', 'p50 direct', 'p50 gateway', 'p99 direct', 'p99 gateway', 'errors'];
  const body = rows.map((r) => [
    r.name,
    String(r.processors),
    fmtOps(r.directOpsPerSec),
    fmtOps(r.gatewayOpsPerSec),
    `${r.ratio.toFixed(2)}×`,
    fmtUs(r.directP50Us),
    fmtUs(r.gatewayP50Us),
    fmtUs(r.directP99Us),
    fmtUs(r.gatewayP99Us),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: v } = parseArgs({
    options: { runs: { type: 'string' }, duration: { type: 'string' }, processors: { type: 'string' }, out: { type: 'string' }, only: { type: 'string' } },
  });
  const durationS = Number(v.duration ?? 5);
  const dataDir = mkdtempSync(join(tmpdir(), 'kv-bench-gw-'));
  const pattern = v.only ? new RegExp(v.only, 'i') : undefined;
  try {
    const rows = await runGatewayBench({
      cases: GATEWAY_CASES.map((c) => c.name).filter((n) => !pattern || pattern.test(n)),
      runs: Number(v.runs ?? 3),
      durationS,
      warmupS: Math.min(1, durationS / 2),
      processors: Number(v.processors ?? 2),
      generatorThreads: 2,
      dataDir,
      progress: (label) => process.stderr.write(`${label}\n`),
    });
    console.log(formatGatewayTable(rows));
    const out = v.out ?? join(new URL('./results/', import.meta.url).pathname, 'gateway-latest.json');
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, JSON.stringify({ finishedAt: new Date().toISOString(), rows }, null, 2));
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

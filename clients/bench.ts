// Client throughput on one daemon: the C library (clients/c/build/kvbench),
// the TypeScript client (src/client) and the Python module
// (clients/python/kvbench.py), GET and PUT, persistent connections, one
// request in flight per thread / connection, the same 1000-key set with
// 128-byte values. Starts its own daemon (durability full) on a free port
// with a temporary data directory and stops it by PID at the end.
//
//   make -C clients/c && node clients/bench.ts [--threads 1,4] [--seconds 5] [--runs 3] [--processors 2]
//
// Prints a table per case: the median ops/s of the runs, and the median CPU
// time the client process itself spent per call (user + system, every
// thread), which other load on the machine does not inflate the way it
// inflates ops/s.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KvClient } from '../src/client/index.ts';
import { HOST, startDaemon, stopAll } from '../bench/servers.ts';

const C_BENCH = new URL('./c/build/kvbench', import.meta.url).pathname;
const PY_BENCH = new URL('./python/kvbench.py', import.meta.url).pathname;
const KEYS = 1000;
const VALUE = Buffer.alloc(128, 'v');

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,4' },
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    processors: { type: 'string', default: '2' },
  },
});
const threadCounts = args.threads.split(',').map(Number);
const seconds = Number(args.seconds);
const runs = Number(args.runs);

interface Result {
  opsPerSecond: number;
  /** the client process's own CPU time (user + system) per call */
  cpuUsPerOp: number;
  failed: number;
}

function external(command: string, argv: string[]): Promise<Result> {
  return new Promise((resolve, reject) =>
    execFile(command, argv, { timeout: (seconds + 120) * 1000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${command} ${argv.join(' ')}: ${error.message}\n${stdout}${stderr}`));
      const r = JSON.parse(stdout.trim().split('\n').pop()!);
      resolve({ opsPerSecond: r.opsPerSecond, cpuUsPerOp: r.cpuUsPerOp, failed: r.failed });
    }),
  );
}

/**
 * The TypeScript client, `loops` calls in flight: either one KvClient per loop
 * (a connection each, like the C threads) or one KvClient shared (its single
 * connection pipelines the loops' requests).
 */
async function typescript(op: 'get' | 'put', loops: number, server: string, shared: boolean): Promise<Result> {
  const clients = Array.from({ length: shared ? 1 : loops }, () => new KvClient({ servers: [server] }));
  if (op === 'get') for (let i = 0; i < KEYS; i++) await clients[0]!.put(`bench-${i}`, VALUE);
  let ok = 0;
  let failed = 0;
  let stop = false;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: loops }, async (_x, index) => {
      const client = clients[shared ? 0 : index]!;
      let i = index * 7919;
      while (!stop) {
        const key = `bench-${i++ % KEYS}`;
        try {
          await (op === 'put' ? client.put(key, VALUE) : client.get(key));
          ok++;
        } catch {
          failed++;
        }
      }
    }).concat([new Promise<void>((r) => setTimeout(() => { stop = true; r(); }, seconds * 1000))]),
  );
  const elapsedS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  for (const c of clients) c.close();
  return { opsPerSecond: Math.round(ok / elapsedS), cpuUsPerOp: ok ? (cpu.user + cpu.system) / ok : 0, failed };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dataDir = mkdtempSync(join(tmpdir(), 'kv-client-bench-'));
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
try {
  const daemon = await startDaemon({ processors: Number(args.processors), dbFile: join(dataDir, 'bench.sqlite'), dataDir });
  const server = `${HOST}:${daemon.port}`;
  const cases: { name: string; run: (op: 'get' | 'put', n: number) => Promise<Result> }[] = [
    { name: 'C lib739kv (threads)', run: (op, n) => external(C_BENCH, [op, String(n), String(seconds), server]) },
    { name: 'TypeScript KvClient (a client per loop)', run: (op, n) => typescript(op, n, server, false) },
    { name: 'TypeScript KvClient (one client, pipelined)', run: (op, n) => typescript(op, n, server, true) },
    { name: 'Python kv739.py (threads)', run: (op, n) => external('python3', [PY_BENCH, op, String(n), String(seconds), server]) },
  ];
  console.log(`daemon: ${args.processors} processors, durability full; ${runs} runs × ${seconds} s per case, median ops/s`);
  console.log('| client | op | threads / loops | ops/s | client CPU µs/op | ops/s of the runs | failed |');
  console.log('|---|---|---|---|---|---|---|');
  for (const op of ['get', 'put'] as const) {
    for (const n of threadCounts) {
      for (const c of cases) {
        const results: Result[] = [];
        for (let r = 0; r < runs; r++) results.push(await c.run(op, n));
        const ops = results.map((x) => x.opsPerSecond);
        const failed = results.reduce((s, x) => s + x.failed, 0);
        const cpu = median(results.map((x) => x.cpuUsPerOp));
        console.log(`| ${c.name} | ${op.toUpperCase()} | ${n} | ${median(ops)} | ${cpu.toFixed(1)} | ${ops.join(', ')} | ${failed} |`);
      }
    }
  }
} finally {
  await stopAll();
  rmSync(dataDir, { recursive: true, force: true });
}

// `npm run bench:writepath [-- --quick] [--runs N] [--duration S] [--connections N] [--only REGEX] [--out FILE]`
//
// The write path against the strongest baselines, all driven by one closed-loop
// C load generator (bench/native/loadgen.c: one thread per connection, one
// request in flight each, built here with `cc`), each server idle while
// another is measured:
//   - the machine's ceiling: a C epoll echo of 4096-byte frames, under the C
//     generator and under the Node generator (bench/loadgen.ts), which shows
//     whether a generator, rather than the server, sets the figures;
//   - the plain Node echo (one thread, one write per frame): GET target;
//   - Redis without persistence and with `appendfsync always` (when
//     redis-server is on PATH): durable PUT target;
//   - the daemon (durability full) with 1 and 2 processors on one file, and
//     the default three-daemon deployment (2 processors each, a cluster).
// Prints the table, the targets and the ratios; writes JSON to
// bench/results/writepath-latest.json. Targets are printed, never asserted.

import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from './loadgen.ts';
import { keySets, preload } from './preload.ts';
import { HOST, killAllNow, startDaemon, startMember, startPlainEcho, startProgram, stopAll, type Server } from './servers.ts';
import { freePorts } from '../test/helpers/ports.ts';

const { values: v } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});
const runs = Number(v.runs ?? (v.quick ? 1 : 3));
const durationS = Number(v.duration ?? (v.quick ? 2 : 5));
const warmupS = Math.min(1, durationS / 2);
const connections = Number(v.connections ?? 32);
/** the p99 target is stated for this many persistent clients */
const P99_CLIENTS = 50;
const VALUE_BYTES = 128;
const KEYS = keySets.hot128;

const NATIVE = new URL('./native/', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'kv-writepath-'));
const bin = (name: string) => join(dataDir, name);
process.on('exit', killAllNow);

function build(): void {
  execFileSync('cc', ['-O2', '-pthread', '-o', bin('loadgen'), join(NATIVE, 'loadgen.c')]);
  execFileSync('cc', ['-O2', '-o', bin('echo'), join(NATIVE, 'echo.c')]);
}

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Measured {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  errors: number;
}

/** One run of the C generator against each port (connections spread over them); ops summed, latencies of the first. */
function cLoad(ports: number[], protocol: 'kv' | 'resp', op: 'get' | 'put', conns: number): Promise<Measured> {
  return Promise.all(
    ports.map(
      (port, i) =>
        new Promise<Measured & { failedConnections: number }>((resolve, reject) => {
          const share = Math.floor(conns / ports.length) + (i < conns % ports.length ? 1 : 0);
          const args = [HOST, String(port), protocol, op, String(share), String(warmupS), String(durationS), String(VALUE_BYTES), String(KEYS.count), KEYS.prefix];
          execFile(bin('loadgen'), args, { timeout: (warmupS + durationS + 30) * 1000 }, (e, stdout, stderr) => {
            if (e) return reject(new Error(`loadgen failed: ${e.message} ${stderr}`));
            resolve(JSON.parse(stdout));
          });
        }),
    ),
  ).then((rs) => {
    if (rs.some((r) => r.failedConnections > 0)) throw new Error('the load generator could not connect');
    return { opsPerSec: rs.reduce((n, r) => n + r.opsPerSec, 0), p50Us: rs[0].p50Us, p99Us: rs[0].p99Us, p999Us: rs[0].p999Us, errors: rs.reduce((n, r) => n + r.errors, 0) };
  });
}

async function nodeLoad(port: number, conns: number): Promise<Measured> {
  const threads = Math.max(2, Math.min(4, Math.floor(cpus().length / 2)));
  const r = await runLoad(
    { host: HOST, port, style: 'persistent', connections: conns, depth: 1, getFraction: 1, valueSize: VALUE_BYTES, keyPrefix: KEYS.prefix, keyCount: KEYS.count },
    { threads, warmupMs: warmupS * 1000, durationMs: durationS * 1000 },
  );
  // only its throughput matters here: it shows how far a Node generator can drive the fastest server
  return { opsPerSec: r.opsPerSec, p50Us: NaN, p99Us: NaN, p999Us: NaN, errors: r.errors };
}

interface Row {
  name: string;
  generator: 'C' | 'Node';
  connections: number;
  runs: Measured[];
  median: Measured;
}

const rows: Row[] = [];
const median = (xs: Measured[]): Measured => {
  const sorted = [...xs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor(sorted.length / 2)];
};

const only = v.only ? new RegExp(v.only, 'i') : undefined;
const wanted = (name: string) => !only || only.test(name);

async function measure(name: string, generator: 'C' | 'Node', conns: number, once: () => Promise<Measured>): Promise<Row | undefined> {
  if (!wanted(name)) return undefined;
  const rs: Measured[] = [];
  for (let i = 0; i < runs; i++) rs.push(await once());
  const row = { name, generator, connections: conns, runs: rs, median: median(rs) };
  rows.push(row);
  process.stderr.write(`${name} (${generator} generator, ${conns} connections): ${Math.round(row.median.opsPerSec)} ops/s\n`);
  return row;
}

async function withServer<T>(start: () => Promise<Server>, body: (s: Server) => Promise<T>, names: string[]): Promise<T | undefined> {
  if (!names.some(wanted)) return undefined;
  const s = await start();
  try {
    return await body(s);
  } finally {
    await s.stop();
  }
}

async function redis(appendfsyncAlways: boolean): Promise<Server> {
  const [port] = await freePorts(1);
  const dir = join(dataDir, `redis-${port}`);
  mkdirSync(dir);
  const persistence = appendfsyncAlways ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  return startProgram('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--dir', dir, '--daemonize', 'no', ...persistence], 'redis-server', port);
}

async function defaultDeployment(): Promise<Server[]> {
  const ports = await freePorts(9);
  const config = {
    daemons: [0, 1, 2].map((i) => ({
      id: `kv-${i}`,
      host: HOST,
      peerPort: ports[3 + i],
      adminPort: ports[6 + i],
      groups: [{ port: ports[i], dbFile: join(dataDir, `kv-${i}.sqlite`), processors: 2 }],
    })),
    durability: 'full',
    allowShutdown: false,
    setTcpMigrateReq: false,
    cluster: { secretFile: join(dataDir, 'cluster.secret') },
  };
  const file = join(dataDir, 'default-deployment.json');
  writeFileSync(file, JSON.stringify(config));
  return Promise.all([0, 1, 2].map((i) => startMember(file, `kv-${i}`, ports[i])));
}

async function main(): Promise<void> {
  build();
  const cEcho = async () => {
    const [port] = await freePorts(1);
    return startProgram(bin('echo'), [String(port)], 'C echo', port);
  };
  await withServer(cEcho, async (s) => {
    await measure('C epoll echo (the machine\'s ceiling)', 'C', connections, () => cLoad([s.port], 'kv', 'get', connections));
    await measure('C epoll echo (the machine\'s ceiling)', 'Node', connections, () => nodeLoad(s.port, connections));
  }, ['C epoll echo']);
  await withServer(startPlainEcho, (s) => measure('plain Node echo, one write per frame', 'C', connections, () => cLoad([s.port], 'kv', 'get', connections)), ['plain Node echo']);

  const file1 = join(dataDir, 'p1.sqlite');
  if (wanted('kv GET, 1 processor') || wanted('kv PUT, 1 processor')) preload(file1, [KEYS]);
  await withServer(
    () => startDaemon({ processors: 1, dbFile: file1, dataDir }),
    async (s) => {
      await measure('kv GET, 1 processor', 'C', connections, () => cLoad([s.port], 'kv', 'get', connections));
      await measure('kv PUT, 1 processor (full)', 'C', connections, () => cLoad([s.port], 'kv', 'put', connections));
      await measure(`kv PUT, 1 processor (full), ${P99_CLIENTS} clients`, 'C', P99_CLIENTS, () => cLoad([s.port], 'kv', 'put', P99_CLIENTS));
    },
    ['kv GET, 1 processor', 'kv PUT, 1 processor'],
  );
  const file2 = join(dataDir, 'p2.sqlite');
  if (wanted('kv PUT, 2 processors')) preload(file2, [KEYS]);
  await withServer(
    () => startDaemon({ processors: 2, dbFile: file2, dataDir }),
    (s) => measure('kv PUT, 2 processors on one file (full)', 'C', connections, () => cLoad([s.port], 'kv', 'put', connections)),
    ['kv PUT, 2 processors'],
  );
  const deployment = 'kv PUT, default deployment (3 daemons × 2 processors, cluster)';
  if (wanted(deployment)) {
    const members = await defaultDeployment();
    try {
      await measure(deployment, 'C', connections, () => cLoad(members.map((m) => m.port), 'kv', 'put', connections));
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  }
  const haveRedis = which('redis-server');
  if (haveRedis) {
    await withServer(
      () => redis(false),
      async (s) => {
        await measure('Redis, no persistence: GET', 'C', connections, () => cLoad([s.port], 'resp', 'get', connections));
        await measure('Redis, no persistence: SET', 'C', connections, () => cLoad([s.port], 'resp', 'put', connections));
      },
      ['Redis, no persistence'],
    );
    await withServer(
      () => redis(true),
      (s) => measure('Redis, appendfsync always: SET', 'C', connections, () => cLoad([s.port], 'resp', 'put', connections)),
      ['Redis, appendfsync always'],
    );
  }
  report(haveRedis);
}

function report(haveRedis: boolean): void {
  const find = (name: string, generator: 'C' | 'Node' = 'C') => rows.find((r) => r.name.startsWith(name) && r.generator === generator)?.median;
  const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));
  const ms = (us: number) => (Number.isFinite(us) ? `${(us / 1000).toFixed(2)} ms` : '');
  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; median of ${runs} × ${durationS} s (after ${warmupS} s warm-up), ${VALUE_BYTES}-byte values, ${KEYS.count} keys`,
    '',
    '| server | generator | connections | ops/s | p50 | p99 | p99.9 | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.generator} | ${r.connections} | ${k(r.median.opsPerSec)} | ${ms(r.median.p50Us)} | ${ms(r.median.p99Us)} | ${ms(r.median.p999Us)} | ${r.median.errors} |`),
  ];
  if (!haveRedis) lines.push('', 'redis-server is not on PATH: the Redis rows and the ratios to them are left out.');
  const cEcho = find('C epoll echo');
  const nodeGen = find('C epoll echo', 'Node');
  const plain = find('plain Node echo');
  const get1 = find('kv GET, 1 processor');
  const put1 = find('kv PUT, 1 processor (full)');
  const put1p99 = find(`kv PUT, 1 processor (full), ${P99_CLIENTS} clients`);
  const put2 = find('kv PUT, 2 processors');
  const redisAlways = find('Redis, appendfsync always');
  const ratio = (a?: Measured, b?: Measured) => (a && b ? a.opsPerSec / b.opsPerSec : undefined);
  const target = (what: string, value: number | undefined, goal: number, unit: '×' | 'ms', atMost = false) => {
    if (value === undefined) return `- ${what}: not measured`;
    const met = atMost ? value <= goal : value >= goal;
    const shown = unit === '×' ? `${value.toFixed(2)}×` : `${value.toFixed(2)} ms`;
    return `- ${what}: ${shown} (target ${atMost ? '≤' : '≥'} ${goal}${unit === '×' ? '×' : ' ms'}) ${met ? '✓' : '✗'}`;
  };
  lines.push(
    '',
    'Generator ceiling:',
    `- C generator against the C echo: ${cEcho ? k(cEcho.opsPerSec) : '?'} ops/s; Node generator against the same echo: ${nodeGen ? k(nodeGen.opsPerSec) : '?'} ops/s` +
      (cEcho && nodeGen ? ` (${(nodeGen.opsPerSec / cEcho.opsPerSec).toFixed(2)}× the C generator): ratios below use the C generator` : ''),
    '',
    'Targets:',
    target('durable PUT, 1 processor ÷ Redis appendfsync always SET', ratio(put1, redisAlways), 1.0, '×'),
    target('PUT, 2 processors on one file ÷ 1 processor', ratio(put2, put1), 1.0, '×'),
    target('GET, 1 processor ÷ plain Node echo', ratio(get1, plain), 0.9, '×'),
    target(`PUT p99 at ${P99_CLIENTS} persistent clients`, put1p99 ? put1p99.p99Us / 1000 : undefined, 5, 'ms', true),
    `- plain Node echo ÷ C echo: ${ratio(plain, cEcho)?.toFixed(2) ?? '?'}×; GET ÷ C echo: ${ratio(get1, cEcho)?.toFixed(2) ?? '?'}×`,
  );
  console.log(lines.join('\n'));
  const out = v.out ?? join(new URL('./results/', import.meta.url).pathname, 'writepath-latest.json');
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), runs, durationS, warmupS, connections, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rows }, null, 2));
  process.stderr.write(`results: ${out}\n`);
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  rmSync(dataDir, { recursive: true, force: true });
}

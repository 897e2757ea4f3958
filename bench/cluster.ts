// The cluster's figures: replication lag (idle and under load), failover time
// and the catch-up rate of an empty daemon, on three daemons on loopback
// (one processor each, durability full) started from a temporary config.
//
// Visibility is read straight from the followers' SQLite files (read-only,
// polled every millisecond): a GET on the client port would count a key
// fetched by the key-miss path as replicated.

import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KvClient } from '../src/client/index.ts';
import { parseConfig } from '../src/config/config.ts';
import { adminRequest } from '../src/shared/admin-client.ts';
import { freePorts } from '../test/helpers/ports.ts';
import { ConsistencyLevel, withConsistency } from '../src/protocol/index.ts';
import { percentile } from './histogram.ts';
import { runLoad } from './loadgen.ts';
import { preload } from './preload.ts';
import { HOST, startMember, type Server } from './servers.ts';

/** Throughput per consistency level: a closed loop of LEVEL_CONNECTIONS persistent connections on one daemon. */
const LEVEL_CASES = {
  'cluster GET one': { get: true, level: ConsistencyLevel.ONE },
  'cluster GET majority': { get: true, level: ConsistencyLevel.MAJORITY },
  'cluster PUT one': { get: false, level: ConsistencyLevel.ONE },
  'cluster PUT majority': { get: false, level: ConsistencyLevel.MAJORITY },
  'cluster PUT all': { get: false, level: ConsistencyLevel.ALL },
} as const;
type LevelCase = keyof typeof LEVEL_CASES;
const LEVEL_CONNECTIONS = 50;

export const CLUSTER_CASES = ['cluster lag idle', 'cluster lag load', 'cluster failover', 'cluster catch-up', ...(Object.keys(LEVEL_CASES) as LevelCase[])] as const;
export type ClusterCase = (typeof CLUSTER_CASES)[number];

export interface ClusterOptions {
  cases: ClusterCase[];
  runs: number;
  /** measured seconds per lag run */
  durationS: number;
  /** keys (128 B) in the daemon that refills the empty one */
  catchUpKeys: number;
  generatorThreads: number;
  dataDir: string;
  progress(label: string): void;
}

/** One figure, median over its runs. */
export interface ClusterFigure {
  name: ClusterCase;
  unit: 'ms' | 'keys/s' | 'ops/s';
  /** per run: the figure (lag: p50) */
  runs: number[];
  median: number;
  /** lag and levels: median over the runs of each run's p99 (ms) */
  p99?: number;
  samples: number;
  detail: string;
}

interface Member {
  id: string;
  port: number;
  adminPort: number;
  dbFile: string;
  server?: Server;
}

const PROBE_GAP_MS = 10;
const LOAD_CONNECTIONS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 5): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`cluster bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function runClusterBench(o: ClusterOptions): Promise<{ figures: ClusterFigure[]; settings: Record<string, unknown> }> {
  const dir = join(o.dataDir, 'cluster');
  const ports = await freePorts(9);
  const members: Member[] = [0, 1, 2].map((i) => ({
    id: `n${i}`,
    port: ports[i * 3],
    adminPort: ports[i * 3 + 2],
    dbFile: join(dir, `n${i}.sqlite`),
  }));
  const config = {
    daemons: members.map((m, i) => ({
      id: m.id,
      host: HOST,
      peerPort: ports[i * 3 + 1],
      adminPort: m.adminPort,
      groups: [{ port: m.port, dbFile: m.dbFile, processors: 1 }],
    })),
    durability: 'full',
    allowShutdown: false,
    faultInjection: false,
    setTcpMigrateReq: false,
  };
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'cluster.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  // the settings the daemons run with (defaults filled in), for the report
  const { secretFile: _secretFile, ...cluster } = parseConfig(config, dir).cluster;
  const env = { KV_CLUSTER_SECRET: randomBytes(32).toString('hex') };
  const start = async (m: Member) => (m.server = await startMember(configFile, m.id, m.port, env));

  // n0 holds the catch-up key space from the start; n1 fills from it while the others start
  const catchUpPrefix = 'C:';
  preload(members[0].dbFile, [{ prefix: catchUpPrefix, count: o.catchUpKeys, valueSize: 128 }]);
  const lastKey = `${catchUpPrefix}${o.catchUpKeys - 1}`;
  const readers = new Map<string, { db: Database.Database; select: Database.Statement<[string]> }>();
  const hasKey = (m: Member, key: string) => {
    let r = readers.get(m.id);
    if (!r) {
      const db = new Database(m.dbFile, { readonly: true, fileMustExist: true });
      readers.set(m.id, (r = { db, select: db.prepare<[string]>('SELECT 1 FROM data_store WHERE key = ? AND deleted = 0') }));
    }
    return r.select.get(key) !== undefined;
  };
  const closeReader = (m: Member) => {
    readers.get(m.id)?.db.close();
    readers.delete(m.id);
  };
  const clients = new Map(members.map((m) => [m.id, new KvClient({ servers: [`${HOST}:${m.port}`], deadlineMs: 5000 })]));
  const figures: ClusterFigure[] = [];
  const wanted = (c: ClusterCase) => o.cases.includes(c);

  const statusOf = async (m: Member) => (await adminRequest(m.adminPort, { op: 'status' }).catch(() => undefined))?.status?.cluster;
  const leader = () => until('a leader', async () => {
    for (const m of members) {
      if (!m.server) continue;
      const v = await statusOf(m);
      if (v?.role === 'leader') return { member: m, term: v.term as number };
    }
    return undefined;
  }, 30_000, 10);
  const caughtUp = (m: Member) => until(`${m.id} to hold every key`, () => (hasKey(m, lastKey) ? true : undefined), 600_000, 20);

  try {
    await Promise.all(members.map(start));
    await leader();
    for (const m of members.slice(1)) await caughtUp(m);

    for (const loaded of [false, true]) {
      const name: ClusterCase = loaded ? 'cluster lag load' : 'cluster lag idle';
      if (!wanted(name)) continue;
      const p50s: number[] = [];
      const p99s: number[] = [];
      let samples = 0;
      const loadOps: number[] = [];
      for (let run = 0; run < o.runs; run++) {
        o.progress(`${name} (run ${run + 1}/${o.runs})`);
        const lags: number[] = [];
        const probe = measureLag(clients.get('n0')!, members.slice(1), hasKey, `lag:${loaded}:${run}:`, o.durationS * 1000, lags);
        if (loaded) {
          const load = await runLoad(
            { host: HOST, port: members[0].port, style: 'persistent', connections: LOAD_CONNECTIONS, depth: 1, getFraction: 0.9, valueSize: 128, keyPrefix: catchUpPrefix, keyCount: o.catchUpKeys },
            { threads: o.generatorThreads, warmupMs: 0, durationMs: o.durationS * 1000 },
          );
          loadOps.push(load.opsPerSec);
        }
        await probe;
        p50s.push(quantile(lags, 0.5));
        p99s.push(quantile(lags, 0.99));
        samples += lags.length;
      }
      figures.push({
        name,
        unit: 'ms',
        runs: p50s,
        median: median(p50s),
        p99: median(p99s),
        samples,
        detail: loaded
          ? `PUT acked on n0 → visible in n1's and n2's files, while ${LOAD_CONNECTIONS} connections run a 90/10 GET/PUT mix on n0 (${Math.round(median(loadOps))} ops/s)`
          : `PUT acked on n0 → visible in n1's and n2's files, one probe every ${PROBE_GAP_MS} ms, no other load`,
      });
    }

    const levelCases = (Object.keys(LEVEL_CASES) as LevelCase[]).filter((c) => wanted(c));
    if (levelCases.length > 0) {
      const ops = new Map<LevelCase, number[]>(levelCases.map((c) => [c, []]));
      const p99 = new Map<LevelCase, number[]>(levelCases.map((c) => [c, []]));
      // runs interleave the levels, so a slow moment of the machine does not land on one level only
      for (let run = 0; run < o.runs; run++) {
        for (const c of levelCases) {
          o.progress(`${c} (run ${run + 1}/${o.runs})`);
          const { get, level } = LEVEL_CASES[c];
          const r = await runLoad(
            { host: HOST, port: members[0].port, style: 'persistent', connections: LEVEL_CONNECTIONS, depth: 1, getFraction: get ? 1 : 0, valueSize: 128, keyPrefix: catchUpPrefix, keyCount: o.catchUpKeys, flag: withConsistency(0, level) },
            { threads: o.generatorThreads, warmupMs: 500, durationMs: o.durationS * 1000 },
          );
          if (r.errors > 0) throw new Error(`cluster bench: ${c} had ${r.errors} errors`);
          ops.get(c)!.push(r.opsPerSec);
          p99.get(c)!.push(percentile(r.hist, 0.99) / 1000);
        }
      }
      for (const c of levelCases) {
        const base = median(ops.get(c.startsWith('cluster GET') ? 'cluster GET one' : 'cluster PUT one') ?? []);
        const m = median(ops.get(c)!);
        figures.push({
          name: c,
          unit: 'ops/s',
          runs: ops.get(c)!,
          median: m,
          p99: median(p99.get(c)!),
          samples: o.runs,
          detail: `${LEVEL_CONNECTIONS} persistent connections on n0, 128 B values${Number.isNaN(base) || c.endsWith(' one') ? '' : `; ${(m / base).toFixed(2)}× level ONE in the same run`}`,
        });
      }
    }

    if (wanted('cluster failover')) {
      const times: number[] = [];
      for (let run = 0; run < o.runs; run++) {
        o.progress(`cluster failover (run ${run + 1}/${o.runs})`);
        const old = await leader();
        const survivors = members.filter((m) => m !== old.member);
        const killedAt = performance.now();
        await old.member.server!.kill();
        old.member.server = undefined;
        const next = await until('a new leader', async () => {
          for (const m of survivors) {
            const v = await statusOf(m);
            if (v?.role === 'leader' && v.term > old.term) return m;
          }
          return undefined;
        }, 30_000, 2);
        await clients.get(next.id)!.put(`failover:${run}`, Buffer.from('1'));
        times.push(performance.now() - killedAt);
        await start(old.member);
        await until(`${old.member.id} to follow the new leader`, async () => ((await statusOf(old.member))?.leaderId ? true : undefined), 30_000, 20);
      }
      const { electionTimeoutMinMs, electionTimeoutMaxMs } = cluster;
      figures.push({
        name: 'cluster failover',
        unit: 'ms',
        runs: times,
        median: median(times),
        samples: times.length,
        detail: `leader kill -9 → a survivor is leader of a newer term and has acknowledged a PUT (election timeout ${electionTimeoutMinMs}–${electionTimeoutMaxMs} ms)`,
      });
    }

    if (wanted('cluster catch-up')) {
      const rates: number[] = [];
      const empty = members[2];
      for (let run = 0; run < o.runs; run++) {
        o.progress(`cluster catch-up (run ${run + 1}/${o.runs})`);
        await empty.server!.kill();
        empty.server = undefined;
        closeReader(empty);
        for (const suffix of ['', '-wal', '-shm']) rmSync(empty.dbFile + suffix, { force: true });
        await start(empty);
        const readyAt = performance.now();
        await caughtUp(empty);
        rates.push(o.catchUpKeys / ((performance.now() - readyAt) / 1000));
      }
      figures.push({
        name: 'cluster catch-up',
        unit: 'keys/s',
        runs: rates,
        median: median(rates),
        samples: rates.length,
        detail: `a daemon restarted with its data file deleted, from ready to holding all ${o.catchUpKeys} keys (128 B) of its two peers`,
      });
    }
    return { figures, settings: { ...cluster } };
  } finally {
    for (const c of clients.values()) c.close();
    for (const m of members) closeReader(m);
    await Promise.all(members.map((m) => m.server?.stop()));
  }
}

/** PUT a fresh key on the writer every PROBE_GAP_MS and time until each follower's file has it. */
async function measureLag(writer: KvClient, followers: Member[], hasKey: (m: Member, key: string) => boolean, prefix: string, durationMs: number, lags: number[]): Promise<void> {
  const end = performance.now() + durationMs;
  for (let i = 0; performance.now() < end; i++) {
    const key = `${prefix}${i}`;
    await writer.put(key, Buffer.from('x'));
    const ackedAt = performance.now();
    const pending = new Set(followers);
    while (pending.size > 0) {
      for (const m of pending) {
        if (hasKey(m, key)) {
          lags.push(performance.now() - ackedAt);
          pending.delete(m);
        }
      }
      if (pending.size > 0) await sleep(1);
      if (performance.now() - ackedAt > 30_000) throw new Error(`cluster bench: ${key} did not reach ${[...pending].map((m) => m.id).join(', ')} in 30 s`);
    }
    await sleep(PROBE_GAP_MS);
  }
}

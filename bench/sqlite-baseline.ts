// The SQLite baseline: raw better-sqlite3 in-process, in its own worker
// thread, with no server around it. Point SELECT by primary key (ops/s) and
// batched INSERT with synchronous=FULL in WAL mode (rows/s), the most the
// daemon could get out of SQLite for a GET or a durable PUT.

import Database from 'better-sqlite3';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { newHistogram, record } from './histogram.ts';

export interface SqliteBaselineSpec {
  kind: 'select' | 'insert';
  /** select: a preloaded store file; insert: a new file to create */
  file: string;
  keyPrefix: string;
  keyCount: number;
  valueSize: number;
  /** insert: rows per transaction (one fsync each) */
  batchRows: number;
  warmupMs: number;
  durationMs: number;
}

export interface SqliteBaselineResult {
  /** selects/s or inserted rows/s */
  opsPerSec: number;
  ops: number;
  /** per SELECT, or per committed transaction */
  hist: Float64Array;
}

function measure(spec: SqliteBaselineSpec): SqliteBaselineResult {
  const db = new Database(spec.file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const key = () => spec.keyPrefix + Math.floor(Math.random() * spec.keyCount);
    let step: () => number;
    if (spec.kind === 'select') {
      const select = db.prepare('SELECT value, timestamp FROM data_store WHERE key = ?');
      step = () => (select.get(key()) ? 1 : 0);
    } else {
      db.exec('CREATE TABLE IF NOT EXISTS raw_insert (key TEXT PRIMARY KEY, value BLOB, timestamp INTEGER)');
      const insert = db.prepare('INSERT OR REPLACE INTO raw_insert(key, value, timestamp) VALUES (?, ?, ?)');
      const value = Buffer.alloc(spec.valueSize, 'v');
      const batch = db.transaction(() => {
        for (let i = 0; i < spec.batchRows; i++) insert.run(key(), value, Date.now());
      });
      step = () => {
        batch();
        return spec.batchRows;
      };
    }
    const hist = newHistogram();
    const warmEnd = performance.now() + spec.warmupMs;
    while (performance.now() < warmEnd) step();
    let ops = 0;
    const start = performance.now();
    const end = start + spec.durationMs;
    let now = start;
    while (now < end) {
      ops += step();
      const after = performance.now();
      record(hist, (after - now) * 1000);
      now = after;
    }
    return { opsPerSec: ops / ((now - start) / 1000), ops, hist };
  } finally {
    db.close();
  }
}

/** Runs one baseline measurement in a fresh worker thread. */
export function runSqliteBaseline(spec: SqliteBaselineSpec): Promise<SqliteBaselineResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: spec });
    w.once('message', (r: SqliteBaselineResult) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`SQLite baseline thread exited with code ${code}`)));
  });
}

if (!isMainThread && workerData?.kind) parentPort!.postMessage(measure(workerData as SqliteBaselineSpec));

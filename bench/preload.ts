// Fills a store file before the daemon starts: the hot key sets and the
// large key space, written straight into SQLite (one big transaction per
// chunk, no fsync), in the daemon's own schema (Store.open creates it).

import Database from 'better-sqlite3';
import { Store } from '../src/store/store.ts';
import { fnv1a } from '../src/shared/key-hash.ts';

export interface KeySet {
  prefix: string;
  count: number;
  valueSize: number;
}

/** Keys are `prefix + i`; the workloads pick from the same names. */
export const keySets = {
  hot128: { prefix: 'h128:', count: 1000, valueSize: 128 },
  hot2048: { prefix: 'h2048:', count: 1000, valueSize: 2048 },
  large128: { prefix: 'L:', count: 1_000_000, valueSize: 128 },
} as const satisfies Record<string, KeySet>;

const ROWS_PER_TRANSACTION = 50_000;

/** Writes every key of `sets` into `file` (created with the daemon's schema). */
export function preload(file: string, sets: KeySet[], onProgress?: (done: number, total: number) => void): void {
  Store.open(file, { durability: 'normal' }).close();
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    const insert = db.prepare('INSERT OR REPLACE INTO data_store(key, value, timestamp, origin, deleted, seq, khash) VALUES (?, ?, ?, 0, 0, ?, ?)');
    const total = sets.reduce((n, s) => n + s.count, 0);
    // timestamps in the past, increasing; the daemon's clock starts above the highest
    let ts = BigInt(Date.now() - 86_400_000) * 1000n;
    let seq = 0n;
    let done = 0;
    for (const set of sets) {
      const value = Buffer.alloc(set.valueSize, 'v');
      for (let from = 0; from < set.count; from += ROWS_PER_TRANSACTION) {
        const to = Math.min(set.count, from + ROWS_PER_TRANSACTION);
        db.transaction(() => {
          for (let i = from; i < to; i++) insert.run(set.prefix + i, value, ++ts, ++seq, fnv1a(set.prefix + i));
        })();
        done += to - from;
        onProgress?.(done, total);
      }
    }
    db.prepare("UPDATE meta SET value = ? WHERE name = 'seq'").run(seq);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

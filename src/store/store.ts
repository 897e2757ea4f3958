// One SQLite file of key/value rows (better-sqlite3): schema, prepared
// statements and the write transaction used for group commit. Synchronous by
// design. Each file has one writing connection (the group's writer thread,
// src/writer); processors and the cluster member open it for reads.

import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Durability } from '../config/config.ts';
import { fnv1a } from '../shared/key-hash.ts';

export interface Versioned {
  value: Buffer;
  /** microseconds since the epoch (the daemon's hybrid logical clock) */
  timestamp: bigint;
}

/** One row as replication sees it: a live value or a tombstone (value null), with its version. */
export interface Change {
  key: string;
  value: Buffer | null;
  timestamp: bigint;
  /** index of the daemon that made this version (tie-break of equal timestamps) */
  origin: number;
  /** position in this file's change stream */
  seq: bigint;
}

/** Last-writer-wins: is version (ts, origin) newer than (oldTs, oldOrigin)? */
export function isNewer(ts: bigint, origin: number, oldTs: bigint, oldOrigin: number): boolean {
  return ts > oldTs || (ts === oldTs && origin > oldOrigin);
}

export interface StoreOptions {
  durability: Durability;
  /** 0 = no cap; otherwise a write transaction fails while the file and its WAL together hold this many bytes or more */
  maxStoreBytes?: number;
  /** how long a writer waits for another connection's write lock */
  busyTimeoutMs?: number;
  /** the daemon id written as `origin` of local writes */
  origin?: number;
  /**
   * Keep up to this many recently read keys in memory (0: none). The caller
   * must tell the cache which keys other connections changed (`invalidate`)
   * before it serves a read that must see those changes.
   */
  readCacheEntries?: number;
  /**
   * A DEL leaves a tombstone (a deleted row with its version) that replicas
   * need so the delete wins everywhere; the cluster purges them once every
   * daemon has them. False for a lone daemon: a DEL removes the row, so
   * deletes never pile up. Default true.
   */
  keepTombstones?: boolean;
  /** the stream id a new file gets (default: random); deterministic simulations set it */
  newStreamId?: bigint;
  /** after each committed write transaction: how many writes it held and how long COMMIT (the fsync in "full") took */
  onCommit?: (writes: number, commitSeconds: number) => void;
}

/** A store failure naming the file; `cause` keeps SQLite's error (with its code). */
export class StoreError extends Error {
  readonly file: string;
  readonly sqliteCode: string | undefined;
  constructor(file: string, what: string, cause?: unknown) {
    const code = (cause as { code?: string } | undefined)?.code;
    super(`${what} (${file})${cause ? `: ${(cause as Error).message}` : ''}`, { cause });
    this.name = 'StoreError';
    this.file = file;
    this.sqliteCode = code;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS data_store (
  key TEXT PRIMARY KEY,
  value BLOB,
  timestamp INTEGER NOT NULL,
  origin INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL DEFAULT 0,
  khash INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS peer_cursor (peer TEXT PRIMARY KEY, cursor TEXT NOT NULL);
INSERT OR IGNORE INTO meta(name, value) VALUES ('seq', 0);
INSERT OR IGNORE INTO meta(name, value) VALUES ('served_floor', 0);
`;

/** After the tables (and the khash upgrade of an older file). */
const INDEXES = `
CREATE INDEX IF NOT EXISTS data_store_seq ON data_store(seq);
CREATE INDEX IF NOT EXISTS data_store_live_ts ON data_store(timestamp) WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS data_store_khash ON data_store(khash, key);
CREATE INDEX IF NOT EXISTS data_store_tombstones ON data_store(seq) WHERE deleted = 1;
`;

/**
 * The stream's head must never go back below a seq a peer may have read:
 * peers resume after their cursor, so writes that reused those seqs would
 * never reach them. With durability normal a power loss rolls back the last
 * commits, head included; the served floor (durable before any change above
 * it is served, see raiseServedFloor) is above every seq ever served, so the
 * head jumps to it at open and new writes are numbered past anything served.
 */
function skipServedSeqs(db: Database.Database): void {
  const value = (name: string) => (db.prepare('SELECT value FROM meta WHERE name = ?').safeIntegers(true).get(name) as { value: bigint }).value;
  if (value('seq') >= value('served_floor')) return;
  db.transaction(() => db.prepare("UPDATE meta SET value = max(value, (SELECT value FROM meta WHERE name = 'served_floor')) WHERE name = 'seq'").run()).immediate();
}

/** A file from before the key-hash column gets it, filled in one transaction. */
function addKeyHash(db: Database.Database): void {
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('data_store');
  if (columns.includes('khash')) return;
  db.function('kv_fnv1a', { deterministic: true }, (key: unknown) => fnv1a(String(key)));
  db.transaction(() => {
    db.exec('ALTER TABLE data_store ADD COLUMN khash INTEGER NOT NULL DEFAULT 0');
    db.exec('UPDATE data_store SET khash = kv_fnv1a(key)');
  }).immediate();
}

interface Row {
  value: Buffer | null;
  timestamp: bigint;
  deleted: bigint;
  origin: bigint;
}

interface ChangeRow {
  key: string;
  value: Buffer | null;
  timestamp: bigint;
  origin: bigint;
  deleted: bigint;
  seq: bigint;
}

const toChange = (r: ChangeRow): Change => ({
  key: r.key,
  value: r.deleted !== 0n ? null : (r.value ?? Buffer.alloc(0)),
  timestamp: r.timestamp,
  origin: Number(r.origin),
  seq: r.seq,
});

/** Read-cache mark of a key that has no row at all (as opposed to a tombstone). */
const UNSEEN = Symbol('unseen');

export class Store {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly origin: bigint;
  private readonly selectRow: Database.Statement<[string], Row>;
  private readonly upsert: Database.Statement<[string, Buffer | null, bigint, bigint, number, bigint, number]>;
  private readonly selectTs: Database.Statement<[string], { timestamp: bigint }>;
  private readonly selectLastTs: Database.Statement<[], { ts: bigint | null }>;
  private readonly selectFirstTs: Database.Statement<[], { ts: bigint | null }>;
  private readonly selectSeq: Database.Statement<[], { value: bigint }>;
  private readonly updateSeq: Database.Statement<[bigint]>;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly selectChanges: Database.Statement<[bigint, number], ChangeRow>;
  private readonly selectAll: Database.Statement<[], ChangeRow>;
  private readonly deleteTombstones: Database.Statement<[bigint, bigint]>;
  private readonly selectChange: Database.Statement<[string], ChangeRow>;
  private readonly selectHashRange: Database.Statement<[number, string, number, number], ChangeRow>;
  private readonly countAfter: Database.Statement<[bigint], { n: number }>;
  private readonly selectCursor: Database.Statement<[string], { cursor: string }>;
  private readonly upsertCursor: Database.Statement<[string, string]>;
  /** identity of this file's change stream; a recreated file gets a new one */
  readonly streamId: bigint;
  /** next change sequence number, valid only inside a write transaction */
  private seq = 0n;
  /** writes (put, del, applied remote rows) of the open write transaction */
  private writesInTransaction = 0;
  private readonly onCommit: StoreOptions['onCommit'];

  private readonly durability: Durability;
  private readonly keepTombstones: boolean;
  private readonly deleteRow: Database.Statement<[string]>;
  /** key → its live value, null when deleted (a tombstone), UNSEEN when it has no row; valid for `cachedDataVersion` */
  private readonly cache: Map<string, Versioned | null | typeof UNSEEN> | undefined;
  private readonly cacheLimit: number;
  private readonly maxStoreBytes: number;
  private readonly countTombstones: Database.Statement<[bigint], { n: number }>;
  /** the seq of the newest change after the last commit of this connection */
  committedSeq = 0n;

  private constructor(file: string, db: Database.Database, origin: number, options: StoreOptions, created: boolean) {
    this.file = file;
    this.db = db;
    this.origin = BigInt(origin);
    this.maxStoreBytes = options.maxStoreBytes ?? 0;
    this.durability = options.durability;
    this.keepTombstones = options.keepTombstones ?? true;
    this.onCommit = options.onCommit;
    this.deleteRow = db.prepare('DELETE FROM data_store WHERE key = ?');
    this.cacheLimit = options.readCacheEntries ?? 0;
    this.cache = this.cacheLimit > 0 ? new Map() : undefined;
    this.countTombstones = db.prepare<[bigint], { n: number }>('SELECT count(*) AS n FROM data_store WHERE deleted = 1 AND seq <= ?');
    this.selectRow = db.prepare<[string], Row>('SELECT value, timestamp, deleted, origin FROM data_store WHERE key = ?');
    this.upsert = db.prepare(
      `INSERT INTO data_store(key, value, timestamp, origin, deleted, seq, khash) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp,
         origin = excluded.origin, deleted = excluded.deleted, seq = excluded.seq`,
    );
    this.selectTs = db.prepare<[string], { timestamp: bigint }>('SELECT timestamp FROM data_store WHERE key = ? AND deleted = 0');
    this.selectLastTs = db.prepare<[], { ts: bigint | null }>('SELECT max(timestamp) AS ts FROM data_store WHERE deleted = 0');
    this.selectFirstTs = db.prepare<[], { ts: bigint | null }>('SELECT min(timestamp) AS ts FROM data_store WHERE deleted = 0');
    this.selectSeq = db.prepare<[], { value: bigint }>("SELECT value FROM meta WHERE name = 'seq'");
    this.updateSeq = db.prepare("UPDATE meta SET value = ? WHERE name = 'seq'");
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.selectChanges = db.prepare<[bigint, number], ChangeRow>(
      'SELECT key, value, timestamp, origin, deleted, seq FROM data_store WHERE seq > ? ORDER BY seq LIMIT ?',
    );
    this.selectAll = db.prepare<[], ChangeRow>('SELECT key, value, timestamp, origin, deleted, seq FROM data_store');
    this.deleteTombstones = db.prepare('DELETE FROM data_store WHERE deleted = 1 AND seq <= ? AND timestamp < ?');
    this.selectChange = db.prepare<[string], ChangeRow>('SELECT key, value, timestamp, origin, deleted, seq FROM data_store WHERE key = ?');
    // (khash, key) after the given pair and below the range's end, in index order
    this.selectHashRange = db.prepare<[number, string, number, number], ChangeRow>(
      'SELECT key, value, timestamp, origin, deleted, seq FROM data_store WHERE (khash, key) > (?, ?) AND khash < ? ORDER BY khash, key LIMIT ?',
    );
    this.countAfter = db.prepare<[bigint], { n: number }>('SELECT count(*) AS n FROM data_store WHERE seq > ?');
    this.selectCursor = db.prepare<[string], { cursor: string }>('SELECT cursor FROM peer_cursor WHERE peer = ?');
    this.upsertCursor = db.prepare('INSERT INTO peer_cursor(peer, cursor) VALUES (?, ?) ON CONFLICT(peer) DO UPDATE SET cursor = excluded.cursor');
    for (const s of [this.selectRow, this.selectTs, this.selectLastTs, this.selectFirstTs, this.selectSeq, this.selectChanges, this.selectAll, this.selectChange, this.selectHashRange]) {
      s.safeIntegers(true);
    }
    // a new file may be standing in for one that was lost: not synced until the cluster says so (files from before this flag are)
    db.prepare("INSERT OR IGNORE INTO meta(name, value) VALUES ('synced', ?)").run(created ? 0 : 1);
    db.prepare("INSERT OR IGNORE INTO meta(name, value) VALUES ('stream', ?)").run(options.newStreamId ?? randomBytes(8).readBigInt64BE() & 0x3fffffffffffffffn);
    this.streamId = (db.prepare("SELECT value FROM meta WHERE name = 'stream'").safeIntegers(true).get() as { value: bigint }).value;
  }

  /** Opens (creating if needed) the store; throws StoreError naming the file on any problem. */
  static open(file: string, options: StoreOptions): Store {
    const dir = dirname(file);
    if (!existsSync(dir)) throw new StoreError(file, `directory ${dir} does not exist`);
    let db: Database.Database | undefined;
    const created = !existsSync(file);
    try {
      db = new Database(file, { timeout: options.busyTimeoutMs ?? 5_000 });
      db.pragma('journal_mode = WAL');
      // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
      // NORMAL: fsync only at checkpoints; survives a process crash, may lose the last commits on power loss.
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      if (options.maxStoreBytes) {
        const pageSize = Number(db.pragma('page_size', { simple: true }));
        db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxStoreBytes / pageSize))}`);
        // a checkpoint gives the WAL's space back instead of leaving the file at its largest size
        db.pragma(`journal_size_limit = ${Math.floor(options.maxStoreBytes / 4)}`);
      }
      db.exec(SCHEMA);
      addKeyHash(db);
      db.exec(INDEXES);
      skipServedSeqs(db);
      db.prepare('SELECT count(*) FROM data_store WHERE rowid = 1').get();
      return new Store(file, db, options.origin ?? 0, options, created);
    } catch (e) {
      db?.close();
      if (e instanceof StoreError) throw e;
      const code = (e as { code?: string }).code;
      const what =
        code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT'
          ? 'file is not a valid SQLite database (corrupt?)'
          : code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN'
            ? 'cannot open the file for writing'
            : code === 'SQLITE_FULL'
              ? 'disk is full'
              : 'cannot open the store';
      throw new StoreError(file, what, e);
    }
  }

  /** Another connection (the writer) changed these keys: their cached values go. */
  invalidate(keys: Iterable<string>): void {
    if (!this.cache) return;
    for (const k of keys) this.cache.delete(k);
  }

  /** Drops the whole read cache (the changes made by others are not known). */
  clearCache(): void {
    this.cache?.clear();
  }

  get(key: string): Versioned | undefined {
    return this.read(key) ?? undefined;
  }

  /**
   * The live value of `key`; null when the key is deleted here (a
   * tombstone: an answer, nothing to fetch); undefined when this store has
   * no row for it (in a cluster: not received yet).
   */
  read(key: string): Versioned | null | undefined {
    const cached = this.cache?.get(key);
    if (cached !== undefined) return cached === UNSEEN ? undefined : cached;
    const row = this.selectRow.get(key);
    const found = !row ? undefined : row.deleted !== 0n ? null : { value: row.value ?? Buffer.alloc(0), timestamp: row.timestamp };
    if (this.cache) {
      if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, found === undefined ? UNSEEN : found);
    }
    return found;
  }

  getTimestamp(key: string): bigint | undefined {
    return this.selectTs.get(key)?.timestamp;
  }

  lastTimestamp(): bigint | undefined {
    return this.selectLastTs.get()?.ts ?? undefined;
  }

  firstTimestamp(): bigint | undefined {
    return this.selectFirstTs.get()?.ts ?? undefined;
  }

  /** Highest timestamp of any row, tombstones included: the clock must start above it. */
  maxTimestamp(): bigint {
    const row = this.db.prepare('SELECT max(timestamp) AS ts FROM data_store').safeIntegers(true).get() as { ts: bigint | null };
    return row.ts ?? 0n;
  }

  /**
   * Runs `body` in one BEGIN IMMEDIATE transaction and commits (with fsync in
   * durability "full"). If anything throws, everything is rolled back and the
   * error is rethrown as a StoreError: nothing of the batch is applied. With
   * `maxStoreBytes`, a transaction is refused while the file and its WAL hold
   * that much (after trying a checkpoint): the WAL can grow far past the main
   * file while readers hold old snapshots, so capping the main file alone
   * does not bound the disk used.
   */
  writeBatch<T>(body: () => T): T {
    if (this.maxStoreBytes > 0 && this.sizeBytes() >= this.maxStoreBytes) {
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // busy or failing: the size check below decides
      }
      if (this.sizeBytes() >= this.maxStoreBytes) {
        throw new StoreError(this.file, `store is full: the file and its WAL hold ${this.sizeBytes()} bytes, the cap (maxStoreBytes) is ${this.maxStoreBytes}`);
      }
    }
    try {
      this.begin.run();
    } catch (e) {
      throw new StoreError(this.file, 'cannot start a write transaction', e);
    }
    try {
      this.seq = this.selectSeq.get()!.value;
      this.writesInTransaction = 0;
      const result = body();
      this.updateSeq.run(this.seq);
      const commitStartMs = performance.now();
      this.commit.run();
      this.committedSeq = this.seq;
      this.onCommit?.(this.writesInTransaction, (performance.now() - commitStartMs) / 1000);
      return result;
    } catch (e) {
      if (this.db.inTransaction) this.rollback.run();
      // reads inside the transaction may have cached rows that were just rolled back
      this.cache?.clear();
      throw e instanceof StoreError ? e : new StoreError(this.file, 'write failed and was rolled back', e);
    }
  }

  /** Inside writeBatch: stores `value` under a timestamp from `stamp(old)`, returns the old value. */
  put(key: string, value: Buffer, stamp: (oldTimestamp: bigint) => bigint): Versioned | undefined {
    return this.write(key, value, stamp);
  }

  /**
   * Inside writeBatch: replaces the key by a tombstone, returns the old value.
   * A key this store has not seen gets a tombstone too: the delete must win
   * over an older version of it that arrives later from a peer. Without
   * `keepTombstones` the row is removed instead.
   */
  del(key: string, stamp: (oldTimestamp: bigint) => bigint): Versioned | undefined {
    if (this.keepTombstones) return this.write(key, null, stamp);
    this.writesInTransaction++;
    const old = this.get(key);
    this.cache?.delete(key);
    this.deleteRow.run(key);
    return old;
  }

  /** Inside writeBatch: the seq given to the latest write of this transaction. */
  get currentSeq(): bigint {
    return this.seq;
  }

  private write(key: string, value: Buffer | null, stamp: (oldTimestamp: bigint) => bigint): Versioned | undefined {
    const row = this.selectRow.get(key);
    const old = row && row.deleted === 0n ? { value: row.value ?? Buffer.alloc(0), timestamp: row.timestamp } : undefined;
    this.cache?.delete(key);
    this.seq += 1n;
    this.writesInTransaction++;
    this.upsert.run(key, value, stamp(row?.timestamp ?? 0n), this.origin, value === null ? 1 : 0, this.seq, fnv1a(key));
    return old;
  }

  /** Synced: this file holds every write this daemon acknowledged (see the cluster's quorum reads). */
  isSynced(): boolean {
    return (this.db.prepare("SELECT value FROM meta WHERE name = 'synced'").get() as { value: number } | undefined)?.value === 1;
  }

  /** Inside writeBatch. */
  setSynced(): void {
    this.db.prepare("UPDATE meta SET value = 1 WHERE name = 'synced'").run();
  }

  /** Seq of the newest change in this file's stream. */
  headSeq(): bigint {
    return this.selectSeq.get()!.value;
  }

  /**
   * Makes every transaction committed so far durable. Durability full: they
   * are (each commit fsyncs). Normal: a FULL checkpoint copies the WAL into
   * the database file and fsyncs both (SQLite syncs the WAL before and the
   * file after a checkpoint). False when readers or writers kept the
   * checkpoint from completing within the busy timeout.
   */
  syncToDisk(): boolean {
    if (this.durability === 'full') return true;
    try {
      const [r] = this.db.pragma('wal_checkpoint(FULL)') as { busy: number; log: number; checkpointed: number }[];
      return r.busy === 0;
    } catch {
      return false;
    }
  }

  /** Every seq this stream has served (or may have) is at or below this. */
  servedFloor(): bigint {
    return (this.db.prepare("SELECT value FROM meta WHERE name = 'served_floor'").safeIntegers(true).get() as { value: bigint }).value;
  }

  /** Raises the served floor to `seq`, durably (see skipServedSeqs); false if it could not be made durable. */
  raiseServedFloor(seq: bigint): boolean {
    this.writeBatch(() => this.db.prepare("UPDATE meta SET value = max(value, ?) WHERE name = 'served_floor'").run(seq));
    return this.syncToDisk();
  }

  /** Changes (live rows and tombstones) after `afterSeq`, in stream order. */
  changesSince(afterSeq: bigint, limit: number): Change[] {
    return this.selectChanges.all(afterSeq, limit).map(toChange);
  }

  /** Number of live keys (a full count). */
  keyCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM data_store WHERE deleted = 0').get() as { n: number }).n;
  }

  /** The row of `key`, tombstone included. */
  change(key: string): Change | undefined {
    const r = this.selectChange.get(key);
    return r && toChange(r);
  }

  /** How many changes of this file's stream lie after `afterSeq`. */
  countChangesAfter(afterSeq: bigint): number {
    return this.countAfter.get(afterSeq)!.n;
  }

  /** The saved read position in a peer's stream. */
  peerCursor(peer: string): string | undefined {
    return this.selectCursor.get(peer)?.cursor;
  }

  /** Inside writeBatch: saves the read position in a peer's stream (with the changes read up to it). */
  savePeerCursor(peer: string, cursor: string): void {
    this.upsertCursor.run(peer, cursor);
  }

  /**
   * Rows (tombstones included) whose key hash lies in [lo, hi), ordered by
   * (hash, key), after `afterKey` (null: from the start), at most `limit`:
   * an index range, not a scan.
   */
  changesInHashRange(lo: number, hi: number, afterKey: string | null, limit: number): Change[] {
    // keys are never empty, so (lo, '') comes before every row of the range
    const [fromHash, fromKey] = afterKey === null ? [lo, ''] : [fnv1a(afterKey), afterKey];
    return this.selectHashRange.all(fromHash, fromKey, hi, limit).map(toChange);
  }

  /** Every row, tombstones included (for digests and full comparisons). */
  *allChanges(): IterableIterator<Change> {
    for (const r of this.selectAll.iterate()) yield toChange(r);
  }

  /**
   * Inside writeBatch: stores a version made elsewhere if it is newer than
   * the one held (last writer wins by timestamp, then origin). Returns
   * whether it was applied; an applied change gets a new seq here so it
   * flows on to whoever reads this file's stream.
   */
  applyRemote(c: { key: string; value: Uint8Array | null; timestamp: bigint; origin: number }): boolean {
    const row = this.selectRow.get(c.key);
    if (row && !isNewer(c.timestamp, c.origin, row.timestamp, Number(row.origin))) return false;
    this.cache?.delete(c.key);
    this.seq += 1n;
    this.writesInTransaction++;
    const value = c.value === null ? null : Buffer.from(c.value.buffer, c.value.byteOffset, c.value.length);
    this.upsert.run(c.key, value, c.timestamp, BigInt(c.origin), c.value === null ? 1 : 0, this.seq, fnv1a(c.key));
    return true;
  }

  /**
   * Inside writeBatch: removes tombstones at or before `maxSeq` of this
   * stream (every peer has read past them) whose delete is older than
   * `deletedBeforeTs` (µs; the tombstone grace period, so a restored backup
   * still learns of the delete).
   */
  purgeTombstones(maxSeq: bigint, deletedBeforeTs: bigint = 1n << 62n): number {
    return this.deleteTombstones.run(maxSeq, deletedBeforeTs).changes;
  }

  /** How many tombstones lie at or before `maxSeq` (an index range). */
  tombstonesUpTo(maxSeq: bigint): number {
    return this.countTombstones.get(maxSeq)!.n;
  }

  /** Size of the database file and its WAL, in bytes. */
  sizeBytes(): number {
    let n = 0;
    for (const f of [this.file, `${this.file}-wal`]) {
      try {
        n += statSync(f).size;
      } catch {
        // a missing WAL is fine
      }
    }
    return n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

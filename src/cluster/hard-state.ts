// The daemon's election hard state (current term and the vote given in it),
// in its own small SQLite file, written with fsync before any message that
// depends on it leaves the daemon: a daemon that crashes and restarts can
// never vote twice in one term. The same file keeps the clock floor: a
// timestamp that the daemon's clock has not yet reached, raised ahead of use,
// so that a daemon whose data file is lost never issues a version at or below
// one it issued before (see ClockFloor).

import Database from 'better-sqlite3';
import { StoreError } from '../store/store.ts';
import type { HardState } from './core/types.ts';

export class HardStateFile {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly write: Database.Statement<[number, string | null]>;
  private readonly writeClockFloor: Database.Statement<[bigint]>;

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.db = db;
    this.write = db.prepare('UPDATE hard_state SET term = ?, voted_for = ? WHERE id = 0');
    this.writeClockFloor = db.prepare('UPDATE hard_state SET clock_floor_us = ? WHERE id = 0');
  }

  static open(file: string): HardStateFile {
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(`CREATE TABLE IF NOT EXISTS hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, voted_for TEXT);
               INSERT OR IGNORE INTO hard_state(id, term, voted_for) VALUES (0, 0, NULL);`);
      const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('hard_state');
      if (!columns.includes('clock_floor_us')) db.exec('ALTER TABLE hard_state ADD COLUMN clock_floor_us INTEGER NOT NULL DEFAULT 0');
      return new HardStateFile(file, db);
    } catch (e) {
      db?.close();
      throw new StoreError(file, 'cannot open the cluster state file', e);
    }
  }

  load(): HardState {
    const row = this.db.prepare('SELECT term, voted_for AS votedFor FROM hard_state WHERE id = 0').get() as HardState;
    return { term: row.term, votedFor: row.votedFor };
  }

  /** Durable when it returns (synchronous=FULL commits fsync the WAL). */
  save(state: HardState): void {
    try {
      this.write.run(state.term, state.votedFor);
    } catch (e) {
      throw new StoreError(this.file, 'cannot save the cluster state', e);
    }
  }

  /** Every timestamp this daemon issued before is below this (microseconds). */
  clockFloor(): bigint {
    return this.db.prepare('SELECT clock_floor_us FROM hard_state WHERE id = 0').pluck().safeIntegers().get() as bigint;
  }

  /** Durable when it returns. */
  saveClockFloor(us: bigint): void {
    try {
      this.writeClockFloor.run(us);
    } catch (e) {
      throw new StoreError(this.file, 'cannot save the clock floor', e);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

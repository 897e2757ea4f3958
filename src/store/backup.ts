// Online backups of a store file and their restore.
//
// A backup is SQLite's backup API run against the live file (WAL: the copy
// is one read transaction's snapshot, writers go on), then marked with the
// time the copy started. A restored file is adopted when its daemon starts:
// a backup older than the tombstone grace period is refused (the deletes
// made after it may already be purged everywhere, so its keys would come
// back), and a younger one gets a new change-stream id, because the peers'
// cursors on the old stream are past everything the file will write next.

import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/** meta row of a backup file: when the copy started (ms since the epoch) */
const TAKEN_AT = 'backupTakenAtMs';

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

/**
 * Copies the store at `dbFile` to `destFile` while it serves (the destination
 * must not exist). Resolves with the time the snapshot was taken from
 * (conservatively: before the copy started) and the size in bytes.
 */
export async function backupStore(dbFile: string, destFile: string, nowMs: () => number = Date.now): Promise<{ takenAtMs: number; bytes: number }> {
  if (!existsSync(dbFile)) throw new BackupError(`no store file at ${dbFile}`);
  if (existsSync(destFile)) throw new BackupError(`${destFile} exists; a backup never overwrites a file`);
  const source = new Database(dbFile, { fileMustExist: true, timeout: 5_000 });
  const partial = `${destFile}.partial`;
  let takenAtMs: number;
  try {
    takenAtMs = nowMs();
    // After the first step, copy everything that is left in one step: one
    // read transaction, so writes by the daemon cannot restart it over and over.
    await source.backup(partial, { progress: ({ remainingPages }) => Math.max(remainingPages, 1) * 2 });
  } catch (e) {
    rmSync(partial, { force: true });
    throw new BackupError(`backup of ${dbFile} failed: ${(e as Error).message}`);
  } finally {
    source.close();
  }
  const copy = new Database(partial);
  let bytes: number;
  try {
    copy.pragma('journal_mode = DELETE');
    copy.prepare('INSERT INTO meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run(TAKEN_AT, takenAtMs);
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`the copy of ${dbFile} fails SQLite's quick_check: ${String(check)}`);
    bytes = Number(copy.pragma('page_count', { simple: true })) * Number(copy.pragma('page_size', { simple: true }));
  } finally {
    copy.close();
  }
  fsyncFile(partial);
  renameSync(partial, destFile);
  fsyncFile(dirname(destFile));
  return { takenAtMs, bytes };
}

/** When the backup in `file` was taken (ms), or null when the file is not a backup (a live store, or restored and adopted already). */
export function backupTakenAt(file: string): number | null {
  const db = new Database(file, { fileMustExist: true, readonly: true });
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    if (!hasMeta) throw new BackupError(`${file} is not a kv store file (no meta table)`);
    const row = db.prepare('SELECT value FROM meta WHERE name = ?').get(TAKEN_AT) as { value: number } | undefined;
    return row ? Number(row.value) : null;
  } finally {
    db.close();
  }
}

/** Throws a BackupError saying why when a backup taken at `takenAtMs` is too old to restore. */
export function checkBackupAge(file: string, takenAtMs: number, tombstoneGraceMs: number, nowMs: number): void {
  const ageMs = nowMs - takenAtMs;
  if (ageMs <= tombstoneGraceMs) return;
  throw new BackupError(
    `backup ${file} was taken ${new Date(takenAtMs).toISOString()}, ${formatMs(ageMs)} ago: older than the tombstone grace period ` +
      `(cluster.tombstoneGraceMs = ${formatMs(tombstoneGraceMs)}). Deletes made since may be purged from every daemon, so keys deleted ` +
      'after the backup would come back. Restore a newer backup, or start the daemon with an empty data file to get a full copy from its peers.',
  );
}

/**
 * Puts the backup `backupFile` in place as the store `dbFile` (its daemon must
 * be stopped), after checking its age when `tombstoneGraceMs` is given (a
 * cluster). The file stays marked as a backup until its daemon adopts it.
 */
export async function restoreStore(backupFile: string, dbFile: string, tombstoneGraceMs: number | null, nowMs: number = Date.now()): Promise<{ takenAtMs: number }> {
  const takenAtMs = backupTakenAt(backupFile);
  if (takenAtMs === null) throw new BackupError(`${backupFile} is not a backup made by kv backup (no ${TAKEN_AT} mark)`);
  if (tombstoneGraceMs !== null) checkBackupAge(backupFile, takenAtMs, tombstoneGraceMs, nowMs);
  const incoming = `${dbFile}.restoring`;
  rmSync(incoming, { force: true });
  const source = new Database(backupFile, { fileMustExist: true, readonly: true });
  try {
    // the backup API rather than a file copy: it reads the source as a whole database
    await source.backup(incoming);
  } finally {
    source.close();
  }
  fsyncFile(incoming);
  for (const f of [`${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
  renameSync(incoming, dbFile);
  fsyncFile(dirname(dbFile));
  return { takenAtMs };
}

/**
 * At daemon start-up, before the store is opened: a restored backup in
 * place is refused if too old (cluster), else gets a new change-stream id
 * and loses its backup mark. Returns the backup's time when one was adopted.
 */
export function adoptRestoredStore(dbFile: string, tombstoneGraceMs: number | null, nowMs: number = Date.now()): number | null {
  if (!existsSync(dbFile)) return null;
  const takenAtMs = backupTakenAt(dbFile);
  if (takenAtMs === null) return null;
  if (tombstoneGraceMs !== null) checkBackupAge(dbFile, takenAtMs, tombstoneGraceMs, nowMs);
  const db = new Database(dbFile, { fileMustExist: true });
  try {
    db.transaction(() => {
      // Store.open creates a fresh random stream id when there is none
      db.prepare("DELETE FROM meta WHERE name IN ('stream', ?)").run(TAKEN_AT);
      // it lacks what was acknowledged after the snapshot: it counts for no quorum read until it has copied its peers
      db.prepare("INSERT INTO meta(name, value) VALUES ('synced', 0) ON CONFLICT(name) DO UPDATE SET value = 0").run();
    }).immediate();
  } finally {
    db.close();
  }
  return takenAtMs;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function formatMs(ms: number): string {
  if (ms >= 86_400_000) return `${(ms / 86_400_000).toFixed(1)} d`;
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${Math.round(ms)} ms`;
}

// The simulator's replica is the daemon's own code: a real Store (SQLite, in
// memory) behind the real SqliteReplica, with client requests executed by the
// processors' real handler (executeBatch) and a real SharedClock whose wall
// clock is the simulated one. What the simulator adds: a deterministic stream
// id, the background digest refresh of the member (refreshDigests, called on
// the member's schedule), and an observer that sees every row change (the
// simulator's invariants).

import { type Entry, type NodeId, type Replica, type ChangePage } from '../../src/cluster/core/index.ts';
import { computeDigests } from '../../src/cluster/digest.ts';
import { SqliteReplica } from '../../src/cluster/sqlite-replica.ts';
import { Command, type Frame } from '../../src/protocol/index.ts';
import { SharedClock } from '../../src/store/clock.ts';
import { Store, type Change } from '../../src/store/store.ts';
import { executeBatch, type HandlerEnv, type Request } from '../../src/worker/handler.ts';

/** Called after every change of a row (before = previous row, undefined when absent). */
export type RowObserver = (key: string, before: Entry | undefined, after: Entry | undefined) => void;

export interface SimReplicaOptions {
  /** the stream id of the (new, in-memory) file */
  streamId: bigint;
  origin: number;
  /** the daemon's wall clock in µs (the simulated one) */
  wallClockUs: () => bigint;
  /** the shell's ms clock (digest ages) */
  nowMs: () => number;
  /** the core's anti-entropy interval: digests are refreshed on it, as the member does */
  antiEntropyIntervalMs: number;
  /** the durable clock floor (it survives the loss of the data file) */
  clockFloorTs?: bigint;
}

const toEntry = (c: Change): Entry => ({ key: c.key, value: c.value, ts: c.timestamp, origin: c.origin });

export class SimReplica implements Replica {
  readonly store: Store;
  readonly origin: number;
  observer: RowObserver | null = null;
  private readonly options: SimReplicaOptions;
  private clock!: SharedClock;
  private replica!: SqliteReplica;
  private env!: HandlerEnv;
  private nextRequestId = 1n;

  constructor(options: SimReplicaOptions) {
    this.options = options;
    this.origin = options.origin;
    this.store = Store.open(':memory:', { durability: 'full', origin: options.origin, newStreamId: options.streamId });
    this.restart(options.clockFloorTs ?? 0n);
  }

  /**
   * The daemon restarts on the same file: a new clock started above every
   * timestamp on disk and the clock floor (as the supervisor does), a new
   * replica (its digest cache is gone).
   */
  restart(clockFloorTs: bigint): void {
    this.clock = new SharedClock(new SharedArrayBuffer(8), this.options.wallClockUs);
    this.clock.observe(this.store.maxTimestamp());
    this.clock.observe(clockFloorTs);
    this.replica = new SqliteReplica(this.store, this.clock, { antiEntropyIntervalMs: this.options.antiEntropyIntervalMs, now: this.options.nowMs });
    this.env = {
      store: this.store,
      clock: this.clock,
      shutdown: () => 0,
      onStoreError: (e) => {
        throw e;
      },
    };
  }

  close(): void {
    this.store.close();
  }

  get streamId(): string {
    return this.replica.streamId;
  }

  /** The member's background job: digests of the whole file, handed to the replica. */
  refreshDigests(buckets: number): void {
    this.replica.setDigests(buckets, computeDigests(this.store.allChanges(), buckets));
  }

  // --- client requests, through the processors' handler

  /** A client PUT; returns the version it got. */
  put(key: string, value: Uint8Array): Entry {
    this.request(Command.PUT, key, value);
    return this.get(key)!;
  }

  /** A client DEL; returns the tombstone (also for a key this replica has not seen). */
  del(key: string): Entry {
    this.request(Command.DEL, key);
    return this.get(key)!;
  }

  /** A client GET; `onKeyMiss` is the processor's report to the member. */
  read(key: string, onKeyMiss: (key: string) => void): Entry | undefined {
    const reply = this.request(Command.GET, key, undefined, onKeyMiss);
    return reply.command === Command.OK ? { key, value: reply.value!, ts: reply.valueTimestamp!, origin: -1 } : undefined;
  }

  private request(command: number, key: string, value: Uint8Array = new Uint8Array(0), onKeyMiss?: (key: string) => void) {
    const frame: Frame = { id: this.nextRequestId++, command, flag: 0, param: 0n, key, value, valueTimestamp: 0n };
    const req: Request = { frame, remote: '127.0.0.1' };
    const before = command === Command.GET ? undefined : this.get(key);
    executeBatch({ ...this.env, onKeyMiss }, [req]);
    if (command !== Command.GET) this.notify(key, before);
    const reply = req.reply!;
    if (reply.command !== Command.OK && reply.command !== Command.NO_VAL) throw new Error(`client request ${command} ${key} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  // --- views for checks

  /** Live keys → entries (tombstones left out). */
  liveView(): Map<string, Entry> {
    const m = new Map<string, Entry>();
    for (const c of this.store.allChanges()) if (c.value !== null) m.set(c.key, toEntry(c));
    return m;
  }

  // --- the Replica port: the real one, observed

  get(key: string): Entry | undefined {
    return this.replica.get(key);
  }

  changesSince(cursor: string | null, limit: number): ChangePage {
    return this.replica.changesSince(cursor, limit);
  }

  apply(entries: Entry[], source?: { peer: NodeId; cursor: string }): number {
    const keys = [...new Set(entries.map((e) => e.key))];
    const before = keys.map((k) => this.get(k));
    const applied = this.replica.apply(entries, source);
    keys.forEach((k, i) => this.notify(k, before[i]));
    return applied;
  }

  cursorFor(peer: NodeId): string | null {
    return this.replica.cursorFor(peer);
  }

  ackedPosition(cursor: string | null): bigint {
    return this.replica.ackedPosition(cursor);
  }

  headPosition(): bigint {
    return this.replica.headPosition();
  }

  isSynced(): boolean {
    return this.replica.isSynced();
  }

  markSynced(): void {
    this.replica.markSynced();
  }

  /** The position of the last change of this replica's stream (what a local write's acknowledgement waits for). */
  get headSeq(): bigint {
    return this.store.headSeq();
  }

  durableCursorFor(peer: NodeId): string | null {
    return this.replica.durableCursorFor(peer);
  }

  purgeTombstones(ackedCursors: (string | null)[]): number {
    const tombstones = [...this.store.allChanges()].filter((c) => c.value === null).map(toEntry);
    const purged = this.replica.purgeTombstones(ackedCursors);
    for (const t of tombstones) this.notify(t.key, t);
    return purged;
  }

  pendingChanges(cursor: string | null): number {
    return this.replica.pendingChanges(cursor);
  }

  bucketDigests(buckets: number): number[] {
    return this.replica.bucketDigests(buckets);
  }

  entriesInBucket(bucket: number, buckets: number, afterKey: string | null, limit: number): { entries: Entry[]; more: boolean } {
    return this.replica.entriesInBucket(bucket, buckets, afterKey, limit);
  }

  private notify(key: string, before: Entry | undefined): void {
    if (!this.observer) return;
    const after = this.get(key);
    if (before === after || (before && after && before.ts === after.ts && before.origin === after.origin && (before.value === null) === (after.value === null))) return;
    this.observer(key, before, after);
  }
}

// The simulator's replica is the daemon's own code: a real Store (SQLite, in
// memory) behind the real SqliteReplica, its writes carried out by the
// writer's real code (commitRequests) one simulated step after they are
// handed over, as the writer thread answers later; client requests through
// the processors' real handler (writer ops for PUT/DEL, executeLocal for
// GET); and a real SharedClock whose wall clock is the simulated one. What the simulator adds: a deterministic stream
// id, the background digest refresh of the member (refreshDigests, called on
// the member's schedule), and an observer that sees every row change (the
// simulator's invariants).

import { type Entry, type NodeId, type Replica, type ChangePage } from '../../src/cluster/core/index.ts';
import { computeDigests } from '../../src/cluster/digest.ts';
import { SqliteReplica } from '../../src/cluster/sqlite-replica.ts';
import { Command, type Frame } from '../../src/protocol/index.ts';
import { SharedClock } from '../../src/store/clock.ts';
import { Store, type Change } from '../../src/store/store.ts';
import { executeLocal, replyFromResult, writerOp, type HandlerEnv, type Request } from '../../src/worker/handler.ts';
import { commitRequests } from '../../src/writer/execute.ts';
import type { FromWriter, ToWriter } from '../../src/writer/contract.ts';
import type { WriterLink } from '../../src/writer/link.ts';
import { decodeResults, encodeOps } from '../../src/writer/ops-codec.ts';

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
  /** requests handed to the writer and not carried out yet */
  private writerQueue: { request: ToWriter; answer: (a: FromWriter | null) => void }[] = [];
  /** applies done and not yet reported to the core (the simulator reports them with the next step) */
  completed: Array<{ ticket: number; count: number | null }> = [];

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
    this.writerQueue = [];
    // the writer thread, as SqliteReplica sees it: requests are carried out in order at runWriter()
    const writer = {
      request: (request: Omit<ToWriter, 'id'>, answer: (a: FromWriter | null) => void) => this.writerQueue.push({ request: { ...request, id: 0 } as ToWriter, answer }),
    } as unknown as WriterLink;
    this.replica = new SqliteReplica(this.store, this.clock, writer, {
      antiEntropyIntervalMs: this.options.antiEntropyIntervalMs,
      now: this.options.nowMs,
      onApplied: (ticket, count) => this.completed.push({ ticket, count }),
      onFailed: (what, error) => {
        throw new Error(`simulated writer: ${what} failed: ${error}`);
      },
    });
    this.env = { store: this.store, shutdown: () => 0 };
  }

  /** The writer's turn: what was handed to it since the last one, in order, each with the row changes observed. */
  runWriter(): void {
    const items = this.writerQueue;
    this.writerQueue = [];
    for (const { request, answer } of items) {
      const keys =
        request.type === 'apply' ? [...new Set(request.entries.map((e) => e.key))] : request.type === 'purge' ? [...this.store.allChanges()].filter((c) => c.value === null).map((c) => c.key) : [];
      const before = keys.map((k) => this.get(k));
      const outcome = commitRequests(this.store, this.clock, [request]);
      keys.forEach((k, i) => this.notify(k, before[i]));
      answer(outcome.answers[0]);
    }
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
    const env = { ...this.env, onKeyMiss };
    const op = writerOp(req, false);
    if (op) {
      // a client write: handed to the writer and committed at once (the processor waits for it)
      const before = this.get(key);
      const outcome = commitRequests(this.store, this.clock, [{ type: 'ops', id: 0, ops: encodeOps([op]) }]);
      const answer = outcome.answers[0];
      if (answer.type !== 'done') throw new Error(`client request ${command} ${key} failed: ${JSON.stringify(answer)}`);
      req.reply = replyFromResult(env, req, decodeResults(answer.results)[0]);
      this.notify(key, before);
    } else {
      req.reply = executeLocal(env, req);
    }
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

  apply(entries: Entry[], source: { peer: NodeId; cursor: string } | undefined, ticket: number): void {
    this.replica.apply(entries, source, ticket);
  }

  /** Tests: applies and lets the writer carry it out at once. */
  applyNow(entries: Entry[], source?: { peer: NodeId; cursor: string }): void {
    this.apply(entries, source, 0);
    this.runWriter();
    this.completed = [];
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
    return this.replica.purgeTombstones(ackedCursors);
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

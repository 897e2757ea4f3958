// The cluster core's Replica port on a daemon's SQLite store: its change
// stream (seq order, cursor "<streamId>:<seq>:<acked>", where <acked> is the
// seq of the last complete page the reader was served, see ackedPosition),
// last-writer-wins apply with
// the peer's cursor saved in the same transaction, tombstone purge, and the
// digests and bucket listings of anti-entropy. Reads use the member's own
// read connection; applies and purges go to the file's writer thread (in
// order), so nothing writes or fsyncs on the supervisor's event loop.

import type { SharedClock } from '../store/clock.ts';
import type { Change, Store } from '../store/store.ts';
import type { WriterLink } from '../writer/link.ts';
import { computeDigests } from './digest.ts';
import { hashRange } from '../shared/key-hash.ts';
import type { ChangePage, Entry, NodeId, Replica } from './core/types.ts';

const toEntry = (c: Change): Entry => ({ key: c.key, value: c.value, ts: c.timestamp, origin: c.origin });

/** Called when an apply is durable (count stored) or failed (null). */
export type AppliedHook = (ticket: number, count: number | null) => void;

/**
 * The member refreshes the digests in the background once per anti-entropy
 * round; a cached set older than this many rounds (the job queue is stuck) is
 * recomputed on the spot.
 */
export const DIGEST_MAX_AGE_ROUNDS = 2;

/** The served floor is raised this far past what is served, so it costs one sync per this many changes. */
export const SERVED_FLOOR_LEAD = 100_000n;

export class SqliteReplica implements Replica {
  private readonly store: Store;
  private readonly clock: SharedClock;
  private readonly writer: WriterLink;
  private readonly onApplied: AppliedHook;
  private readonly onFailed: (what: string, error: string) => void;
  private readonly stream: string;
  private readonly now: () => number;
  /** cached digests are used while younger than this */
  private readonly digestMaxAgeMs: number;
  private digests: { buckets: number; values: number[]; atMs: number } | undefined;
  private readonly onStreamRewound: (cursor: string, headSeq: bigint) => void;
  /** cached store.servedFloor() */
  private servedFloor: bigint;
  /** tombstones younger than this stay even when every peer has them (a restored backup must still learn of the delete) */
  private readonly tombstoneGraceMs: number;
  /** the file's synced flag, read once */
  private synced: boolean | undefined;

  constructor(
    store: Store,
    clock: SharedClock,
    writer: WriterLink,
    options: {
      antiEntropyIntervalMs: number;
      tombstoneGraceMs?: number;
      now?: () => number;
      onApplied: AppliedHook;
      onFailed: (what: string, error: string) => void;
      /** a peer's cursor is past this stream's head: the file lost changes it had served (restored, or rolled back); the peer gets a full copy */
      onStreamRewound?: (cursor: string, headSeq: bigint) => void;
    },
  ) {
    this.store = store;
    this.clock = clock;
    this.writer = writer;
    this.onApplied = options.onApplied;
    this.onFailed = options.onFailed;
    this.onStreamRewound = options.onStreamRewound ?? (() => {});
    this.servedFloor = store.servedFloor();
    this.stream = store.streamId.toString(36);
    this.digestMaxAgeMs = DIGEST_MAX_AGE_ROUNDS * options.antiEntropyIntervalMs;
    this.now = options.now ?? Date.now;
    this.tombstoneGraceMs = options.tombstoneGraceMs ?? 0;
  }

  get streamId(): string {
    return this.stream;
  }

  /** The seq a cursor of this stream points at, and its acked seq; 0 for null or another stream's cursor. */
  private parse(cursor: string | null): { seq: bigint; acked: bigint } {
    const none = { seq: 0n, acked: 0n };
    if (cursor === null) return none;
    const [stream, seq, acked = '0'] = cursor.split(':');
    if (stream !== this.stream || !seq || !/^\d{1,19}$/.test(seq) || !/^\d{1,19}$/.test(acked)) return none;
    return { seq: BigInt(seq), acked: BigInt(acked) };
  }

  private seqOf(cursor: string | null): bigint {
    return this.parse(cursor).seq;
  }

  ackedPosition(cursor: string | null): bigint {
    return this.parse(cursor).acked;
  }

  headPosition(): bigint {
    return this.store.headSeq();
  }

  isSynced(): boolean {
    return (this.synced ??= this.store.isSynced());
  }

  /** At once in memory; in the file through the writer (a restart before that copies the peers again). */
  markSynced(): void {
    this.synced = true;
    this.writer.request({ type: 'mark-synced' }, (a) => {
      if (a?.type !== 'applied') this.onFailed('mark-synced', a === null ? 'the writer died' : a.type === 'failed' ? a.error : 'unexpected answer');
    });
  }

  get(key: string): Entry | undefined {
    const c = this.store.change(key);
    return c && toEntry(c);
  }

  changesSince(cursor: string | null, limit: number): ChangePage {
    let { seq: after, acked } = this.parse(cursor);
    if (after > this.store.headSeq()) {
      // seqs the reader has were lost here and will be reused: it must read everything again
      this.onStreamRewound(cursor!, this.store.headSeq());
      after = 0n;
      acked = 0n;
    }
    const rows = this.store.changesSince(after, limit + 1);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    const last = rows.length > 0 ? rows[rows.length - 1].seq : after;
    if (last > this.servedFloor) {
      // nothing is served above the durable floor: after a power loss the head restarts above it
      if (!this.store.raiseServedFloor(last + SERVED_FLOOR_LEAD)) return { entries: [], cursor: `${this.stream}:${after}:${acked}`, more: false };
      this.servedFloor = last + SERVED_FLOOR_LEAD;
    }
    // a complete page leaves the reader with every row as of now (a row that moved past a partial page's end did not reach it)
    return { entries: rows.map(toEntry), cursor: `${this.stream}:${last}:${more ? acked : last}`, more };
  }

  apply(entries: Entry[], source: { peer: NodeId; cursor: string } | undefined, ticket: number): void {
    if (entries.length === 0 && source && source.cursor === this.store.peerCursor(source.peer)) {
      // an empty pull reply that does not move the cursor: nothing to write
      this.onApplied(ticket, 0);
      return;
    }
    let maxTs = 0n;
    for (const e of entries) if (e.ts > maxTs) maxTs = e.ts;
    // later local writes must carry higher timestamps than anything seen (the writer observes it too)
    this.clock.observe(maxTs);
    this.writer.request({ type: 'apply', entries, source }, (a) => {
      if (a?.type === 'applied') return this.onApplied(ticket, a.count);
      this.onFailed('apply', a === null ? 'the writer died during the apply' : a.type === 'failed' ? a.error : 'unexpected answer');
      this.onApplied(ticket, null);
    });
  }

  cursorFor(peer: NodeId): string | null {
    return this.store.peerCursor(peer) ?? null;
  }

  durableCursorFor(peer: NodeId): string | null {
    return this.store.syncToDisk() ? this.cursorFor(peer) : null;
  }

  purgeTombstones(ackedCursors: (string | null)[]): number {
    if (ackedCursors.length === 0) return 0;
    let upTo = -1n;
    for (const c of ackedCursors) {
      const seq = this.seqOf(c);
      if (upTo < 0n || seq < upTo) upTo = seq;
    }
    if (upTo <= 0n) return 0;
    const n = this.store.tombstonesUpTo(upTo);
    if (n === 0) return 0;
    const deletedBeforeTs = BigInt(Math.floor(this.now() - this.tombstoneGraceMs)) * 1000n;
    this.writer.request({ type: 'purge', upToSeq: upTo, deletedBeforeTs }, (a) => {
      if (a?.type !== 'applied') this.onFailed('purge', a === null ? 'the writer died during the purge' : a.type === 'failed' ? a.error : 'unexpected answer');
    });
    return n;
  }

  pendingChanges(cursor: string | null): number {
    return this.store.countChangesAfter(this.seqOf(cursor));
  }

  /**
   * Digests are a full scan: the shell computes them in a background job
   * (setDigests) ahead of the leader's rounds, so a large store does not stall
   * the peer port. Without a fresh cached set they are computed here.
   */
  bucketDigests(buckets: number): number[] {
    const d = this.digests;
    if (d && d.buckets === buckets && this.now() - d.atMs <= this.digestMaxAgeMs) return d.values;
    const values = computeDigests(this.store.allChanges(), buckets);
    this.setDigests(buckets, values);
    return values;
  }

  setDigests(buckets: number, values: number[]): void {
    this.digests = { buckets, values, atMs: this.now() };
  }

  /** An index range of the store (buckets are contiguous key-hash ranges), one row more than asked to tell `more`. */
  entriesInBucket(bucket: number, buckets: number, afterKey: string | null, limit: number): { entries: Entry[]; more: boolean } {
    const { lo, hi } = hashRange(bucket, buckets);
    const rows = this.store.changesInHashRange(lo, hi, afterKey, limit + 1);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    return { entries: rows.map(toEntry), more };
  }
}

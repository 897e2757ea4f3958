// The simulator's Replica: an in-memory map with the same contract as the
// SQLite one (LWW apply, one change stream with a stream id, cursors
// "<stream>:<seq>", tombstone purge, bucket digests). It also plays the
// store's part for client writes, with a hybrid logical clock that never
// issues a timestamp at or below one it has held (purged tombstones included,
// and, through the clock floor, even what a lost data file held).

import { bucketOf, compareVersions, rowHash, type ChangePage, type Entry, type NodeId, type Replica } from '../../src/cluster/core/index.ts';

interface Row {
  entry: Entry;
  seq: number;
}

/** Called after every change of a row (before = previous row, undefined when absent). */
export type RowObserver = (key: string, before: Entry | undefined, after: Entry | undefined) => void;

export class MemoryReplica implements Replica {
  readonly streamId: string;
  readonly origin: number;
  private readonly rows = new Map<string, Row>();
  private readonly cursors = new Map<NodeId, string>();
  private seq = 0;
  /** durable with the rows: a new replica (a lost data file) is not synced */
  private synced = false;
  /** highest timestamp ever held, kept across purges: the HLC stays above it */
  private maxTsEver = 0n;
  observer: RowObserver | null = null;

  /** `clockFloorTs`: the daemon's durable clock high-water, which survives the loss of its data file */
  constructor(streamId: string, origin: number, clockFloorTs = 0n) {
    this.streamId = streamId;
    this.origin = origin;
    this.maxTsEver = clockFloorTs;
  }

  get(key: string): Entry | undefined {
    return this.rows.get(key)?.entry;
  }

  /** Live keys → entries (tombstones left out). */
  liveView(): Map<string, Entry> {
    const m = new Map<string, Entry>();
    for (const [k, r] of this.rows) if (r.entry.value !== null) m.set(k, r.entry);
    return m;
  }

  allRows(): Entry[] {
    return [...this.rows.values()].map((r) => r.entry);
  }

  /** A client PUT acknowledged by this replica's daemon; returns the version it got. */
  put(key: string, value: Uint8Array, wallClockUs: bigint): Entry {
    return this.write(key, value, wallClockUs)!;
  }

  /** A client DEL: a tombstone if the key has a row here (like the store), else nothing. */
  del(key: string, wallClockUs: bigint): Entry | undefined {
    if (!this.rows.has(key)) return undefined;
    return this.write(key, null, wallClockUs);
  }

  changesSince(cursor: string | null, limit: number): ChangePage {
    const { seq: after, acked } = this.parse(cursor) ?? { seq: 0, acked: 0 };
    const newer = [...this.rows.values()].filter((r) => r.seq > after).sort((a, b) => a.seq - b.seq);
    const page = newer.slice(0, limit);
    const last = page.length > 0 ? page[page.length - 1].seq : after;
    const more = newer.length > page.length;
    return { entries: page.map((r) => r.entry), cursor: `${this.streamId}:${last}:${more ? acked : last}`, more };
  }

  ackedPosition(cursor: string | null): bigint {
    return BigInt(this.parse(cursor)?.acked ?? 0);
  }

  headPosition(): bigint {
    return BigInt(this.seq);
  }

  isSynced(): boolean {
    return this.synced;
  }

  markSynced(): void {
    this.synced = true;
  }

  /** The position of the last local write (what its acknowledgement waits for). */
  get headSeq(): bigint {
    return BigInt(this.seq);
  }

  /** applies done and not yet reported to the core (the simulator reports them one step later, as a writer thread would) */
  completed: Array<{ ticket: number; count: number }> = [];

  apply(entries: Entry[], source: { peer: NodeId; cursor: string } | undefined, ticket: number): void {
    this.completed.push({ ticket, count: this.applyNow(entries, source) });
  }

  /** Applies at once (durable on return) and returns how many entries were stored. */
  applyNow(entries: Entry[], source?: { peer: NodeId; cursor: string }): number {
    let applied = 0;
    for (const e of entries) {
      const held = this.rows.get(e.key);
      if (held && compareVersions(e, held.entry) <= 0) continue;
      this.store({ key: e.key, value: e.value === null ? null : Uint8Array.from(e.value), ts: e.ts, origin: e.origin });
      applied++;
    }
    if (source) this.cursors.set(source.peer, source.cursor);
    return applied;
  }

  cursorFor(peer: NodeId): string | null {
    return this.cursors.get(peer) ?? null;
  }

  purgeTombstones(ackedCursors: (string | null)[]): number {
    let upTo = Infinity;
    for (const c of ackedCursors) upTo = Math.min(upTo, this.seqOf(c) ?? 0);
    let purged = 0;
    for (const [k, r] of this.rows) {
      if (r.entry.value === null && r.seq <= upTo) {
        this.rows.delete(k);
        this.observer?.(k, r.entry, undefined);
        purged++;
      }
    }
    return purged;
  }

  pendingChanges(cursor: string | null): number {
    const after = this.seqOf(cursor) ?? 0;
    let n = 0;
    for (const r of this.rows.values()) if (r.seq > after) n++;
    return n;
  }

  bucketDigests(buckets: number): number[] {
    const d = new Array<number>(buckets).fill(0);
    for (const [k, r] of this.rows) {
      if (r.entry.value === null) continue;
      const b = bucketOf(k, buckets);
      d[b] = (d[b] ^ rowHash(k, r.entry.ts, r.entry.origin)) >>> 0;
    }
    return d;
  }

  entriesInBucket(bucket: number, buckets: number, afterKey: string | null, limit: number): { entries: Entry[]; more: boolean } {
    const keys = [...this.rows.keys()].filter((k) => bucketOf(k, buckets) === bucket && (afterKey === null || k > afterKey)).sort();
    return { entries: keys.slice(0, limit).map((k) => this.rows.get(k)!.entry), more: keys.length > limit };
  }

  /** The seq of a cursor of this stream; null for null, foreign or malformed cursors. */
  private seqOf(cursor: string | null): number | null {
    return this.parse(cursor)?.seq ?? null;
  }

  private parse(cursor: string | null): { seq: number; acked: number } | null {
    if (cursor === null) return null;
    const [stream, seq, acked] = cursor.split(':');
    if (stream !== this.streamId) return null;
    const n = Number(seq);
    const a = Number(acked);
    return Number.isSafeInteger(n) && n >= 0 && Number.isSafeInteger(a) && a >= 0 ? { seq: n, acked: a } : null;
  }

  private write(key: string, value: Uint8Array | null, wallClockUs: bigint): Entry {
    const ts = wallClockUs > this.maxTsEver ? wallClockUs : this.maxTsEver + 1n;
    const entry: Entry = { key, value, ts, origin: this.origin };
    this.store(entry);
    return entry;
  }

  private store(entry: Entry): void {
    const before = this.rows.get(entry.key)?.entry;
    this.seq += 1;
    this.rows.set(entry.key, { entry, seq: this.seq });
    if (entry.ts > this.maxTsEver) this.maxTsEver = entry.ts;
    this.observer?.(entry.key, before, entry);
  }
}

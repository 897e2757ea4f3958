// Shared types of the pure cluster core: ids, versions, entries, the Replica
// port the core reads and writes data through, the hard state the shell must
// persist, the events the core reports and the core's settings.

import { bucketOfHash, fnv1a, fnv1aBytes } from '../../shared/key-hash.ts';

/** A daemon id from the config (`daemons[].id`). */
export type NodeId = string;

/** A version: hybrid logical clock timestamp (µs) with the origin daemon's index as tie-break. */
export interface Version {
  ts: bigint;
  origin: number;
}

/** One key as replication sees it: a live value or a tombstone (value null), with its version. */
export interface Entry {
  key: string;
  /** null = tombstone (the key was deleted at this version) */
  value: Uint8Array | null;
  ts: bigint;
  origin: number;
}

/** >0 when a is newer: higher timestamp wins, equal timestamps → higher origin wins. */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts > b.ts ? 1 : -1;
  return a.origin - b.origin;
}

/** A page of a replica's change stream. */
export interface ChangePage {
  entries: Entry[];
  /** where the reader is after these entries; opaque, made by the serving Replica */
  cursor: string;
  /** true when more changes follow right away */
  more: boolean;
}

/**
 * The data a daemon holds, as the core sees it. Reads are synchronous. Writes
 * are asynchronous and carried out in the order they are made (in the daemon
 * they go to the file's writer thread): `apply` reports its completion
 * through `ClusterNode.applied(ticket, ...)`, called by the shell once the
 * entries are durable (or have failed).
 */
export interface Replica {
  /** The row for key, tombstone included; undefined when the key was never seen (or purged). */
  get(key: string): Entry | undefined;
  /**
   * Changes of this replica's own stream after `cursor` (null = from the
   * beginning), at most `limit`. A cursor from another stream (the file was
   * recreated) or one that cannot be parsed restarts from the beginning, so
   * the reader gets a full copy. Each key appears once, at its latest version.
   */
  changesSince(cursor: string | null, limit: number): ChangePage;
  /**
   * Last-writer-wins apply: stores each entry whose version is newer than the
   * held one (tombstones are versions; a version never goes down). With
   * `source`, records in the same transaction that this replica has read
   * `source.peer`'s stream up to `source.cursor`. When durable, the shell
   * calls `ClusterNode.applied(ticket, storedCount)`; on failure
   * `applied(ticket, null)` (nothing stored, the cursor not moved).
   */
  apply(entries: Entry[], source: { peer: NodeId; cursor: string } | undefined, ticket: number): void;
  /**
   * How far a reader holding `cursor` (a cursor this replica served, sent
   * back in a Pull) certainly has this replica's data: every write with a
   * stream position at or below the result is held by the reader at its
   * version or a newer one. Only complete pages (more = false) vouch for
   * that: a row overwritten while a reader paged moves past the reader's
   * position. 0 for null or another stream's cursor.
   */
  ackedPosition(cursor: string | null): bigint;
  /** The position of the newest change of this replica's stream. */
  headPosition(): bigint;
  /**
   * Synced: this replica holds every write it ever acknowledged. A replica
   * whose data file is new is not synced until `markSynced` (after it copied
   * enough peers' streams); durable.
   */
  isSynced(): boolean;
  markSynced(): void;
  /** The persisted read position in `peer`'s stream (null = nothing read yet). */
  cursorFor(peer: NodeId): string | null;
  /**
   * The same, made durable on disk first even where commits are not fsynced
   * (durability normal): a peer purges tombstones on this answer, so it must
   * survive a power loss here. Null when it cannot be made durable now.
   */
  durableCursorFor(peer: NodeId): string | null;
  /**
   * Removes tombstones of this replica's own stream that every cursor in
   * `ackedCursors` is past. A null or foreign-stream cursor is past nothing,
   * so nothing is purged. Returns how many it removes; the removal is ordered
   * after every apply made before this call and before every apply made
   * after it.
   */
  purgeTombstones(ackedCursors: (string | null)[]): number;
  /** How many changes of this replica's stream lie after `cursor` (lag of the reader). */
  pendingChanges(cursor: string | null): number;
  /**
   * One 32-bit digest per key-hash bucket (bucketOf(key, buckets)), over the
   * LIVE rows only (key, ts, origin, value): tombstones do not count, so a purged
   * tombstone does not make two replicas differ.
   */
  bucketDigests(buckets: number): number[];
  /**
   * Rows (tombstones included) of one bucket after `afterKey`, at most
   * `limit`, in an order of the replica's choosing that is the same on every
   * call (the shell: key hash, then key); `afterKey` is the last key of the
   * previous page.
   */
  entriesInBucket(bucket: number, buckets: number, afterKey: string | null, limit: number): { entries: Entry[]; more: boolean };
}

/** What the shell must write durably BEFORE it sends the messages of the same output. */
export interface HardState {
  term: number;
  votedFor: NodeId | null;
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/** A daemon's own health, given by the shell (setStatus) and carried to the leader in heartbeat replies. */
export interface DaemonStatus {
  processorsAlive: number;
  restarts: number;
  /** groups (e.g. client ports as strings) whose supervisor gave up */
  degradedGroups: string[];
  keyCount: number;
  /** identity of the daemon's change stream (changes when its data file is recreated) */
  streamId: string;
  /** highest timestamp written locally, µs */
  lastWriteTs: bigint;
}

export type ClusterEvent =
  | { type: 'role'; role: Role; term: number; leaderId: NodeId | null }
  | { type: 'clockSkew'; peer: NodeId; offsetMs: number }
  /** a peer sent a version further ahead of local time than maxClockSkewMs: refused (not applied) */
  | { type: 'versionAhead'; peer: NodeId; key: string; ts: bigint; aheadMs: number }
  | { type: 'keyFetched'; reqId: string; key: string; entry: Entry | null }
  | { type: 'retryGroups'; groups: string[] }
  | { type: 'purged'; tombstones: number }
  /**
   * Write acknowledgements advanced: every local write at a stream position
   * at or below `majority` is held by a majority of the cluster (this
   * daemon included), at or below `all` by every daemon.
   */
  | { type: 'acked'; majority: bigint; all: bigint }
  /** A quorum read finished: `entries[i]` is the newest row of keys[i] among a majority (undefined: none); ok=false: no majority answered in time. */
  | { type: 'quorumRead'; reqId: string; ok: boolean; entries: (Entry | undefined)[] }
  /** This replica copied enough peers' streams to hold every acknowledged write again. */
  | { type: 'synced' };

/** Settings of the core; every duration in ms of the clock given to tick/receive. */
export interface CoreSettings {
  heartbeatIntervalMs: number;
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  pullIntervalMs: number;
  /** a pull without an answer for this long is sent again */
  pullTimeoutMs: number;
  antiEntropyIntervalMs: number;
  /** number of key-hash buckets compared by anti-entropy */
  antiEntropyBuckets: number;
  /** most differing buckets repaired per follower per anti-entropy round */
  maxRepairBucketsPerRound: number;
  /** the node tries to purge acknowledged tombstones this often */
  purgeIntervalMs: number;
  /**
   * Bound on the offset between daemons' clocks: a version from a peer more
   * than this ahead of local wall-clock time is refused (not applied, not
   * observed by the clock), so one fast clock cannot drag every version
   * forward and win every conflict. Also flags skewed peers in the view.
   */
  maxClockSkewMs: number;
  /** a key fetch without an answer by then reports null */
  keyFetchTimeoutMs: number;
  maxPendingKeyFetches: number;
  /** most entries in one Changes / BucketEntries message */
  maxEntriesPerMessage: number;
  /** a quorum read without enough answers by then fails (the client gets NO_QUORUM) */
  quorumReadTimeoutMs: number;
  /** a quorum read asks more peers when the first ones have not answered by then */
  quorumReadHedgeMs: number;
  /** a peer heard from within this long counts as reachable (writes at MAJORITY/ALL are refused up front otherwise) */
  peerReachableMs: number;
  /** a read lease lasts this long (see quorum.ts); writes wait at most this long for a daemon that stopped answering */
  readLeaseMs: number;
  /** the bound on how fast any two daemons' clocks drift apart, in parts per million of elapsed time */
  maxClockDriftPpm: number;
  /** first wait before asking a degraded daemon to retry its groups; doubles up to the max */
  retryGroupsBackoffInitialMs: number;
  retryGroupsBackoffMaxMs: number;
}

export const defaultCoreSettings: Readonly<CoreSettings> = Object.freeze({
  heartbeatIntervalMs: 50,
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  pullIntervalMs: 250,
  pullTimeoutMs: 1_000,
  antiEntropyIntervalMs: 10_000,
  antiEntropyBuckets: 256,
  maxRepairBucketsPerRound: 16,
  purgeIntervalMs: 5_000,
  maxClockSkewMs: 500,
  keyFetchTimeoutMs: 500,
  maxPendingKeyFetches: 1024,
  maxEntriesPerMessage: 2048,
  quorumReadTimeoutMs: 1_000,
  quorumReadHedgeMs: 50,
  peerReachableMs: 1_000,
  readLeaseMs: 500,
  maxClockDriftPpm: 1_000,
  retryGroupsBackoffInitialMs: 1_000,
  retryGroupsBackoffMaxMs: 60_000,
});

export { fnv1a };

/** The anti-entropy bucket of a key: buckets are contiguous ranges of the key's FNV-1a hash. */
export function bucketOf(key: string, buckets: number): number {
  return bucketOfHash(fnv1a(key), buckets);
}

/**
 * The digest contribution of one live row; a bucket's digest is the XOR of
 * its rows'. The value counts too: two replicas holding different values
 * under one version must not look alike.
 */
export function rowHash(key: string, ts: bigint, origin: number, value: Uint8Array): number {
  return fnv1aBytes(value, fnv1a(`${key}\u0000${ts}\u0000${origin}\u0000`));
}

/** Thrown when the core finds its own state impossible: stop loudly rather than corrupt data. */
export class InvariantError extends Error {
  constructor(what: string) {
    super(`cluster core invariant violated: ${what}`);
    this.name = 'InvariantError';
  }
}

// The contract of a group's writer thread: what it is started with, the
// requests processors and the cluster member send it on their own ports and
// its answers, the invalidation messages it sends every processor after each
// commit, and the layout of its shared counters (heartbeat and commit
// metrics, read by the supervisor without the writer's help).

import type { MessagePort } from 'node:worker_threads';
import type { Durability } from '../config/config.ts';
import type { Entry } from '../cluster/core/types.ts';

export interface WriterData {
  daemonId: string;
  /** the daemon's origin (a hash of its id), written as the origin of local writes */
  origin: number;
  dbFile: string;
  durability: Durability;
  maxStoreBytes: number;
  keepTombstones: boolean;
  heartbeatIntervalMs: number;
  /** SharedClock buffer of the daemon */
  clock: SharedArrayBuffer;
  /** Float64Array view, layout WriterSlot */
  stats: SharedArrayBuffer;
  /** Int32Array[1]: number of the last commit whose invalidations were posted (see InvalidationMessage) */
  commitCounter: SharedArrayBuffer;
  /** metrics buffer (src/metrics/counters.ts): commit batch sizes and commit-to-durable times */
  metrics: SharedArrayBuffer;
  /** tests only: faults may be injected */
  faultInjection: boolean;
}

/** What a request asks of the writer, executed in order inside one transaction. */
export const OpKind = { PUT: 1, DEL: 2, GET: 3, GET_TS: 4, GET_LAST_TS: 5, GET_FIRST_TS: 6 } as const;
export type OpKindNumber = (typeof OpKind)[keyof typeof OpKind];

export interface WriteOp {
  kind: OpKindNumber;
  key: string;
  value?: Uint8Array;
}

/**
 * The result of one op: PUT/DEL: the old value (null when there was none) and
 * the change-stream `seq` of the write; GET: the value read; GET_*TS: `ts`.
 */
export interface OpResult {
  value: Uint8Array | null;
  ts: bigint | null;
  seq?: bigint;
}

export type ToWriter =
  /** a processor's ops (writes, and reads that must see the connection's earlier writes), encoded by ops-codec.ts */
  | { type: 'ops'; id: number; ops: Uint8Array }
  /** replicated or repaired entries, last writer wins; with `source`, the peer cursor saved in the same transaction */
  | { type: 'apply'; id: number; entries: Entry[]; source?: { peer: string; cursor: string } }
  /** remove tombstones of this file's stream at or before `upToSeq` whose delete is older than deletedBeforeTs (µs, the grace period) */
  | { type: 'purge'; id: number; upToSeq: bigint; deletedBeforeTs: bigint }
  /** the file holds every write this daemon acknowledged again (the cluster's quorum reads) */
  | { type: 'mark-synced'; id: number };

export type FromWriter =
  /** one result per op, encoded by ops-codec.ts */
  | { type: 'done'; id: number; results: Uint8Array }
  | { type: 'applied'; id: number; count: number }
  /** the transaction holding the request was rolled back: nothing of it is applied */
  | { type: 'failed'; id: number; error: string; sqliteCode?: string };

/** After each commit, to every processor: the keys it changed (`n`: the commit's number). */
export interface InvalidationMessage {
  n: number;
  keys: string[];
}

export type ToWriterThread =
  /** serve requests on `port`; post invalidations on `invalidations` (processors only) */
  | { type: 'attach'; name: string; port: MessagePort; invalidations?: MessagePort }
  /** commit what is queued, close the file and exit */
  | { type: 'stop' }
  /** tests only: crash now, hang, crash after the next commit before answering it, or make the next transaction last SLOW_COMMIT_FAULT_MS */
  | { type: 'fault'; fault: 'crash' | 'hang' | 'crash-after-commit' | 'slow-commit' };

/** How long the injected slow commit sits inside its transaction (a stalled disk). */
export const SLOW_COMMIT_FAULT_MS = 1_500;

export type FromWriterThread =
  | { type: 'ready' }
  /** a commit held local writes (the cluster tells its peers to pull) */
  | { type: 'committed' }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };

/** Indexes into the writer's Float64Array of shared counters. */
export const WriterSlot = {
  /** incremented every heartbeatIntervalMs while the event loop turns */
  beats: 0,
  /** 1 while inside a SQLite transaction (a slow fsync is not a hang) */
  inCommit: 1,
  commits: 2,
  /** requests (ops messages, applies, purges) committed */
  requests: 3,
  /** ops and applied entries committed */
  ops: 4,
  /** total ms spent in transactions (BEGIN to COMMIT; the WAL sync of durability full runs after, see syncMsTotal) */
  commitMsTotal: 5,
  commitMsMax: 6,
  /** most requests in one commit */
  batchMax: 7,
  failedCommits: 8,
  /** WAL fdatasyncs started and finished (durability full); a gap that stops moving is a stalled disk */
  syncsStarted: 9,
  syncsDone: 10,
  syncMsTotal: 11,
} as const;
export const WRITER_SLOTS = 12;

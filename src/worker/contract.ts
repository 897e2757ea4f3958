// The thread contract between the supervisor and a processor: what the
// processor is started with, the messages both ways, and the layout of the
// shared counters/heartbeat memory that the supervisor reads without the
// processor's help (so a processor stuck in a loop is still seen).

import type { MessagePort } from 'node:worker_threads';
import type { Durability, Limits } from '../config/config.ts';

export interface ProcessorData {
  daemonId: string;
  /** the daemon's origin (config: originOf(id)), written with local writes */
  origin: number;
  host: string;
  port: number;
  dbFile: string;
  slot: number;
  limits: Limits;
  durability: Durability;
  allowShutdown: boolean;
  heartbeatIntervalMs: number;
  /** part of a cluster: report GET misses so the key is fetched from a peer */
  reportKeyMisses: boolean;
  /** part of a cluster: a DEL leaves a tombstone for the replicas (a lone daemon removes the row) */
  keepTombstones: boolean;
  /** a READ_THROUGH GET waits at most this long for the fetch */
  readThroughTimeoutMs: number;
  /** Float64Array view, layout StatSlot */
  stats: SharedArrayBuffer;
  /** request and commit metrics (src/metrics/counters.ts), written by this processor only */
  metrics: SharedArrayBuffer;
  /** SharedClock buffer shared by every processor of the daemon */
  clock: SharedArrayBuffer;
  /** Int32Array[1]: the number of the writer's last commit whose invalidations were posted */
  commitCounter: SharedArrayBuffer;
  /** requests to the group's writer; absent while no writer runs (a 'writer' message brings one) */
  writer?: MessagePort;
  /** the writer's invalidations (keys changed per commit), read synchronously before serving reads */
  invalidations?: MessagePort;
  /** a write that finds no writer (one is being started) waits this long, then fails with STORE_FAILED */
  writerWaitMs: number;
  /** consistency levels in a cluster; null for a lone daemon (every level is ONE) */
  consistency: ConsistencyData | null;
}

export interface ConsistencyData {
  /** level of a PUT/DEL with flag bits 1-2 = 0 (ConsistencyLevel number) */
  defaultWrite: number;
  /** level of a GET with flag bits 1-2 = 0 */
  defaultRead: number;
  /** other daemons of the cluster */
  peers: number;
  /** daemons in a majority, this one included */
  majority: number;
  /** a held write reply becomes OUTCOME_UNKNOWN after this long */
  writeTimeoutMs: number;
  /** BigInt64Array, layout AckSlot: written by the cluster member, read by the processors */
  acks: SharedArrayBuffer;
}

/** Indexes into the group's BigInt64Array of acknowledgement positions. */
export const AckSlot = {
  /** every local write at or below this position of the file's change stream is held by a majority */
  majority: 0,
  /** … by every daemon */
  all: 1,
  /** peers heard from recently (see cluster.peerReachableMs) */
  reachablePeers: 2,
  /** until this time (µs of process.hrtime, a monotonic clock shared by the threads) the local store answers MAJORITY reads: the daemon holds read leases from every peer */
  localReadsUntilUs: 3,
} as const;
export const ACK_SLOTS = 4;

/** The monotonic clock of AckSlot.localReadsUntilUs, in µs. */
export function monotonicUs(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** A row as a quorum read returns it: value null = deleted. */
export interface ReadEntry {
  value: Uint8Array | null;
  ts: bigint;
}

/** Indexes into the processor's Float64Array of shared stats. */
export const StatSlot = {
  /** incremented every heartbeatIntervalMs while the event loop turns (a count, not a time: no clock is compared across threads) */
  beats: 0,
  requests: 1,
  errors: 2,
  connections: 3,
  bytesIn: 4,
  bytesOut: 5,
  refusedConnections: 6,
} as const;
export const STAT_SLOTS = 7;

export type ToProcessor =
  /** stop accepting, finish in-flight requests, close the store, exit */
  | { type: 'drain'; timeoutMs: number }
  /** fault injection for tests (only sent when the config enables it) */
  | { type: 'fault'; fault: 'crash' | 'hang' }
  /** the fetch of a key this processor asked for with wait=true has finished (found or not) */
  | { type: 'key-fetched'; key: string }
  /** the acknowledgement positions (AckSlot) moved */
  | { type: 'acked' }
  /** a quorum read finished; entries[i] for keys[i] of the request (null: no row anywhere asked) */
  | { type: 'quorum-read-done'; id: number; ok: boolean; entries: (ReadEntry | null)[] }
  /** a (new) writer: requests go to `port`, invalidations come on `invalidations` */
  | { type: 'writer'; port: MessagePort; invalidations: MessagePort }
  /** the writer died: what is in flight has an unknown outcome; wait for the next 'writer' */
  | { type: 'writer-down' };

export type FromProcessor =
  | { type: 'ready' }
  /** a client sent SHUT_DOWN from loopback and the config allows it */
  | { type: 'shutdown-requested'; from: string }
  /** GETs at MAJORITY: read these keys from a majority of the cluster; answered with 'quorum-read-done' */
  | { type: 'quorum-read'; id: number; keys: string[] }
  /** a GET missed this key; wait=true: a READ_THROUGH request waits for 'key-fetched' */
  | { type: 'key-miss'; key: string; wait: boolean }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };

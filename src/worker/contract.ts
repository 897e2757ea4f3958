// The thread contract between the supervisor and a processor: what the
// processor is started with, the messages both ways, and the layout of the
// shared counters/heartbeat memory that the supervisor reads without the
// processor's help (so a processor stuck in a loop is still seen).

import type { MessagePort } from 'node:worker_threads';
import type { Durability, Limits } from '../config/config.ts';

export interface ProcessorData {
  daemonId: string;
  /** small integer id of the daemon, written as the origin of local writes */
  daemonIndex: number;
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
  /** a (new) writer: requests go to `port`, invalidations come on `invalidations` */
  | { type: 'writer'; port: MessagePort; invalidations: MessagePort }
  /** the writer died: what is in flight has an unknown outcome; wait for the next 'writer' */
  | { type: 'writer-down' };

export type FromProcessor =
  | { type: 'ready' }
  /** a client sent SHUT_DOWN from loopback and the config allows it */
  | { type: 'shutdown-requested'; from: string }
  /** a GET missed this key; wait=true: a READ_THROUGH request waits for 'key-fetched' */
  | { type: 'key-miss'; key: string; wait: boolean }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };

// Executes one batch of decoded requests against the store: the kv739
// semantics of every command. Writes of a batch share one transaction (group
// commit); replies are computed here and sent by the caller after commit.

import {
  Command,
  ErrorCode,
  Flag,
  errorReply,
  validateRequest,
  type ErrorCodeNumber,
  type Frame,
  type FrameFields,
} from '../protocol/index.ts';
import { StoreError, type Store, type Versioned } from '../store/store.ts';
import type { SharedClock } from '../store/clock.ts';

export interface Request {
  frame: Frame;
  /** the client's address, for commands allowed only from loopback */
  remote: string;
  /** set by the caller for requests refused before execution */
  refused?: ErrorCodeNumber;
  reply?: FrameFields;
  /** a READ_THROUGH GET that missed: its reply waits until this key is fetched */
  awaitKey?: string;
  /** the consistency level it runs at (ConsistencyLevel; ONE outside a cluster) */
  level?: number;
  /** its reply waits for the cluster (consistency.ts) */
  held?: boolean;
  /** performance.now() when its bytes were read, for the latency metric */
  receivedAtMs?: number;
}

export interface HandlerEnv {
  store: Store;
  clock: SharedClock;
  /** called for a SHUT_DOWN that passed validation; returns the error to reply, or 0 to accept */
  shutdown: (req: Request) => ErrorCodeNumber | 0;
  onStoreError: (e: StoreError) => void;
  /** called after a batch with writes committed (cluster mode) */
  onCommitted?: () => void;
  /** called for a GET of a key this store has no row for, not even a tombstone (cluster mode) */
  onKeyMiss?: (key: string, readThrough: boolean) => void;
}

export const isWrite = (r: Request): boolean => !r.refused && (r.frame.command === Command.PUT || r.frame.command === Command.DEL);

function found(id: bigint, key: string, v: Versioned | undefined): FrameFields {
  return v
    ? { id, command: Command.OK, key, value: v.value, valueTimestamp: v.timestamp }
    : { id, command: Command.NO_VAL, key };
}

function timestampReply(id: bigint, key: string, ts: bigint | undefined): FrameFields {
  return ts === undefined ? { id, command: Command.NO_VAL, key } : { id, command: Command.OK, key, valueTimestamp: ts };
}

function execute(env: HandlerEnv, req: Request): FrameFields {
  const f = req.frame;
  if (req.refused) return errorReply(f.id, req.refused);
  const invalid = validateRequest(f);
  if (invalid) return errorReply(f.id, invalid);
  const { store, clock } = env;
  const stamp = (old: bigint) => clock.next(old);
  switch (f.command) {
    case Command.GET: {
      const v = store.read(f.key);
      // a tombstone (null) is an answer; only a key without any row may still be on its way from a peer;
      // a quorum read (level MAJORITY) asks the cluster anyway
      if (v === undefined && env.onKeyMiss && (req.level ?? 1) === 1) {
        const readThrough = (f.flag & Flag.READ_THROUGH) !== 0;
        env.onKeyMiss(f.key, readThrough);
        if (readThrough) req.awaitKey = f.key;
      }
      return found(f.id, f.key, v ?? undefined);
    }
    case Command.PUT:
      return found(f.id, f.key, store.put(f.key, Buffer.from(f.value.buffer, f.value.byteOffset, f.value.length), stamp));
    case Command.DEL:
      return found(f.id, f.key, store.del(f.key, stamp));
    case Command.GET_TS:
      return timestampReply(f.id, f.key, store.getTimestamp(f.key));
    case Command.GET_LAST_TS:
      return timestampReply(f.id, '', store.lastTimestamp());
    case Command.GET_FIRST_TS:
      return timestampReply(f.id, '', store.firstTimestamp());
    case Command.CHK:
    case Command.INIT:
      return { id: f.id, command: Command.OK };
    case Command.GET_META:
    case Command.PUT_META:
      return errorReply(f.id, ErrorCode.UNSUPPORTED);
    case Command.SHUT_DOWN: {
      const refusal = env.shutdown(req);
      return refusal ? errorReply(f.id, refusal) : { id: f.id, command: Command.OK };
    }
    default:
      return errorReply(f.id, ErrorCode.UNKNOWN_COMMAND);
  }
}

/** The reply to a GET read again from the store (after a read-through fetch). */
export function rereadGet(env: HandlerEnv, req: Request): FrameFields {
  return found(req.frame.id, req.frame.key, env.store.get(req.frame.key));
}

/**
 * Fills `reply` of every request. A batch with writes runs in one transaction
 * (reads in it see the earlier writes of the batch); if the transaction
 * fails, every write gets STORE_FAILED and the reads are answered again from
 * the committed state, so no reply shows data that was rolled back.
 */
export function executeBatch(env: HandlerEnv, batch: Request[]): void {
  if (!batch.some(isWrite)) {
    for (const r of batch) r.reply = execute(env, r);
    return;
  }
  try {
    env.store.writeBatch(() => {
      for (const r of batch) r.reply = execute(env, r);
    });
    env.onCommitted?.();
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    env.onStoreError(e);
    for (const r of batch) r.reply = isWrite(r) ? errorReply(r.frame.id, ErrorCode.STORE_FAILED) : execute(env, r);
  }
}

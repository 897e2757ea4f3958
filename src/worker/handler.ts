// The kv739 semantics of every command, split by where it runs: reads and
// non-store commands execute here on the processor's read connection; writes
// (and reads that must see a write of the same connection still being
// committed) become ops for the group's writer thread, and their replies are
// built from the writer's results.

import {
  Command,
  ConsistencyLevel,
  ErrorCode,
  Flag,
  errorReply,
  validateRequest,
  type ErrorCodeNumber,
  type Frame,
  type FrameFields,
} from '../protocol/index.ts';
import type { Store } from '../store/store.ts';
import { OpKind, type OpResult, type WriteOp } from '../writer/contract.ts';

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
  /** PUT/DEL: the change-stream position the writer gave it */
  seq?: bigint;
  /** performance.now() when its bytes were read, for the latency metric */
  receivedAtMs?: number;
}

export interface HandlerEnv {
  store: Store;
  /** called for a SHUT_DOWN that passed validation; returns the error to reply, or 0 to accept */
  shutdown: (req: Request) => ErrorCodeNumber | 0;
  /** called for a GET of a key this store has no row for, not even a tombstone (cluster mode) */
  onKeyMiss?: (key: string, readThrough: boolean) => void;
}

export const isWrite = (r: Request): boolean => !r.refused && (r.frame.command === Command.PUT || r.frame.command === Command.DEL);

const READ_KINDS: Partial<Record<number, WriteOp['kind']>> = {
  [Command.GET]: OpKind.GET,
  [Command.GET_TS]: OpKind.GET_TS,
  [Command.GET_LAST_TS]: OpKind.GET_LAST_TS,
  [Command.GET_FIRST_TS]: OpKind.GET_FIRST_TS,
};

/**
 * The writer op of a valid PUT or DEL, or (with `afterWrite`: the connection
 * has a write in flight) of a valid store read, which must then run after
 * that write. Undefined: the request is answered here.
 */
export function writerOp(req: Request, afterWrite: boolean): WriteOp | undefined {
  if (req.refused) return undefined;
  const f = req.frame;
  const isStoreRead = READ_KINDS[f.command] !== undefined;
  if (!isWrite(req) && !(afterWrite && isStoreRead)) return undefined;
  if (validateRequest(f)) return undefined;
  if (f.command === Command.PUT) return { kind: OpKind.PUT, key: f.key, value: f.value };
  if (f.command === Command.DEL) return { kind: OpKind.DEL, key: f.key };
  return { kind: READ_KINDS[f.command]!, key: f.key };
}

function found(id: bigint, key: string, v: { value: Uint8Array; timestamp: bigint } | undefined): FrameFields {
  return v
    ? { id, command: Command.OK, key, value: v.value, valueTimestamp: v.timestamp }
    : { id, command: Command.NO_VAL, key };
}

function timestampReply(id: bigint, key: string, ts: bigint | undefined): FrameFields {
  return ts === undefined ? { id, command: Command.NO_VAL, key } : { id, command: Command.OK, key, valueTimestamp: ts };
}

/** `v`: the row's live value, null for a tombstone (an answer: no fetch), undefined when the key has no row here. */
function getReply(env: HandlerEnv, req: Request, v: { value: Uint8Array; timestamp: bigint } | null | undefined): FrameFields {
  const f = req.frame;
  // only a key without any row may still be on its way from a peer; a quorum read (level MAJORITY) asks the cluster anyway
  if (v === undefined && env.onKeyMiss && (req.level ?? ConsistencyLevel.ONE) === ConsistencyLevel.ONE) {
    const readThrough = (f.flag & Flag.READ_THROUGH) !== 0;
    env.onKeyMiss(f.key, readThrough);
    if (readThrough) req.awaitKey = f.key;
  }
  return found(f.id, f.key, v ?? undefined);
}

/** Answers a request on this thread (everything but writes). */
export function executeLocal(env: HandlerEnv, req: Request): FrameFields {
  const f = req.frame;
  if (req.refused) return errorReply(f.id, req.refused);
  const invalid = validateRequest(f);
  if (invalid) return errorReply(f.id, invalid);
  const { store } = env;
  switch (f.command) {
    case Command.GET:
      return getReply(env, req, store.read(f.key));
    case Command.PUT:
    case Command.DEL:
      throw new Error('a write must go to the writer (invariant)');
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

/** The reply to a request the writer executed, from its result. */
export function replyFromResult(env: HandlerEnv, req: Request, r: OpResult): FrameFields {
  const f = req.frame;
  const v = r.value === null || r.ts === null ? undefined : { value: r.value, timestamp: r.ts };
  switch (f.command) {
    case Command.GET:
      return getReply(env, req, v);
    case Command.PUT:
    case Command.DEL:
      return found(f.id, f.key, v);
    case Command.GET_TS:
      return timestampReply(f.id, f.key, r.ts ?? undefined);
    default:
      return timestampReply(f.id, '', r.ts ?? undefined);
  }
}

/**
 * The reply to a request whose writer transaction did not commit (`lost`:
 * the writer died and may or may not have committed it). A write is never
 * answered OK then; a read is answered again from committed state.
 */
export function replyWithoutCommit(env: HandlerEnv, req: Request, lost: boolean): FrameFields {
  if (isWrite(req)) return errorReply(req.frame.id, lost ? ErrorCode.OUTCOME_UNKNOWN : ErrorCode.STORE_FAILED);
  return executeLocal(env, req);
}

/** The reply to a GET read again from the store (after a read-through fetch). */
export function rereadGet(env: HandlerEnv, req: Request): FrameFields {
  return found(req.frame.id, req.frame.key, env.store.get(req.frame.key));
}

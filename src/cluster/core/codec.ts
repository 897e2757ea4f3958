// Bytes <-> Message for the core's messages (the payload the peer transport
// carries). Layout: one version byte (CODEC_VERSION), then UTF-8 JSON of the
// message. Bigints (timestamps) travel as decimal strings, values as base64.
// Entries are {k, v, t, o}. decodeMessage validates every field (type, range,
// size, no unknown field) and never throws: anything wrong is {ok: false}.

import type { Message, MessageType } from './messages.ts';
import type { DaemonStatus, Entry } from './types.ts';

export const CODEC_VERSION = 1;

export interface CodecLimits {
  maxMessageBytes: number;
  maxEntries: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxBuckets: number;
}

export const defaultCodecLimits: Readonly<CodecLimits> = Object.freeze({
  maxMessageBytes: 8 * 1024 * 1024,
  maxEntries: 4096,
  maxKeyBytes: 128,
  maxValueBytes: 2048,
  maxBuckets: 65536,
});

const MAX_CURSOR_CHARS = 256;
const MAX_GROUPS = 256;
const MAX_GROUP_CHARS = 64;
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,18})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const INT63_MAX = (1n << 63n) - 1n;

/**
 * Upper bound of one encoded entry: a 128-byte key whose every character
 * needs a JSON escape, a 2048-byte value in base64, a 20-digit timestamp, an
 * origin, field names and separators.
 */
const MAX_ENCODED_ENTRY_BYTES = 2 * 128 + 2732 + 20 + 20 + 64;
/** Room for everything else in a Changes / BucketEntries message (type, reqId, cursor). */
const MESSAGE_OVERHEAD_BYTES = 1024;

/** How many entries one message may carry so that it never exceeds `maxMessageBytes`, at most `cap`. */
export function entriesPerMessage(maxMessageBytes: number, cap: number): number {
  return Math.max(1, Math.min(cap, Math.floor((maxMessageBytes - MESSAGE_OVERHEAD_BYTES) / MAX_ENCODED_ENTRY_BYTES)));
}

export type DecodeResult = { ok: true; msg: Message } | { ok: false; error: string };

const encodeEntry = (e: Entry) => ({
  k: e.key,
  v: e.value === null ? null : Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).toString('base64'),
  t: e.ts.toString(),
  o: e.origin,
});

export function encodeMessage(msg: Message): Buffer {
  const wire: Record<string, unknown> = { ...msg };
  if ('entries' in msg && msg.type !== 'readReply') wire.entries = msg.entries.map(encodeEntry);
  if (msg.type === 'readReply') wire.entries = msg.entries.map((e) => (e === null ? null : encodeEntry(e)));
  if (msg.type === 'hasKey') wire.entry = msg.entry === null ? null : encodeEntry(msg.entry);
  if (msg.type === 'heartbeatReply') wire.status = { ...msg.status, lastWriteTs: msg.status.lastWriteTs.toString() };
  const json = Buffer.from(JSON.stringify(wire), 'utf8');
  const out = Buffer.allocUnsafe(1 + json.length);
  out[0] = CODEC_VERSION;
  json.copy(out, 1);
  return out;
}

/** A field failed validation; caught inside decodeMessage only. */
class Invalid extends Error {}

function fail(what: string): never {
  throw new Invalid(what);
}

type Obj = Record<string, unknown>;

function object(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${path} must be an object`);
  const o = v as Obj;
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${path} has unknown field ${JSON.stringify(k)}`);
  for (const k of keys) if (!Object.hasOwn(o, k)) fail(`${path}.${k} is missing`);
  return o;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(`${path} must be an integer in [${min}, ${max}]`);
  return v;
}

function finite(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${path} must be a finite number`);
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(`${path} must be a boolean`);
  return v;
}

function str(v: unknown, path: string, maxChars: number, minChars = 0): string {
  if (typeof v !== 'string' || v.length < minChars || v.length > maxChars) fail(`${path} must be a string of ${minChars}-${maxChars} chars`);
  return v;
}

function nodeId(v: unknown, path: string): string {
  if (typeof v !== 'string' || !NODE_ID.test(v)) fail(`${path} must be a daemon id`);
  return v;
}

function bigintField(v: unknown, path: string): bigint {
  if (typeof v !== 'string' || !DECIMAL.test(v)) fail(`${path} must be a decimal string`);
  const n = BigInt(v);
  if (n > INT63_MAX) fail(`${path} is above 2^63-1`);
  return n;
}

function array(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(`${path} must be an array`);
  if (v.length > max) fail(`${path} has more than ${max} items`);
  return v;
}

function key(v: unknown, path: string, limits: CodecLimits): string {
  const k = str(v, path, limits.maxKeyBytes, 1);
  if (Buffer.byteLength(k, 'utf8') > limits.maxKeyBytes) fail(`${path} is longer than ${limits.maxKeyBytes} bytes`);
  return k;
}

function entry(v: unknown, path: string, limits: CodecLimits): Entry {
  const o = object(v, path, ['k', 'v', 't', 'o']);
  let value: Uint8Array | null = null;
  if (o.v !== null) {
    const b64 = str(o.v, `${path}.v`, Math.ceil(limits.maxValueBytes / 3) * 4);
    if (!BASE64.test(b64) || b64.length % 4 !== 0) fail(`${path}.v must be base64`);
    value = Buffer.from(b64, 'base64');
    if (value.length > limits.maxValueBytes) fail(`${path}.v is longer than ${limits.maxValueBytes} bytes`);
  }
  return { key: key(o.k, `${path}.k`, limits), value, ts: bigintField(o.t, `${path}.t`), origin: int(o.o, `${path}.o`, 0, 65535) };
}

function entries(v: unknown, path: string, limits: CodecLimits): Entry[] {
  return array(v, path, limits.maxEntries).map((e, i) => entry(e, `${path}[${i}]`, limits));
}

function status(v: unknown, path: string): DaemonStatus {
  const o = object(v, path, ['processorsAlive', 'restarts', 'degradedGroups', 'keyCount', 'streamId', 'lastWriteTs']);
  return {
    processorsAlive: int(o.processorsAlive, `${path}.processorsAlive`, 0, 1_000_000),
    restarts: int(o.restarts, `${path}.restarts`, 0, Number.MAX_SAFE_INTEGER),
    degradedGroups: array(o.degradedGroups, `${path}.degradedGroups`, MAX_GROUPS).map((g, i) => str(g, `${path}.degradedGroups[${i}]`, MAX_GROUP_CHARS, 1)),
    keyCount: int(o.keyCount, `${path}.keyCount`, 0, Number.MAX_SAFE_INTEGER),
    streamId: str(o.streamId, `${path}.streamId`, 64),
    lastWriteTs: bigintField(o.lastWriteTs, `${path}.lastWriteTs`),
  };
}

const reqId = (v: unknown, path: string) => int(v, path, 0, Number.MAX_SAFE_INTEGER);
const cursor = (v: unknown, path: string) => (v === null ? null : str(v, path, MAX_CURSOR_CHARS));

/** The fields of each type besides type/term/from, and how to read the body. */
const BODIES: { [T in MessageType]: { keys: readonly string[]; read: (o: Obj, l: CodecLimits) => Omit<Extract<Message, { type: T }>, 'type' | 'term' | 'from'> } } = {
  preVote: { keys: [], read: () => ({}) },
  preVoteReply: { keys: ['granted'], read: (o) => ({ granted: bool(o.granted, 'granted') }) },
  vote: { keys: [], read: () => ({}) },
  voteReply: { keys: ['granted'], read: (o) => ({ granted: bool(o.granted, 'granted') }) },
  heartbeat: { keys: ['sentAtMs'], read: (o) => ({ sentAtMs: finite(o.sentAtMs, 'sentAtMs') }) },
  heartbeatReply: {
    keys: ['echoSentAtMs', 'wallClockMs', 'status'],
    read: (o) => ({ echoSentAtMs: finite(o.echoSentAtMs, 'echoSentAtMs'), wallClockMs: finite(o.wallClockMs, 'wallClockMs'), status: status(o.status, 'status') }),
  },
  stale: { keys: [], read: () => ({}) },
  notify: { keys: [], read: () => ({}) },
  pull: { keys: ['reqId', 'cursor'], read: (o) => ({ reqId: reqId(o.reqId, 'reqId'), cursor: cursor(o.cursor, 'cursor') }) },
  changes: {
    keys: ['reqId', 'entries', 'cursor', 'more', 'lease'],
    read: (o, l) => ({
      reqId: reqId(o.reqId, 'reqId'),
      entries: entries(o.entries, 'entries', l),
      cursor: str(o.cursor, 'cursor', MAX_CURSOR_CHARS),
      more: bool(o.more, 'more'),
      lease: bool(o.lease, 'lease'),
    }),
  },
  cursorRequest: { keys: ['reqId'], read: (o) => ({ reqId: reqId(o.reqId, 'reqId') }) },
  cursorReply: { keys: ['reqId', 'cursor'], read: (o) => ({ reqId: reqId(o.reqId, 'reqId'), cursor: cursor(o.cursor, 'cursor') }) },
  whoHas: { keys: ['reqId', 'key'], read: (o, l) => ({ reqId: reqId(o.reqId, 'reqId'), key: key(o.key, 'key', l) }) },
  hasKey: {
    keys: ['reqId', 'key', 'entry'],
    read: (o, l) => {
      const k = key(o.key, 'key', l);
      const e = o.entry === null ? null : entry(o.entry, 'entry', l);
      if (e !== null && e.key !== k) fail('entry.k differs from key');
      return { reqId: reqId(o.reqId, 'reqId'), key: k, entry: e };
    },
  },
  digestRequest: { keys: ['reqId', 'buckets'], read: (o, l) => ({ reqId: reqId(o.reqId, 'reqId'), buckets: int(o.buckets, 'buckets', 1, l.maxBuckets) }) },
  digests: {
    keys: ['reqId', 'digests'],
    read: (o, l) => ({ reqId: reqId(o.reqId, 'reqId'), digests: array(o.digests, 'digests', l.maxBuckets).map((d, i) => int(d, `digests[${i}]`, 0, 0xffffffff)) }),
  },
  bucketRequest: {
    keys: ['reqId', 'bucket', 'buckets', 'afterKey'],
    read: (o, l) => {
      const buckets = int(o.buckets, 'buckets', 1, l.maxBuckets);
      return {
        reqId: reqId(o.reqId, 'reqId'),
        bucket: int(o.bucket, 'bucket', 0, buckets - 1),
        buckets,
        afterKey: o.afterKey === null ? null : key(o.afterKey, 'afterKey', l),
      };
    },
  },
  bucketEntries: {
    keys: ['reqId', 'entries', 'more'],
    read: (o, l) => ({ reqId: reqId(o.reqId, 'reqId'), entries: entries(o.entries, 'entries', l), more: bool(o.more, 'more') }),
  },
  repairHint: {
    keys: ['buckets', 'bucketList'],
    read: (o, l) => {
      const buckets = int(o.buckets, 'buckets', 1, l.maxBuckets);
      return { buckets, bucketList: array(o.bucketList, 'bucketList', l.maxBuckets).map((b, i) => int(b, `bucketList[${i}]`, 0, buckets - 1)) };
    },
  },
  readRequest: {
    keys: ['reqId', 'keys'],
    read: (o, l) => ({ reqId: reqId(o.reqId, 'reqId'), keys: array(o.keys, 'keys', l.maxEntries).map((k, i) => key(k, `keys[${i}]`, l)) }),
  },
  readReply: {
    keys: ['reqId', 'synced', 'entries'],
    read: (o, l) => ({
      reqId: reqId(o.reqId, 'reqId'),
      synced: bool(o.synced, 'synced'),
      entries: array(o.entries, 'entries', l.maxEntries).map((e, i) => (e === null ? null : entry(e, `entries[${i}]`, l))),
    }),
  },
  retryGroups: {
    keys: ['groups'],
    read: (o) => ({ groups: array(o.groups, 'groups', MAX_GROUPS).map((g, i) => str(g, `groups[${i}]`, MAX_GROUP_CHARS, 1)) }),
  },
};

export function decodeMessage(buf: Uint8Array, limits: CodecLimits = defaultCodecLimits): DecodeResult {
  if (buf.length < 2) return { ok: false, error: 'message too short' };
  if (buf.length > limits.maxMessageBytes) return { ok: false, error: `message longer than ${limits.maxMessageBytes} bytes` };
  if (buf[0] !== CODEC_VERSION) return { ok: false, error: `unknown codec version ${buf[0]}` };
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(1)));
  } catch {
    return { ok: false, error: 'body is not UTF-8 JSON' };
  }
  try {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('message must be an object');
    const type = (raw as Obj).type;
    if (typeof type !== 'string' || !Object.hasOwn(BODIES, type)) fail('unknown message type');
    const body = BODIES[type as MessageType];
    const o = object(raw, type, ['type', 'term', 'from', ...body.keys]);
    const msg = { type, term: int(o.term, 'term', 0, Number.MAX_SAFE_INTEGER), from: nodeId(o.from, 'from'), ...body.read(o, limits) };
    return { ok: true, msg: msg as Message };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    return { ok: false, error: `undecodable message: ${(e as Error).message}` };
  }
}

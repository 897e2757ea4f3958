// The cluster core's message codec: every message type round-trips; bad input
// (truncated, oversized, garbage, wrong version, wrong field types, unknown
// fields, out-of-range numbers) is refused as a value and never throws.
import test from 'ava';
import { CODEC_VERSION, decodeMessage, defaultCodecLimits, encodeMessage, entriesPerMessage, type Entry, type Message } from '../src/cluster/core/index.ts';
import { Rng } from './sim/simulator.ts';

const live: Entry = { key: 'apple', value: Uint8Array.from([0, 1, 2, 255]), ts: 1_732_000_000_123_456n, origin: 2 };
const tomb: Entry = { key: 'pear', value: null, ts: (1n << 63n) - 1n, origin: 0 };
const empty: Entry = { key: 'k'.repeat(128), value: new Uint8Array(0), ts: 0n, origin: 65535 };
const status = { processorsAlive: 2, restarts: 1, degradedGroups: ['7391'], keyCount: 10, streamId: 'abc', lastWriteTs: 1_732_000_000_000_000n };

const samples: Message[] = [
  { type: 'preVote', term: 4, from: 'kv-0' },
  { type: 'preVoteReply', term: 4, from: 'kv-1', granted: true },
  { type: 'vote', term: 4, from: 'kv-0' },
  { type: 'voteReply', term: 4, from: 'kv-2', granted: false },
  { type: 'heartbeat', term: 9, from: 'kv-0', sentAtMs: 1234.5 },
  { type: 'heartbeatReply', term: 9, from: 'kv-1', echoSentAtMs: 1234.5, wallClockMs: 1_732_000_000_000, status },
  { type: 'stale', term: 10, from: 'kv-2' },
  { type: 'notify', term: 0, from: 'kv-1' },
  { type: 'pull', term: 3, from: 'kv-1', reqId: 2 ** 52, cursor: null },
  { type: 'pull', term: 3, from: 'kv-1', reqId: 7, cursor: 'abc:42' },
  { type: 'changes', term: 3, from: 'kv-0', reqId: 7, entries: [live, tomb, empty], cursor: 'abc:45', more: true, lease: true },
  { type: 'changes', term: 3, from: 'kv-0', reqId: 8, entries: [], cursor: 'abc:45', more: false, lease: false },
  { type: 'cursorRequest', term: 3, from: 'kv-0', reqId: 11 },
  { type: 'cursorReply', term: 3, from: 'kv-1', reqId: 11, cursor: 'abc:45' },
  { type: 'cursorReply', term: 3, from: 'kv-1', reqId: 11, cursor: null },
  { type: 'whoHas', term: 3, from: 'kv-2', reqId: 1, key: 'apple' },
  { type: 'hasKey', term: 3, from: 'kv-0', reqId: 1, key: 'apple', entry: live },
  { type: 'hasKey', term: 3, from: 'kv-0', reqId: 1, key: 'nope', entry: null },
  { type: 'digestRequest', term: 3, from: 'kv-0', reqId: 5, buckets: 256 },
  { type: 'digests', term: 3, from: 'kv-1', reqId: 5, digests: [0, 1, 0xffffffff] },
  { type: 'bucketRequest', term: 3, from: 'kv-1', reqId: 6, bucket: 255, buckets: 256, afterKey: null },
  { type: 'bucketRequest', term: 3, from: 'kv-1', reqId: 6, bucket: 0, buckets: 1, afterKey: 'apple' },
  { type: 'bucketEntries', term: 3, from: 'kv-0', reqId: 6, entries: [tomb], more: false },
  { type: 'repairHint', term: 3, from: 'kv-0', buckets: 256, bucketList: [1, 200] },
  { type: 'retryGroups', term: 3, from: 'kv-0', groups: ['7390', '7391'] },
];

/** The JSON body of an encoded message, to build malformed variants. */
const body = (m: Message): Record<string, unknown> => JSON.parse(encodeMessage(m).subarray(1).toString('utf8'));
const raw = (o: unknown, version = CODEC_VERSION): Buffer => Buffer.concat([Buffer.of(version), Buffer.from(JSON.stringify(o), 'utf8')]);

test('every message type round-trips, bigints and binary values intact', (t) => {
  const types = new Set(samples.map((m) => m.type));
  t.is(types.size, 20, 'one sample per message type at least');
  for (const m of samples) {
    const r = decodeMessage(encodeMessage(m));
    t.true(r.ok, `${m.type}: ${r.ok ? '' : r.error}`);
    if (r.ok) t.deepEqual(normalize(r.msg), normalize(m), m.type);
  }
});

test('the first byte is the codec version; another version is refused', (t) => {
  const bytes = encodeMessage(samples[0]);
  t.is(bytes[0], CODEC_VERSION);
  for (const v of [0, 2, 255]) {
    const r = decodeMessage(Buffer.concat([Buffer.of(v), bytes.subarray(1)]));
    t.false(r.ok);
    if (!r.ok) t.regex(r.error, /version/);
  }
});

test('every truncation of every message is refused', (t) => {
  for (const m of samples) {
    const bytes = encodeMessage(m);
    for (let n = 0; n < bytes.length; n++) t.false(decodeMessage(bytes.subarray(0, n)).ok, `${m.type} cut at ${n}`);
  }
});

test('oversized messages and over-limit fields are refused', (t) => {
  const limits = { ...defaultCodecLimits, maxMessageBytes: 1024 };
  const big: Message = { type: 'changes', term: 1, from: 'a', reqId: 1, entries: [{ ...live, value: new Uint8Array(2048) }], cursor: 'c', more: false, lease: false };
  t.false(decodeMessage(encodeMessage(big), limits).ok, 'over maxMessageBytes');
  t.true(decodeMessage(encodeMessage(big)).ok, 'a 2048-byte value is within the default limits');
  const refused: Message[] = [
    { ...big, entries: [{ ...live, value: new Uint8Array(2049) }] } as Message,
    { ...big, entries: [{ ...live, key: 'k'.repeat(129) }] } as Message,
    { ...big, entries: [{ ...live, key: '' }] } as Message,
    { ...big, entries: Array.from({ length: defaultCodecLimits.maxEntries + 1 }, () => tomb) } as Message,
    { type: 'digests', term: 1, from: 'a', reqId: 1, digests: new Array(defaultCodecLimits.maxBuckets + 1).fill(0) },
    { type: 'retryGroups', term: 1, from: 'a', groups: new Array(257).fill('g') },
    { type: 'pull', term: 1, from: 'a', reqId: 1, cursor: 'c'.repeat(257) },
  ];
  refused.forEach((m, i) => t.false(decodeMessage(encodeMessage(m)).ok, `refused[${i}]`));
});

test('wrong field types, ranges, unknown and missing fields are refused', (t) => {
  const changes = body(samples.find((m) => m.type === 'changes')!);
  const entry = (changes.entries as Record<string, unknown>[])[0];
  const variants: Array<[string, unknown]> = [
    ['term negative', { ...changes, term: -1 }],
    ['term fraction', { ...changes, term: 1.5 }],
    ['term string', { ...changes, term: '1' }],
    ['term above safe integer', { ...changes, term: 2 ** 53 }],
    ['from empty', { ...changes, from: '' }],
    ['from with a space', { ...changes, from: 'kv 0' }],
    ['reqId null', { ...changes, reqId: null }],
    ['unknown field', { ...changes, extra: 1 }],
    ['missing field', { ...changes, more: undefined }],
    ['more not boolean', { ...changes, more: 'yes' }],
    ['entries not array', { ...changes, entries: {} }],
    ['entry ts number', { ...changes, entries: [{ ...entry, t: 5 }] }],
    ['entry ts negative', { ...changes, entries: [{ ...entry, t: '-5' }] }],
    ['entry ts above 2^63-1', { ...changes, entries: [{ ...entry, t: (1n << 63n).toString() }] }],
    ['entry ts leading zero', { ...changes, entries: [{ ...entry, t: '05' }] }],
    ['entry value not base64', { ...changes, entries: [{ ...entry, v: '!!!!' }] }],
    ['entry origin too big', { ...changes, entries: [{ ...entry, o: 65536 }] }],
    ['entry extra field', { ...changes, entries: [{ ...entry, x: 1 }] }],
    ['unknown type', { ...changes, type: 'changez' }],
    ['type missing', { ...changes, type: undefined }],
    ['prototype key as type', { ...changes, type: 'constructor' }],
    ['bucket >= buckets', { type: 'bucketRequest', term: 1, from: 'a', reqId: 1, bucket: 8, buckets: 8, afterKey: null }],
    ['buckets zero', { type: 'digestRequest', term: 1, from: 'a', reqId: 1, buckets: 0 }],
    ['digest above 32 bits', { type: 'digests', term: 1, from: 'a', reqId: 1, digests: [2 ** 32] }],
    ['hasKey entry of another key', { ...body(samples.find((m) => m.type === 'hasKey' && m.entry !== null)!), key: 'other' }],
    ['status missing field', { ...body(samples.find((m) => m.type === 'heartbeatReply')!), status: { ...status, lastWriteTs: '1', keyCount: undefined } }],
    ['heartbeat sentAtMs string', { type: 'heartbeat', term: 1, from: 'a', sentAtMs: '5' }],
    ['array instead of object', [1, 2, 3]],
    ['null', null],
    ['number', 42],
  ];
  for (const [what, v] of variants) {
    const r = decodeMessage(raw(v));
    t.false(r.ok, what);
  }
});

test('garbage and random mutations never throw and never decode into an invalid message', (t) => {
  const rng = new Rng(739);
  const garbage = [Buffer.alloc(0), Buffer.of(1), Buffer.of(1, 0xff, 0xfe), Buffer.from('\u0001{"type":'), Buffer.concat([Buffer.of(1), Buffer.from('['.repeat(100_000))])];
  for (const g of garbage) t.false(decodeMessage(g).ok);
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = Buffer.from(encodeMessage(samples[i % samples.length]));
    const flips = 1 + rng.int(0, 3);
    for (let f = 0; f < flips; f++) bytes[rng.int(0, bytes.length - 1)] = rng.int(0, 255);
    const r = decodeMessage(bytes);
    if (r.ok) {
      decoded++;
      // whatever decodes must encode and decode to the same message
      const again = decodeMessage(encodeMessage(r.msg));
      t.true(again.ok);
      if (again.ok) t.deepEqual(normalize(again.msg), normalize(r.msg));
    }
  }
  for (let i = 0; i < 5_000; i++) {
    const random = Buffer.from(Array.from({ length: rng.int(0, 64) }, () => rng.int(0, 255)));
    const r = decodeMessage(random);
    if (r.ok) t.is(random[0], CODEC_VERSION);
  }
  t.log(`${decoded} of 20000 mutated messages were still valid`);
});

/** Buffers and Uint8Arrays compare equal by content. */
function normalize(m: Message): unknown {
  return JSON.parse(
    JSON.stringify(m, (_k, v) => {
      if (typeof v === 'bigint') return `${v}n`;
      if (v instanceof Uint8Array) return [...v];
      if (v && v.type === 'Buffer' && Array.isArray(v.data)) return v.data; // Buffer.toJSON ran first
      return v;
    }),
  );
}

test('a page of the largest entries (every key character escaped) fits the message limit it was sized for', (t) => {
  const key = '"\\'.repeat(64); // printable ASCII that JSON escapes: 128 bytes become 256
  for (const maxMessageBytes of [64 * 1024, 1024 * 1024, defaultCodecLimits.maxMessageBytes]) {
    const n = entriesPerMessage(maxMessageBytes, 100_000);
    const entries: Entry[] = Array.from({ length: n }, () => ({ key, value: new Uint8Array(2048).fill(255), ts: (1n << 63n) - 1n, origin: 255 }));
    const page: Message = { type: 'changes', term: Number.MAX_SAFE_INTEGER, from: 'n'.repeat(64), reqId: Number.MAX_SAFE_INTEGER, entries, cursor: 'c'.repeat(256), more: true, lease: true };
    const bytes = encodeMessage(page).length;
    t.true(bytes <= maxMessageBytes, `${n} entries: ${bytes} bytes <= ${maxMessageBytes}`);
    const limits = { ...defaultCodecLimits, maxMessageBytes, maxEntries: Math.max(n, defaultCodecLimits.maxEntries) };
    t.true(decodeMessage(encodeMessage(page), limits).ok, 'and decodes within that limit');
  }
});

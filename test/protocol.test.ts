// The frame codec against the original design's byte vectors, any chunking,
// validation rules and random input.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  Command,
  ErrorCode,
  FRAME_BYTES,
  FrameReader,
  decodeFrame,
  encodeFrame,
  errorReply,
  validateRequest,
  type Frame,
} from '../src/protocol/index.ts';

const vector = (name: string) => readFileSync(new URL(`./vectors/${name}`, import.meta.url));
const text = (s: string) => Buffer.from(s, 'latin1');

const vectors: Array<[string, Omit<Frame, 'value'> & { value: string }]> = [
  ['get-apple.bin', { id: 0n, command: Command.GET, flag: 0, param: 0n, key: 'apple', value: '', valueTimestamp: 0n }],
  ['put-orange-good.bin', { id: 0n, command: Command.PUT, flag: 0, param: 0n, key: 'orange', value: 'good', valueTimestamp: 0n }],
  ['ok-orange-good-ts.bin', { id: 0n, command: Command.OK, flag: 0, param: 0n, key: 'orange', value: 'good', valueTimestamp: 1574380800123456n }],
  ['no-val.bin', { id: 0n, command: Command.NO_VAL, flag: 0, param: 0n, key: '', value: '', valueTimestamp: 0n }],
  ['error.bin', { id: 0n, command: Command.ERROR, flag: 0, param: 0n, key: '', value: '', valueTimestamp: 0n }],
  ['chk.bin', { id: 0n, command: Command.CHK, flag: 0, param: 0n, key: '', value: '', valueTimestamp: 0n }],
  ['shut-down.bin', { id: 0n, command: Command.SHUT_DOWN, flag: 0, param: 0n, key: '', value: '', valueTimestamp: 0n }],
  ['put-max-key-max-value.bin', { id: 0n, command: Command.PUT, flag: 0, param: 0n, key: 'k'.repeat(128), value: 'v'.repeat(2048), valueTimestamp: 0n }],
  ['get-id-flag-param.bin', { id: 0x0102030405060708n, command: Command.GET, flag: 7, param: -2n, key: 'id-and-param', value: '', valueTimestamp: -1n }],
];

for (const [file, expected] of vectors) {
  test(`vector ${file} decodes to its fields and encodes back to identical bytes`, (t) => {
    const bytes = vector(file);
    t.is(bytes.length, FRAME_BYTES);
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) return t.fail(`decode failed with code ${decoded.error.code}`);
    const { value, ...header } = decoded.frame;
    const { value: expectedValue, ...expectedHeader } = expected;
    t.deepEqual(header, expectedHeader);
    t.is(Buffer.from(value).toString('latin1'), expectedValue);
    t.true(encodeFrame(decoded.frame).equals(bytes));
  });
}

test('valid request vectors pass request validation; reply vectors do not', (t) => {
  for (const [file] of vectors) {
    const d = decodeFrame(vector(file));
    if (!d.ok) return t.fail();
    const isReply = [Command.OK, Command.NO_VAL, Command.ERROR].includes(d.frame.command as 1);
    t.is(validateRequest(d.frame), isReply ? ErrorCode.UNKNOWN_COMMAND : 0, file);
  }
});

function allVectorBytes(): Buffer {
  return Buffer.concat(vectors.map(([f]) => vector(f)));
}

function readAll(chunks: Buffer[]): Buffer[] {
  const reader = new FrameReader();
  const out: Buffer[] = [];
  for (const c of chunks) reader.push(c, (buf, off) => out.push(Buffer.from(buf.subarray(off, off + FRAME_BYTES))));
  t_bufferedZero(reader);
  return out;
}
function t_bufferedZero(reader: FrameReader) {
  if (reader.bufferedBytes !== 0) throw new Error(`reader holds ${reader.bufferedBytes} stray bytes`);
}

test('reader yields identical frames when one frame is split at every byte boundary', (t) => {
  const frame = vector('put-max-key-max-value.bin');
  for (let cut = 1; cut < FRAME_BYTES; cut++) {
    const frames = readAll([frame.subarray(0, cut), frame.subarray(cut)]);
    if (frames.length !== 1 || !frames[0].equals(frame)) return t.fail(`split at ${cut}`);
  }
  t.pass();
});

test('reader handles many frames in one chunk and byte-by-byte feeding', (t) => {
  const all = allVectorBytes();
  t.deepEqual(readAll([all]).map((b) => b.toString('hex')), vectors.map(([f]) => vector(f).toString('hex')));
  const bytewise = readAll([...all].map((b) => Buffer.from([b])));
  t.is(bytewise.length, vectors.length);
  t.true(Buffer.concat(bytewise).equals(all));
});

test('reader handles random chunkings of a frame stream', (t) => {
  const all = allVectorBytes();
  for (let trial = 0; trial < 200; trial++) {
    const chunks: Buffer[] = [];
    let at = 0;
    while (at < all.length) {
      const n = 1 + Math.floor(Math.random() * 9000);
      chunks.push(all.subarray(at, at + n));
      at += n;
    }
    if (!Buffer.concat(readAll(chunks)).equals(all)) return t.fail(`trial ${trial}`);
  }
  t.pass();
});

function frameWith(fields: { command: number; keySize?: number; valueSize?: number; key?: string; nul?: number }): Buffer {
  const f = encodeFrame({ command: fields.command, key: fields.key ?? '' });
  if (fields.keySize !== undefined) f.writeInt32LE(fields.keySize, 24);
  if (fields.valueSize !== undefined) f.writeInt32LE(fields.valueSize, 28);
  if (fields.nul !== undefined) f[40 + (fields.keySize ?? 0)] = fields.nul;
  return f;
}

test('inconsistent sizes give BAD_SIZES and keep the id', (t) => {
  const cases = [
    frameWith({ command: Command.GET, keySize: -1 }),
    frameWith({ command: Command.PUT, valueSize: -5 }),
    frameWith({ command: Command.PUT, keySize: 10, valueSize: 4050, key: 'abcdefghij' }),
    frameWith({ command: Command.GET, keySize: 4056 }),
    frameWith({ command: Command.GET, key: 'abc', keySize: 3, nul: 0x41 }),
  ];
  for (const f of cases) {
    f.writeBigInt64LE(77n, 0);
    const d = decodeFrame(f);
    t.false(d.ok);
    if (!d.ok) {
      t.is(d.error.code, ErrorCode.BAD_SIZES);
      t.is(d.error.id, 77n);
    }
  }
});

test('request validation names each bad key, value and command', (t) => {
  const check = (fields: Parameters<typeof encodeFrame>[0]) => {
    const d = decodeFrame(encodeFrame(fields));
    if (!d.ok) throw new Error('decode');
    return validateRequest(d.frame);
  };
  t.is(check({ command: Command.GET, key: '' }), ErrorCode.KEY_EMPTY);
  t.is(check({ command: Command.GET, key: 'k'.repeat(129) }), ErrorCode.KEY_TOO_LONG);
  t.is(check({ command: Command.GET, key: 'k'.repeat(128) }), 0);
  t.is(check({ command: Command.GET, key: 'a[b' }), ErrorCode.KEY_BAD_CHAR);
  t.is(check({ command: Command.GET, key: 'a]b' }), ErrorCode.KEY_BAD_CHAR);
  t.is(check({ command: Command.GET, key: 'tab\there' }), ErrorCode.KEY_BAD_CHAR);
  t.is(check({ command: Command.GET, key: '\u00e9t\u00e9' }), ErrorCode.KEY_BAD_CHAR);
  t.is(check({ command: Command.GET, key: 'space ok ~!' }), 0);
  t.is(check({ command: Command.PUT, key: 'k', value: text('v'.repeat(2049)) }), ErrorCode.VALUE_TOO_LONG);
  t.is(check({ command: Command.PUT, key: 'k', value: text('v'.repeat(2048)) }), 0);
  t.is(check({ command: Command.PUT, key: 'k' }), 0, 'an empty value is a value');
  t.is(check({ command: 12345 }), ErrorCode.UNKNOWN_COMMAND);
  t.is(check({ command: Command.OK }), ErrorCode.UNKNOWN_COMMAND);
  t.is(check({ command: Command.CHK }), 0);
  t.is(check({ command: Command.DEL, key: 'x' }), 0);
});

test('error replies carry the code in param and a readable message', (t) => {
  const d = decodeFrame(encodeFrame(errorReply(5n, ErrorCode.KEY_TOO_LONG)));
  if (!d.ok) return t.fail();
  t.is(d.frame.command, Command.ERROR);
  t.is(d.frame.id, 5n);
  t.is(d.frame.param, BigInt(ErrorCode.KEY_TOO_LONG));
  t.regex(Buffer.from(d.frame.value).toString(), /longer than 128/);
});

test('fuzz: random frames and mutated vectors never throw out of the codec', (t) => {
  const bases = vectors.map(([f]) => vector(f));
  for (let i = 0; i < 20_000; i++) {
    let f: Buffer;
    if (i % 2 === 0) f = randomBytes(FRAME_BYTES);
    else {
      f = Buffer.from(bases[i % bases.length]);
      for (let m = 0; m < 1 + (i % 8); m++) f[Math.floor(Math.random() * 48)] = Math.floor(Math.random() * 256);
    }
    const d = decodeFrame(f);
    if (d.ok) {
      const code = validateRequest(d.frame);
      t.true(code >= 0);
      if (code === 0 && d.frame.key.length + 1 + d.frame.value.length <= 4056) encodeFrame(d.frame);
    } else t.is(d.error.code, ErrorCode.BAD_SIZES);
  }
});

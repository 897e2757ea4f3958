// Bad input over a real daemon: every kind of bad frame gets its ERROR code
// from the catalog (with the request id where one is readable), the same
// connection keeps working, other clients are not disturbed, and nothing
// acknowledged is lost.

import test from 'ava';
import { connect } from 'node:net';
import { Command, ErrorCode, FRAME_BYTES, Offset, encodeFrame, type Frame } from '../src/protocol/index.ts';
import { startDaemon, type RunningDaemon } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

const text = (f: Frame) => Buffer.from(f.value).toString();

let daemon: RunningDaemon;
let bystander: PersistentConnection;
test.before(async () => {
  daemon = await startDaemon({ processors: 2 });
  bystander = await PersistentConnection.open(daemon.ports[0]);
  await bystander.send({ command: Command.PUT, key: 'acked', value: Buffer.from('safe') });
});
test.after.always(async () => {
  bystander?.close();
  await daemon?.stop();
});

/** A raw frame: a valid GET with id `id`, then `mutate` on its bytes. */
function rawFrame(id: bigint, mutate: (b: Buffer) => void): Buffer {
  const b = encodeFrame({ id, command: Command.GET, key: 'k' });
  mutate(b);
  return b;
}

function setKey(b: Buffer, key: Buffer): void {
  b.writeInt32LE(key.length, Offset.keySize);
  key.copy(b, Offset.payload);
  b[Offset.payload + key.length] = 0;
}

const cases: Array<[string, Buffer, number]> = [
  ['key_size past the payload', rawFrame(11n, (b) => b.writeInt32LE(5000, Offset.keySize)), ErrorCode.BAD_SIZES],
  ['negative value_size', rawFrame(12n, (b) => b.writeInt32LE(-1, Offset.valueSize)), ErrorCode.BAD_SIZES],
  ['key without its NUL terminator', rawFrame(13n, (b) => b.fill(0x61, Offset.payload, FRAME_BYTES)), ErrorCode.BAD_SIZES],
  ['empty key', rawFrame(14n, (b) => setKey(b, Buffer.alloc(0))), ErrorCode.KEY_EMPTY],
  ['129-byte key', rawFrame(15n, (b) => setKey(b, Buffer.alloc(129, 0x61))), ErrorCode.KEY_TOO_LONG],
  ['key with [', rawFrame(16n, (b) => setKey(b, Buffer.from('a[b'))), ErrorCode.KEY_BAD_CHAR],
  ['key with ]', rawFrame(17n, (b) => setKey(b, Buffer.from('a]b'))), ErrorCode.KEY_BAD_CHAR],
  ['key with a control byte', rawFrame(18n, (b) => setKey(b, Buffer.from('a\u0001b', 'latin1'))), ErrorCode.KEY_BAD_CHAR],
  ['key with a byte above 126', rawFrame(19n, (b) => setKey(b, Buffer.from([0x61, 0xe9]))), ErrorCode.KEY_BAD_CHAR],
  ['2049-byte value', encodeFrame({ id: 20n, command: Command.PUT, key: 'v', value: Buffer.alloc(2049, 1) }), ErrorCode.VALUE_TOO_LONG],
  ['unknown command', rawFrame(21n, (b) => b.writeInt32LE(12345, Offset.command)), ErrorCode.UNKNOWN_COMMAND],
  ['a reply sent as a request', rawFrame(22n, (b) => b.writeInt32LE(Command.OK, Offset.command)), ErrorCode.UNKNOWN_COMMAND],
];

for (const [what, frame, code] of cases) {
  test(`${what}: ERROR ${code} with the request id, and the connection keeps working`, async (t) => {
    const c = await PersistentConnection.open(daemon.ports[0]);
    t.teardown(() => c.close());
    const id = frame.readBigInt64LE(Offset.id);
    const reply = c.expect(id);
    c.writeRaw(frame);
    const r = await reply;
    t.is(r.command, Command.ERROR);
    t.is(r.param, BigInt(code), `code ${r.param}, message "${text(r)}"`);
    t.is(r.id, id, 'the reply carries the request id');
    t.true(text(r).length > 0, 'with a readable message');
    // the same connection, right after
    const put = await c.send({ command: Command.PUT, key: `after:${id}`, value: Buffer.from('ok') });
    t.not(put.command, Command.ERROR);
    t.is(text(await c.send({ command: Command.GET, key: `after:${id}` })), 'ok');
  });
}

test('4096 bytes of garbage and a truncated frame: errors or a closed connection for that client only; acknowledged data intact', async (t) => {
  let answered = 0;
  for (let round = 0; round < 20; round++) {
    const garbage = Buffer.alloc(FRAME_BYTES);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + round * 104729) & 0xff;
    const reply = await requestOnce(daemon.ports[0], garbage).catch(() => undefined);
    if (!reply) continue;
    answered++;
    t.is(reply.command, Command.ERROR, 'garbage never succeeds');
  }
  t.is(answered, 20, 'every garbage frame got an ERROR reply');
  // half a frame, then the client goes away
  await new Promise<void>((resolve) => {
    const s = connect(daemon.ports[0], '127.0.0.1', () => {
      s.end(encodeFrame({ id: 1n, command: Command.PUT, key: 'half', value: Buffer.from('x') }).subarray(0, 1000));
    });
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  t.is((await requestOnce(daemon.ports[0], { command: Command.GET, key: 'half' })).command, Command.NO_VAL, 'a truncated PUT is not applied');
  const acked = await bystander.send({ command: Command.GET, key: 'acked' });
  t.is(text(acked), 'safe', 'an open connection of another client is undisturbed and its data intact');
});

test('a frame split across writes with pauses is served once it is complete', async (t) => {
  const c = await PersistentConnection.open(daemon.ports[0]);
  t.teardown(() => c.close());
  const frame = encodeFrame({ id: 77n, command: Command.PUT, key: 'split', value: Buffer.from('whole') });
  const done = c.expect(77n);
  for (const [from, to] of [[0, 1], [1, 40], [40, 41], [41, 3000], [3000, FRAME_BYTES]]) {
    c.writeRaw(frame.subarray(from, to));
    await new Promise((r) => setTimeout(r, 20));
  }
  t.is((await done).command, Command.NO_VAL);
  t.is(text(await c.send({ command: Command.GET, key: 'split' })), 'whole');
});

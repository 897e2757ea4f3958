// Every command on a client port, in both client styles (the original one
// request per connection, and a persistent pipelined connection), replies in
// request order, timestamps that never go backwards, and the named limits:
// each refusal is a clear reply or close, never a hang.

import test from 'ava';
import { Command, ErrorCode, FrameReader, decodeFrame, encodeFrame, type Frame, type FrameFields } from '../src/protocol/index.ts';
import { startDaemon, waitFor, type RunningDaemon } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';
import { connect } from 'node:net';

const text = (f: Frame) => Buffer.from(f.value).toString();

let daemon: RunningDaemon;
test.before(async () => {
  daemon = await startDaemon({ processors: 2, limits: { idleTimeoutMs: 500 } });
});
test.after.always(() => daemon?.stop());

type Send = (f: FrameFields) => Promise<Frame>;
const styles: Array<[string, () => Promise<{ send: Send; close(): void }>]> = [
  ['one request per connection', async () => ({ send: (f) => requestOnce(daemon.ports[0], f), close() {} })],
  ['persistent connection', async () => {
    const c = await PersistentConnection.open(daemon.ports[0]);
    return { send: (f) => c.send(f), close: () => c.close() };
  }],
];

for (const [style, open] of styles) {
  test(`${style}: every command answers as the protocol says`, async (t) => {
    const c = await open();
    t.teardown(() => c.close());
    const k = `${style}:k`;
    t.is((await c.send({ command: Command.CHK })).command, Command.OK);
    t.is((await c.send({ command: Command.INIT })).command, Command.OK);
    t.is((await c.send({ command: Command.GET, key: k })).command, Command.NO_VAL);
    t.is((await c.send({ command: Command.GET_TS, key: k })).command, Command.NO_VAL);

    const first = await c.send({ command: Command.PUT, key: k, value: Buffer.from('one') });
    t.is(first.command, Command.NO_VAL, 'a new key: NO_VAL');
    const second = await c.send({ command: Command.PUT, key: k, value: Buffer.from('two') });
    t.is(second.command, Command.OK);
    t.is(text(second), 'one', 'PUT returns the old value');

    const got = await c.send({ command: Command.GET, key: k });
    t.is(got.command, Command.OK);
    t.is(text(got), 'two');
    t.true(got.valueTimestamp > second.valueTimestamp, 'the new value has a newer timestamp than the old');
    const ts = await c.send({ command: Command.GET_TS, key: k });
    t.is(ts.valueTimestamp, got.valueTimestamp);
    const last = await c.send({ command: Command.GET_LAST_TS });
    const firstTs = await c.send({ command: Command.GET_FIRST_TS });
    t.is(last.command, Command.OK);
    t.true(last.valueTimestamp >= got.valueTimestamp);
    t.true(firstTs.valueTimestamp <= got.valueTimestamp);

    const empty = await c.send({ command: Command.PUT, key: `${k}:empty`, value: Buffer.alloc(0) });
    t.is(empty.command, Command.NO_VAL);
    const emptyGet = await c.send({ command: Command.GET, key: `${k}:empty` });
    t.is(emptyGet.command, Command.OK, 'an empty value is a value');
    t.is(emptyGet.value.length, 0);

    const del = await c.send({ command: Command.DEL, key: k });
    t.is(del.command, Command.OK);
    t.is(text(del), 'two', 'DEL returns the old value');
    t.is((await c.send({ command: Command.GET, key: k })).command, Command.NO_VAL);
    t.is((await c.send({ command: Command.DEL, key: k })).command, Command.NO_VAL, 'deleting again: NO_VAL');
    t.is((await c.send({ command: Command.GET_TS, key: k })).command, Command.NO_VAL);

    for (const meta of [Command.GET_META, Command.PUT_META]) {
      const r = await c.send({ command: meta, key: k });
      t.is(r.command, Command.ERROR);
      t.is(r.param, BigInt(ErrorCode.UNSUPPORTED));
    }
    const big = Buffer.alloc(2048, 7);
    await c.send({ command: Command.PUT, key: `${k}:big`, value: big });
    t.deepEqual(Buffer.from((await c.send({ command: Command.GET, key: `${k}:big` })).value), big, 'a 2048-byte value round-trips');
  });
}

test('a persistent connection with many requests in flight gets every reply, in request order, each with its id', async (t) => {
  const c = await PersistentConnection.open(daemon.ports[0]);
  t.teardown(() => c.close());
  const sent: bigint[] = [];
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => {
    const id = BigInt(1000 + i);
    sent.push(id);
    return i % 3 === 0
      ? c.send({ id, command: Command.PUT, key: `order:${i % 7}`, value: Buffer.from(String(i)) })
      : c.send({ id, command: Command.GET, key: `order:${i % 7}` });
  }));
  t.deepEqual(replies.map((r) => r.id), sent);
  t.deepEqual(c.order, sent, 'replies arrived in request order');
});

test('timestamps never go backwards: PUTs spread over both processors get increasing timestamps', async (t) => {
  const conns = await Promise.all(Array.from({ length: 6 }, () => PersistentConnection.open(daemon.ports[0])));
  t.teardown(() => conns.forEach((c) => c.close()));
  let previous = 0n;
  for (let i = 0; i < 120; i++) {
    // this file's daemon closes connections idle for 500 ms: on a busy machine one can sit that long
    // between its turns (then the PUT is sent again on a new connection; a second PUT only moves the clock on)
    let c = conns[i % conns.length];
    await c.send({ command: Command.PUT, key: 'clock', value: Buffer.from(String(i)) }).catch(async () => {
      c = conns[i % conns.length] = await PersistentConnection.open(daemon.ports[0]);
      return c.send({ command: Command.PUT, key: 'clock', value: Buffer.from(String(i)) });
    });
    const ts = (await c.send({ command: Command.GET_TS, key: 'clock' })).valueTimestamp;
    if (ts <= previous) return t.fail(`PUT ${i} got ${ts}, not above ${previous}`);
    previous = ts;
  }
  t.pass();
});

test('past maxInFlightPerConnection the extra requests get TOO_MANY_IN_FLIGHT, the rest are served', async (t) => {
  const small = await startDaemon({ processors: 1, limits: { maxInFlightPerConnection: 4 } });
  t.teardown(() => small.stop());
  // 200 requests in one write: each read brings many more than 4 before their replies go out
  const frames = Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeFrame({ id: BigInt(i + 1), command: Command.GET, key: `inflight:${i}` })));
  const replies = await new Promise<Frame[]>((resolve, reject) => {
    const got: Frame[] = [];
    const reader = new FrameReader();
    const s = connect(small.ports[0], '127.0.0.1', () => s.write(frames));
    s.on('data', (chunk) => reader.push(chunk, (b, o) => {
      const d = decodeFrame(b, o);
      if (d.ok) got.push(d.frame);
      if (got.length === 200) {
        s.end();
        resolve(got);
      }
    }));
    s.on('error', reject);
  });
  t.deepEqual(replies.map((r) => r.id), Array.from({ length: 200 }, (_, i) => BigInt(i + 1)), 'every request answered, in order');
  const refused = replies.filter((r) => r.command === Command.ERROR);
  t.true(refused.length > 0, 'some requests were refused');
  t.true(refused.every((r) => r.param === BigInt(ErrorCode.TOO_MANY_IN_FLIGHT)));
  t.true(replies.filter((r) => r.command === Command.NO_VAL).length >= 4, 'at least the limit was served');
});

test('past maxConnectionsPerProcessor a new connection gets TOO_MANY_CONNECTIONS and is closed; others keep working', async (t) => {
  const small = await startDaemon({ processors: 1, limits: { maxConnectionsPerProcessor: 4 } });
  t.teardown(() => small.stop());
  const held = await Promise.all(Array.from({ length: 4 }, () => PersistentConnection.open(small.ports[0])));
  t.teardown(() => held.forEach((c) => c.close()));
  for (const c of held) t.is((await c.send({ command: Command.CHK })).command, Command.OK);

  const refusal = await new Promise<{ command: number; param: bigint; closed: boolean }>((resolve, reject) => {
    const s = connect(small.ports[0], '127.0.0.1');
    let reply: Buffer | undefined;
    s.on('data', (d) => (reply = reply ? Buffer.concat([reply, d]) : d));
    s.on('close', () => reply ? resolve({ command: reply.readInt32LE(8), param: reply.readBigInt64LE(16), closed: true }) : reject(new Error('closed without a reply')));
    s.on('error', () => {});
  });
  t.is(refusal.command, Command.ERROR);
  t.is(refusal.param, BigInt(ErrorCode.TOO_MANY_CONNECTIONS));
  t.true(refusal.closed, 'and the server closed it');
  t.is((await held[0].send({ command: Command.CHK })).command, Command.OK, 'open connections keep working');
  held.pop()!.close();
  await waitFor('a new connection accepted again', async () => (await requestOnce(small.ports[0], { command: Command.CHK }).catch(() => null))?.command === Command.OK);
  t.pass();
});

test('an idle connection is closed after idleTimeoutMs', async (t) => {
  const c = await PersistentConnection.open(daemon.ports[0]);
  t.is((await c.send({ command: Command.CHK })).command, Command.OK);
  await waitFor('the idle connection to be closed', () => c.closed, 5_000);
  t.pass();
});

test('SHUT_DOWN from loopback stops the daemon gracefully when the config allows it, and is refused when it does not', async (t) => {
  const refusing = await startDaemon({ processors: 1, allowShutdown: false });
  t.teardown(() => refusing.stop());
  const no = await requestOnce(refusing.ports[0], { command: Command.SHUT_DOWN });
  t.is(no.command, Command.ERROR);
  t.is(no.param, BigInt(ErrorCode.NOT_ALLOWED));
  t.is((await requestOnce(refusing.ports[0], { command: Command.CHK })).command, Command.OK, 'still serving');

  const allowing = await startDaemon({ processors: 1, allowShutdown: true });
  const yes = await requestOnce(allowing.ports[0], { command: Command.SHUT_DOWN });
  t.is(yes.command, Command.OK);
  const exit = await allowing.exited;
  t.is(exit.code, 10, 'exit code 10: stopped on request (pm2 does not restart it)');
});

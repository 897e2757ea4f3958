// The group's writer thread under failure: a write whose commit outcome is
// unknown when the writer dies is answered OUTCOME_UNKNOWN (never OK), a
// crashed or hung writer is replaced and writes go on, and a writer sitting
// in a slow transaction is not mistaken for a hung one.

import test from 'ava';
import { Command, ErrorCode } from '../src/protocol/index.ts';
import { startDaemon, waitFor, type RunningDaemon } from './helpers/daemon.ts';
import { PersistentConnection } from './helpers/wire.ts';

type WriterStatus = { state: string; restarts: number; threadId: number | null; commits: number };
const writerOf = async (d: RunningDaemon): Promise<WriterStatus> => (await d.admin({ op: 'status' })).status.groups[0].writer;
const text = (f: { value: Uint8Array }) => Buffer.from(f.value).toString();

test('a writer that dies after committing, before answering: the PUT gets OUTCOME_UNKNOWN, not OK; it was applied; a new writer takes the next writes', async (t) => {
  const d = await startDaemon({ faultInjection: true, processors: 1 });
  t.teardown(() => d.kill());
  const conn = await PersistentConnection.open(d.ports[0]);
  t.teardown(() => conn.close());
  t.is((await conn.send({ command: Command.PUT, key: 'k', value: Buffer.from('before') })).command, Command.NO_VAL);
  const first = await writerOf(d);
  t.deepEqual(await d.admin({ op: 'fault', port: d.ports[0], slot: 'writer', fault: 'crash-after-commit' }), { ok: true });

  const unknown = await conn.send({ command: Command.PUT, key: 'k', value: Buffer.from('committed, unanswered') });
  t.is(unknown.command, Command.ERROR);
  t.is(unknown.param, BigInt(ErrorCode.OUTCOME_UNKNOWN));

  const replaced = await waitFor('a new writer', async () => {
    const w = await writerOf(d);
    return w.state === 'running' && w.threadId !== first.threadId ? w : undefined;
  });
  t.is(replaced.restarts, 1);
  const read = await conn.send({ command: Command.GET, key: 'k' });
  t.is(text(read), 'committed, unanswered', 'the write had been committed: OUTCOME_UNKNOWN did not lie');
  const next = await conn.send({ command: Command.PUT, key: 'k', value: Buffer.from('after') });
  t.is(next.command, Command.OK);
  t.is(text(next), 'committed, unanswered');
  t.regex(d.output(), /writer threw.*injected crash after a commit/);
});

test('a hung writer is found by its heartbeat and replaced; the write it held is answered OUTCOME_UNKNOWN and later writes succeed', async (t) => {
  const d = await startDaemon({ faultInjection: true, processors: 2 });
  t.teardown(() => d.kill());
  const conn = await PersistentConnection.open(d.ports[0]);
  t.teardown(() => conn.close());
  await conn.send({ command: Command.PUT, key: 'h', value: Buffer.from('1') });
  t.deepEqual(await d.admin({ op: 'fault', port: d.ports[0], slot: 'writer', fault: 'hang' }), { ok: true });
  const held = await conn.send({ command: Command.PUT, key: 'h', value: Buffer.from('2') });
  t.is(held.command, Command.ERROR);
  t.is(held.param, BigInt(ErrorCode.OUTCOME_UNKNOWN));
  t.regex(d.output(), /writer missed its heartbeats; terminating it/);
  const after = await conn.send({ command: Command.PUT, key: 'h', value: Buffer.from('3') });
  t.is(after.command, Command.OK, 'the replacement writer commits');
  t.is((await writerOf(d)).restarts, 1);
  // reads never waited for the writer
  t.is(text(await conn.send({ command: Command.GET, key: 'h' })), '3');
});

test('a writer in a transaction longer than the heartbeat limit (a slow fsync) is not hung: writes from both processors wait and all succeed, none is taken over', async (t) => {
  // heartbeat limit 50 ms × 10 = 500 ms; the injected transaction lasts 1.5 s
  const d = await startDaemon({ faultInjection: true, processors: 2 });
  t.teardown(() => d.kill());
  const conns = await Promise.all(Array.from({ length: 8 }, () => PersistentConnection.open(d.ports[0])));
  t.teardown(() => conns.forEach((c) => c.close()));
  await Promise.all(conns.map((c, i) => c.send({ command: Command.PUT, key: `s${i}`, value: Buffer.from('0') })));
  const before = await writerOf(d);
  t.deepEqual(await d.admin({ op: 'fault', port: d.ports[0], slot: 'writer', fault: 'slow-commit' }), { ok: true });
  // every connection PUTs a chain of values on one shared key: each PUT must return the value the previous one wrote
  const replies = await Promise.all(
    conns.map(async (c, i) => {
      const got: string[] = [];
      for (let n = 0; n < 20; n++) {
        const r = await c.send({ command: Command.PUT, key: 'chain', value: Buffer.from(`${i}.${n}`) });
        got.push(r.command === Command.ERROR ? `ERROR ${r.param}` : r.command === Command.NO_VAL ? 'none' : text(r));
      }
      return got;
    }),
  );
  const all = replies.flat();
  t.deepEqual(all.filter((r) => r.startsWith('ERROR')), [], 'no write failed');
  // a chain: every value but the last written is returned as old exactly once, and "none" once
  const olds = all.filter((r) => r !== 'none');
  t.is(all.length - olds.length, 1);
  t.is(new Set(olds).size, olds.length, 'no old value is returned twice: the PUTs were atomic and serialized');
  const w = await writerOf(d);
  t.is(w.restarts, 0, 'the slow writer was not replaced');
  t.is(w.threadId, before.threadId);
  t.notRegex(d.output(), /terminating it/);
});

test('pipelined on one connection, each read sees exactly the writes sent before it (reads behind a write in flight go through the writer)', async (t) => {
  const d = await startDaemon({ processors: 1 });
  t.teardown(() => d.stop());
  const conn = await PersistentConnection.open(d.ports[0]);
  t.teardown(() => conn.close());
  const sent: Array<Promise<{ command: number; value: Uint8Array }>> = [];
  for (let i = 0; i < 50; i++) {
    sent.push(conn.send({ command: Command.PUT, key: 'p', value: Buffer.from(`v${i}`) }));
    sent.push(conn.send({ command: Command.GET, key: 'p' }));
    sent.push(conn.send({ command: Command.GET_TS, key: 'p' }));
  }
  const replies = await Promise.all(sent);
  for (let i = 0; i < 50; i++) {
    const put = replies[3 * i];
    const get = replies[3 * i + 1];
    t.is(put.command, i === 0 ? Command.NO_VAL : Command.OK);
    if (i > 0) t.is(text(put), `v${i - 1}`, `PUT ${i} returns the value of PUT ${i - 1}`);
    t.is(text(get), `v${i}`, `the GET after PUT ${i} reads it`);
    t.is(replies[3 * i + 2].command, Command.OK);
  }
});

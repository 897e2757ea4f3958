// The processor's side of consistency levels (src/worker/consistency.ts):
// which level a request runs at, and when a held reply is released.

import test from 'ava';
import { Command, ConsistencyLevel, ErrorCode, withConsistency, type Frame } from '../src/protocol/index.ts';
import { ACK_SLOTS, AckSlot, type ConsistencyData, type FromProcessor } from '../src/worker/contract.ts';
import { Consistency } from '../src/worker/consistency.ts';
import type { Request } from '../src/worker/handler.ts';

function setup(defaults: Partial<ConsistencyData> = {}) {
  const acks = new BigInt64Array(new SharedArrayBuffer(ACK_SLOTS * 8));
  const sent: FromProcessor[] = [];
  const data: ConsistencyData = { defaultWrite: ConsistencyLevel.MAJORITY, defaultRead: ConsistencyLevel.MAJORITY, peers: 2, majority: 2, writeTimeoutMs: 100, acks: acks.buffer as SharedArrayBuffer, ...defaults };
  return { acks, sent, c: new Consistency(data, (m) => sent.push(m)) };
}
const frame = (command: number, flag = 0): Frame => ({ id: 1n, command, flag, param: 0n, key: 'k', value: new Uint8Array(0), valueTimestamp: 0n });
const put = (): Request => ({ frame: frame(Command.PUT), remote: '127.0.0.1', reply: { id: 1n, command: Command.NO_VAL, key: 'k' } });

test('flag 0 takes the defaults; bits 1-2 choose; a GET at ALL runs as MAJORITY; other commands are ONE', (t) => {
  const { c } = setup({ defaultWrite: ConsistencyLevel.ALL, defaultRead: ConsistencyLevel.ONE });
  t.is(c.levelOf(frame(Command.PUT)), ConsistencyLevel.ALL);
  t.is(c.levelOf(frame(Command.GET)), ConsistencyLevel.ONE);
  t.is(c.levelOf(frame(Command.DEL, withConsistency(0, ConsistencyLevel.ONE))), ConsistencyLevel.ONE);
  t.is(c.levelOf(frame(Command.GET, withConsistency(1, ConsistencyLevel.ALL))), ConsistencyLevel.MAJORITY);
  t.is(c.levelOf(frame(Command.CHK, withConsistency(0, ConsistencyLevel.ALL))), ConsistencyLevel.ONE);
});

test('a write already held by a majority when its commit is answered is not held (no later acknowledgement would release it)', (t) => {
  const { c, acks } = setup();
  acks[AckSlot.majority] = 10n;
  const early = put();
  let released = 0;
  c.holdWrite(early, ConsistencyLevel.MAJORITY, 7n, 0, () => released++);
  t.falsy(early.held);
  const later = put();
  c.holdWrite(later, ConsistencyLevel.MAJORITY, 12n, 0, () => released++);
  t.true(later.held);
  acks[AckSlot.majority] = 12n;
  c.acked();
  t.false(later.held);
  t.is(released, 1);
});

test('ALL waits for the all position; a write not held in time is answered OUTCOME_UNKNOWN; NO_QUORUM up front for writes only', (t) => {
  const { c, acks } = setup();
  acks[AckSlot.majority] = 50n;
  const w = put();
  c.holdWrite(w, ConsistencyLevel.ALL, 20n, 0, () => {});
  c.acked();
  t.true(w.held, 'the majority position does not release a write at ALL');
  c.expire(99);
  t.true(w.held);
  c.expire(100);
  t.false(w.held);
  t.is(w.reply?.command, Command.ERROR);
  t.is(w.reply?.param, BigInt(ErrorCode.OUTCOME_UNKNOWN));
  acks[AckSlot.reachablePeers] = 1n;
  t.is(c.refusal(frame(Command.PUT), ConsistencyLevel.MAJORITY), 0);
  t.is(c.refusal(frame(Command.PUT), ConsistencyLevel.ALL), ErrorCode.NO_QUORUM);
  t.is(c.refusal(frame(Command.GET), ConsistencyLevel.MAJORITY), 0, 'a read finds out through its quorum read');
});

test('reads under an unexpired lease need no quorum read; others ask the member once per batch and take its answer', (t) => {
  const { c, acks, sent } = setup();
  acks[AckSlot.localReadsUntilUs] = process.hrtime.bigint() / 1000n + 60_000_000n;
  t.true(c.readUnderLease(c.leaseEnd()));
  acks[AckSlot.localReadsUntilUs] = 0n;
  t.false(c.readUnderLease(c.leaseEnd()));
  const reqs: Request[] = [1, 2].map(() => ({ frame: frame(Command.GET), remote: '127.0.0.1', reply: { id: 1n, command: Command.NO_VAL, key: 'k' } }));
  const released: Request[] = [];
  c.holdReads(reqs, (r) => released.push(r));
  t.deepEqual(sent, [{ type: 'quorum-read', id: 1, keys: ['k'] }]);
  c.readDone(1, true, [{ value: Buffer.from('v'), ts: 5n }]);
  t.is(released.length, 2);
  t.is(reqs[0].reply?.command, Command.OK);
  t.is(reqs[0].reply?.valueTimestamp, 5n);
});

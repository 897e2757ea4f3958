// The binary hand-off between processors and the writer: ops and results
// survive the round trip exactly, empty values and absent values apart.
import test from 'ava';
import { OpKind } from '../src/writer/contract.ts';
import { decodeOps, decodeResults, encodeOps, encodeResults } from '../src/writer/ops-codec.ts';

test('ops round-trip: PUT with a value (empty included), DEL and reads without one, 128-byte keys, 2048-byte values', (t) => {
  const ops = [
    { kind: OpKind.PUT, key: 'apple', value: Uint8Array.of(1, 2, 3) },
    { kind: OpKind.PUT, key: 'empty', value: new Uint8Array(0) },
    { kind: OpKind.DEL, key: 'k'.repeat(128) },
    { kind: OpKind.GET, key: 'x' },
    { kind: OpKind.PUT, key: 'big', value: new Uint8Array(2048).fill(7) },
  ];
  const back = decodeOps(encodeOps(ops));
  t.deepEqual(back.map((o) => ({ kind: o.kind, key: o.key, value: o.value && [...o.value] })), ops.map((o) => ({ kind: o.kind, key: o.key, value: o.value && [...o.value] })));
});

test('results round-trip: old value with timestamp and seq, nothing, a timestamp alone', (t) => {
  const results = [
    { value: Uint8Array.of(9, 8), ts: 1_700_000_000_000_000n, seq: 42n },
    { value: null, ts: null, seq: 43n },
    { value: null, ts: 5n },
    { value: null, ts: null },
  ];
  const back = decodeResults(encodeResults(results));
  t.deepEqual(back.map((r) => ({ ...r, value: r.value && [...r.value] })), results.map((r) => ({ ...r, value: r.value && [...r.value] })));
});

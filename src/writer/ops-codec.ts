// The binary form of a processor's ops and of the writer's results: one
// buffer per message, transferred between the threads instead of cloned
// (structured clone of an array of objects with a typed array each was the
// largest cost of a hand-off). Keys are printable ASCII (latin1 is exact).

import { OpKind, type OpKindNumber, type OpResult, type WriteOp } from './contract.ts';

const NO_VALUE = 0xffff;

/** kind u8, key length u8, key, value length u16 (NO_VALUE: none), value */
export function encodeOps(ops: WriteOp[]): Uint8Array {
  let size = 0;
  for (const op of ops) size += 4 + op.key.length + (op.value?.length ?? 0);
  const out = Buffer.from(new ArrayBuffer(size));
  let at = 0;
  for (const op of ops) {
    out[at++] = op.kind;
    out[at++] = op.key.length;
    at += out.write(op.key, at, 'latin1');
    if (op.value === undefined) {
      out.writeUInt16LE(NO_VALUE, at);
      at += 2;
    } else {
      out.writeUInt16LE(op.value.length, at);
      at += 2;
      out.set(op.value, at);
      at += op.value.length;
    }
  }
  return new Uint8Array(out.buffer, 0, size);
}

export function decodeOps(bytes: Uint8Array): WriteOp[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const ops: WriteOp[] = [];
  let at = 0;
  while (at < buf.length) {
    const kind = buf[at++] as OpKindNumber;
    const keyLength = buf[at++];
    const key = buf.toString('latin1', at, at + keyLength);
    at += keyLength;
    const valueLength = buf.readUInt16LE(at);
    at += 2;
    if (valueLength === NO_VALUE) ops.push({ kind, key });
    else {
      ops.push({ kind, key, value: buf.subarray(at, at + valueLength) });
      at += valueLength;
    }
  }
  return ops;
}

/** flags u8 (1: value, 2: ts, 4: seq), [ts i64], [seq i64], [value length u16, value] */
export function encodeResults(results: OpResult[]): Uint8Array {
  let size = 0;
  for (const r of results) size += 1 + (r.ts !== null ? 8 : 0) + (r.seq !== undefined ? 8 : 0) + (r.value !== null ? 2 + r.value.length : 0);
  const out = Buffer.from(new ArrayBuffer(size));
  let at = 0;
  for (const r of results) {
    out[at++] = (r.value !== null ? 1 : 0) | (r.ts !== null ? 2 : 0) | (r.seq !== undefined ? 4 : 0);
    if (r.ts !== null) at = out.writeBigInt64LE(r.ts, at);
    if (r.seq !== undefined) at = out.writeBigInt64LE(r.seq, at);
    if (r.value !== null) {
      at = out.writeUInt16LE(r.value.length, at);
      out.set(r.value, at);
      at += r.value.length;
    }
  }
  return new Uint8Array(out.buffer, 0, size);
}

export function decodeResults(bytes: Uint8Array): OpResult[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const results: OpResult[] = [];
  let at = 0;
  while (at < buf.length) {
    const flags = buf[at++];
    let ts: bigint | null = null;
    let seq: bigint | undefined;
    let value: Uint8Array | null = null;
    if (flags & 2) {
      ts = buf.readBigInt64LE(at);
      at += 8;
    }
    if (flags & 4) {
      seq = buf.readBigInt64LE(at);
      at += 8;
    }
    if (flags & 1) {
      const n = buf.readUInt16LE(at);
      at += 2;
      value = buf.subarray(at, at + n);
      at += n;
    }
    results.push(seq === undefined ? { value, ts } : { value, ts, seq });
  }
  return results;
}

export { OpKind };

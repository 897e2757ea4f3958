// The 8-byte request id field as a JavaScript number: the gateway numbers the
// requests it forwards itself (a counter far below 2^53), and numbers are
// cheaper map keys than bigints. Pure.

import { Offset } from '../protocol/index.ts';

const TWO_32 = 2 ** 32;

export function readRequestId(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset + Offset.id) + buffer.readUInt32LE(offset + Offset.id + 4) * TWO_32;
}

export function writeRequestId(buffer: Buffer, offset: number, id: number): void {
  buffer.writeUInt32LE(id % TWO_32, offset + Offset.id);
  buffer.writeUInt32LE(Math.floor(id / TWO_32), offset + Offset.id + 4);
}

// Pure codec of the fixed 4096-byte frame: decode, encode, and validation of
// a decoded frame as a request. No sockets, no store.

import { Command, FRAME_BYTES, HEADER_BYTES, Offset, PAYLOAD_BYTES } from './constants.ts';
import { ErrorCode, errorMessage, type ErrorCodeNumber } from './errors.ts';
import { checkKey, checkValueLength } from './rules.ts';

export interface Frame {
  id: bigint;
  command: number;
  flag: number;
  param: bigint;
  /** latin1 decoding of the key bytes (ASCII for valid keys); '' when key_size is 0 */
  key: string;
  value: Uint8Array;
  valueTimestamp: bigint;
}

/** A frame whose header cannot describe a payload; the id is kept so the ERROR reply can carry it. */
export interface BadFrame {
  id: bigint;
  command: number;
  code: ErrorCodeNumber;
}

export type Decoded = { ok: true; frame: Frame } | { ok: false; error: BadFrame };

const EMPTY = new Uint8Array(0);

/** Decodes the frame that starts at `offset` (bytes.length - offset must be >= 4096). Never throws on content. */
export function decodeFrame(bytes: Buffer, offset = 0): Decoded {
  if (bytes.length - offset < FRAME_BYTES) throw new RangeError('decodeFrame needs 4096 bytes');
  const id = bytes.readBigInt64LE(offset + Offset.id);
  const command = bytes.readInt32LE(offset + Offset.command);
  const keySize = bytes.readInt32LE(offset + Offset.keySize);
  const valueSize = bytes.readInt32LE(offset + Offset.valueSize);
  const keyStart = offset + Offset.payload;
  if (
    keySize < 0 ||
    valueSize < 0 ||
    keySize + 1 + valueSize > PAYLOAD_BYTES ||
    bytes[keyStart + keySize] !== 0
  ) {
    return { ok: false, error: { id, command, code: ErrorCode.BAD_SIZES } };
  }
  const valueStart = keyStart + keySize + 1;
  return {
    ok: true,
    frame: {
      id,
      command,
      flag: bytes.readUInt32LE(offset + Offset.flag),
      param: bytes.readBigInt64LE(offset + Offset.param),
      key: keySize === 0 ? '' : bytes.toString('latin1', keyStart, keyStart + keySize),
      // copy: the caller's chunk may be reused or large
      value: valueSize === 0 ? EMPTY : Uint8Array.prototype.slice.call(bytes, valueStart, valueStart + valueSize),
      valueTimestamp: bytes.readBigInt64LE(offset + Offset.valueTimestamp),
    },
  };
}

export interface FrameFields {
  id?: bigint;
  command: number;
  flag?: number;
  param?: bigint;
  key?: string;
  value?: Uint8Array;
  valueTimestamp?: bigint;
}

/**
 * Writes one frame at target[offset .. offset+4096). Every byte of the region
 * is written (unused bytes zeroed), so the target may be reused.
 */
export function encodeFrameInto(target: Buffer, offset: number, f: FrameFields): void {
  const key = f.key ?? '';
  const value = f.value ?? EMPTY;
  if (key.length + 1 + value.length > PAYLOAD_BYTES) throw new RangeError('key and value do not fit one frame');
  target.writeBigInt64LE(f.id ?? 0n, offset + Offset.id);
  target.writeInt32LE(f.command, offset + Offset.command);
  target.writeUInt32LE(f.flag ?? 0, offset + Offset.flag);
  target.writeBigInt64LE(f.param ?? 0n, offset + Offset.param);
  target.writeInt32LE(key.length, offset + Offset.keySize);
  target.writeInt32LE(value.length, offset + Offset.valueSize);
  target.writeBigInt64LE(f.valueTimestamp ?? 0n, offset + Offset.valueTimestamp);
  let p = offset + HEADER_BYTES;
  if (key.length > 0) p += target.write(key, p, 'latin1');
  target[p++] = 0;
  if (value.length > 0) {
    target.set(value, p);
    p += value.length;
  }
  target.fill(0, p, offset + FRAME_BYTES);
}

export function encodeFrame(f: FrameFields): Buffer {
  const out = Buffer.allocUnsafe(FRAME_BYTES);
  encodeFrameInto(out, 0, f);
  return out;
}

/** The ERROR reply for a code: code in `param`, message as the value. */
export function errorReply(id: bigint, code: ErrorCodeNumber): FrameFields {
  return { id, command: Command.ERROR, param: BigInt(code), value: Buffer.from(errorMessage(code), 'latin1') };
}

const REQUEST_COMMANDS = new Set<number>([
  Command.CHK,
  Command.GET,
  Command.PUT,
  Command.DEL,
  Command.GET_META,
  Command.PUT_META,
  Command.GET_TS,
  Command.GET_LAST_TS,
  Command.GET_FIRST_TS,
  Command.INIT,
  Command.SHUT_DOWN,
]);

const KEYED_COMMANDS = new Set<number>([Command.GET, Command.PUT, Command.DEL, Command.GET_TS]);

/** Checks a decoded frame as a client request; returns the error code, or 0 when it can be served. */
export function validateRequest(frame: Frame): ErrorCodeNumber | 0 {
  if (!REQUEST_COMMANDS.has(frame.command)) return ErrorCode.UNKNOWN_COMMAND;
  if (KEYED_COMMANDS.has(frame.command)) {
    const keyError = checkKey(frame.key);
    if (keyError) return keyError;
  }
  if (frame.command === Command.PUT) return checkValueLength(frame.value.length);
  return 0;
}

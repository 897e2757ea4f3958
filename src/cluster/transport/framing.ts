// Peer-port framing: the byte layout of one frame and a streaming decoder that
// takes chunks of any size. Pure (no sockets, no crypto); every malformed input
// becomes a FramingError value, never an exception.
//
// Frame: [u32 BE length][u8 version][u8 type][body], where length counts the
// version, type and body bytes (not the 4 length bytes themselves).

/** 2: HELLO carries the membership digest */
export const PEER_PROTOCOL_VERSION = 2;

/** The 4-byte length prefix plus version and type. */
export const FRAME_HEADER_BYTES = 6;

export const FrameType = {
  HELLO: 1,
  AUTH: 2,
  DATA: 3,
  PING: 4,
  REJECT: 5,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export interface Frame {
  version: number;
  type: FrameType;
  /** The body; a view into the decoder's buffer, not a copy. */
  body: Buffer;
  /** The whole frame including the length prefix (the handshake transcript uses it). */
  raw: Buffer;
}

export type FramingErrorCode = 'frame-too-short' | 'frame-too-large' | 'bad-version' | 'unknown-type';

export interface FramingError {
  code: FramingErrorCode;
  detail: string;
}

/** Encodes a frame with its body in one buffer (for small, handshake frames). */
export function encodeFrame(type: FrameType, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(frame, type, body.length);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** Writes the 6 header bytes of a frame whose body is `bodyBytes` long into `target` at 0. */
export function writeFrameHeader(target: Buffer, type: FrameType, bodyBytes: number): void {
  target.writeUInt32BE(2 + bodyBytes, 0);
  target.writeUInt8(PEER_PROTOCOL_VERSION, 4);
  target.writeUInt8(type, 5);
}

/**
 * Streaming decoder. `maxFrameBytes` bounds a whole frame (length prefix
 * included) and is checked as soon as the 4 length bytes are in, so an
 * oversized frame is refused before its body is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;
  maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received that do not yet form a whole frame (non-zero at close = truncated frame). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds one chunk. Calls onFrame for each whole frame in order; stops at the
   * first error and returns it (the decoder then refuses further input).
   * onFrame may return false to stop decoding (e.g. the connection closed).
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => boolean): FramingError | null {
    if (this.failed) return { code: 'frame-too-short', detail: 'decoder already failed' };
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.buffered < 4) return null;
      const head = this.contiguous(4);
      const length = head.readUInt32BE(0);
      if (length < 2) return this.fail('frame-too-short', `length field ${length} < 2`);
      if (length + 4 > this.maxFrameBytes) {
        return this.fail('frame-too-large', `frame of ${length + 4} bytes exceeds ${this.maxFrameBytes}`);
      }
      if (this.buffered < 6) return null;
      const early = this.contiguous(6);
      const version = early.readUInt8(4);
      if (version !== PEER_PROTOCOL_VERSION) {
        return this.fail('bad-version', `frame version ${version}, this node speaks ${PEER_PROTOCOL_VERSION}`);
      }
      const type = early.readUInt8(5);
      if (!KNOWN_TYPES.has(type)) return this.fail('unknown-type', `frame type ${type}`);
      const total = length + 4;
      if (this.buffered < total) return null;
      const all = this.contiguous(total);
      const raw = all.subarray(0, total);
      if (all.length > total) this.chunks[0] = all.subarray(total);
      else this.chunks.shift();
      this.buffered -= total;
      const frame: Frame = { version, type: type as FrameType, body: raw.subarray(FRAME_HEADER_BYTES), raw };
      if (!onFrame(frame)) return null;
    }
  }

  /** Returns the buffered bytes as one buffer holding at least `bytes` (merging chunks only when needed). */
  private contiguous(bytes: number): Buffer {
    if (this.chunks[0].length < bytes) {
      this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    }
    return this.chunks[0];
  }

  private fail(code: FramingErrorCode, detail: string): FramingError {
    this.failed = true;
    this.chunks = [];
    this.buffered = 0;
    return { code, detail };
  }
}

// Streaming frame reader: takes the byte stream in chunks of any size and
// hands out whole 4096-byte frames, copying only frames split across chunks.

import { FRAME_BYTES } from './constants.ts';

export class FrameReader {
  private pending = Buffer.allocUnsafe(FRAME_BYTES);
  private pendingBytes = 0;

  /** Bytes held of a frame not yet complete. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Feeds one chunk; calls onFrame(buffer, offset) for every complete frame, in
   * order. The frame is valid only during the call (the buffer may be reused).
   */
  push(chunk: Buffer, onFrame: (buffer: Buffer, offset: number) => void): void {
    let at = 0;
    if (this.pendingBytes > 0) {
      const take = Math.min(FRAME_BYTES - this.pendingBytes, chunk.length);
      chunk.copy(this.pending, this.pendingBytes, 0, take);
      this.pendingBytes += take;
      at = take;
      if (this.pendingBytes < FRAME_BYTES) return;
      this.pendingBytes = 0;
      onFrame(this.pending, 0);
    }
    while (chunk.length - at >= FRAME_BYTES) {
      onFrame(chunk, at);
      at += FRAME_BYTES;
    }
    if (at < chunk.length) {
      chunk.copy(this.pending, 0, at);
      this.pendingBytes = chunk.length - at;
    }
  }
}

// Minimal kv739 wire clients for tests, independent of src/client: one
// request per connection (the original client) and a persistent pipelined
// connection that matches replies by id.

import { connect, type Socket } from 'node:net';
import { FRAME_BYTES, FrameReader, decodeFrame, encodeFrame, type Frame, type FrameFields } from '../../src/protocol/index.ts';

function toFrame(buf: Buffer, off: number): Frame {
  const d = decodeFrame(buf, off);
  if (!d.ok) throw new Error(`server sent a bad frame (code ${d.error.code})`);
  return d.frame;
}

/** The original client's style: connect, send one frame, read one reply, close. */
export function requestOnce(port: number, fields: FrameFields | Buffer, host = '127.0.0.1'): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    const reader = new FrameReader();
    let done = false;
    s.on('data', (chunk) =>
      reader.push(chunk, (b, o) => {
        if (done) return;
        done = true;
        resolve(toFrame(b, o));
        s.end();
      }),
    );
    s.on('error', (e) => !done && reject(e));
    s.on('close', () => !done && reject(new Error('connection closed before a reply')));
    s.write(Buffer.isBuffer(fields) ? fields : encodeFrame(fields));
  });
}

export class PersistentConnection {
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<bigint, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  private nextId = 1n;
  readonly order: bigint[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) =>
      this.reader.push(chunk, (b, o) => {
        const f = toFrame(b, o);
        this.order.push(f.id);
        const p = this.pending.get(f.id);
        this.pending.delete(f.id);
        p?.resolve(f);
      }),
    );
    const fail = (e: Error) => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(port: number, host = '127.0.0.1'): Promise<PersistentConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, noDelay: true }, () => resolve(new PersistentConnection(s)));
      s.once('error', reject);
    });
  }

  send(fields: FrameFields): Promise<Frame> {
    const id = fields.id ?? this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeFrame({ ...fields, id }));
    });
  }

  /** The reply to request `id`, sent some other way (e.g. writeRaw). */
  expect(id: bigint): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      this.pending.set(id, { resolve, reject });
    });
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves with the next reply whatever its id (for raw writes). */
  nextReply(id: bigint): Promise<Frame> {
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  close(): void {
    this.socket.end();
  }
}

export const FRAME = FRAME_BYTES;

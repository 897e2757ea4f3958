// One persistent, pipelined connection to one server: requests are written as
// they come and replies are matched to them by request id.

import { connect, type Socket } from 'node:net';
import { FrameReader, decodeFrame, encodeFrame, type Frame, type FrameFields } from '../protocol/index.ts';

/** Why a request on this connection failed without a reply. */
export class ConnectionFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionFailure';
  }
}

/** One request got no reply in time; the connection stays open for the others. */
export class RequestTimeout extends ConnectionFailure {
  constructor(message: string) {
    super(message);
    this.name = 'RequestTimeout';
  }
}

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ServerConnection {
  readonly address: string;
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<bigint, Pending>();
  private connected = false;
  private failure: ConnectionFailure | undefined;
  private readonly connectTimer: NodeJS.Timeout;

  private readonly onFail: (reason: string) => void;

  /** onFail is called once, when the connection is lost (not on close(), not when one request times out). */
  constructor(host: string, port: number, connectTimeoutMs: number, onFail: (reason: string) => void) {
    this.address = `${host}:${port}`;
    this.onFail = onFail;
    this.socket = connect({ host, port, noDelay: true });
    this.connectTimer = setTimeout(() => this.fail(`no connection within ${connectTimeoutMs} ms`), connectTimeoutMs);
    this.socket.once('connect', () => {
      this.connected = true;
      clearTimeout(this.connectTimer);
    });
    this.socket.on('data', (chunk) => this.reader.push(chunk, (b, o) => this.onFrame(b, o)));
    this.socket.on('error', (e) => this.fail(this.connected ? `connection error: ${e.message}` : `cannot connect: ${e.message}`));
    this.socket.on('close', () => this.fail('connection closed by the server'));
  }

  get usable(): boolean {
    return this.failure === undefined;
  }

  /**
   * Sends one request; rejects with RequestTimeout when no reply comes in
   * time (only this request: the others in flight keep waiting for theirs, and
   * a late reply is dropped), or with ConnectionFailure when the connection is lost.
   */
  request(fields: FrameFields & { id: bigint }, timeoutMs: number): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(fields.id);
        reject(new RequestTimeout(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(fields.id, { resolve, reject, timer });
      this.socket.write(encodeFrame(fields));
    });
  }

  private onFrame(buffer: Buffer, offset: number): void {
    const d = decodeFrame(buffer, offset);
    if (!d.ok) {
      this.fail('server sent a malformed frame');
      return;
    }
    const p = this.pending.get(d.frame.id);
    if (!p) return; // a reply to a request we already gave up on
    this.pending.delete(d.frame.id);
    clearTimeout(p.timer);
    p.resolve(d.frame);
  }

  /** Fails every request in flight and closes the socket; a server that stops answering is treated as gone. */
  fail(reason: string): void {
    if (this.shutDown(reason)) this.onFail(reason);
  }

  close(): void {
    this.shutDown('client closed');
  }

  /** Rejects everything in flight with `reason` and destroys the socket; false if already done. */
  private shutDown(reason: string): boolean {
    if (this.failure) return false;
    this.failure = new ConnectionFailure(reason);
    clearTimeout(this.connectTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    this.pending.clear();
    this.socket.destroy();
    return true;
  }
}

// One persistent, pipelined connection from the gateway to a daemon's client
// port. Frames handed to it are written in batches (one socket write per
// batch); every frame that reaches the socket is remembered until its reply
// comes, so when the connection is lost the gateway knows exactly which
// requests may have been delivered (written) and which certainly were not
// (still queued here). Replies are matched by the gateway's request id.

import { connect, type Socket } from 'node:net';
import { FRAME_BYTES, FrameReader } from '../protocol/index.ts';
import { readRequestId } from './ids.ts';

export interface LinkEvents {
  connected(link: DaemonLink): void;
  /** one reply frame at buffer[offset .. offset+4096), valid only during the call */
  reply(link: DaemonLink, id: number, buffer: Buffer, offset: number): void;
  /** the connection is gone: `written` may have reached the daemon, `unsent` did not */
  lost(link: DaemonLink, reason: string, written: number[], unsent: number[]): void;
}

export class DaemonLink {
  readonly daemon: number;
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private readonly events: LinkEvents;
  private isConnected = false;
  private isLost = false;
  /** ids written to the socket and not yet answered */
  private readonly inFlight = new Set<number>();
  /** frames accepted but not yet written, with their ids */
  private queuedFrames: Buffer[] = [];
  private queuedIds: number[] = [];
  private readonly connectTimer: NodeJS.Timeout;

  constructor(daemon: number, host: string, port: number, connectTimeoutMs: number, events: LinkEvents) {
    this.daemon = daemon;
    this.events = events;
    this.socket = connect({ host, port, noDelay: true });
    this.connectTimer = setTimeout(() => this.lose(`no connection within ${connectTimeoutMs} ms`), connectTimeoutMs);
    this.socket.once('connect', () => {
      clearTimeout(this.connectTimer);
      this.isConnected = true;
      this.events.connected(this);
      this.flush();
    });
    this.socket.on('data', (chunk) => this.reader.push(chunk, (b, o) => this.onFrame(b, o)));
    this.socket.on('error', (e) => this.lose(this.isConnected ? `connection error: ${e.message}` : `cannot connect: ${e.message}`));
    this.socket.on('close', () => this.lose('connection closed by the daemon'));
  }

  get connected(): boolean {
    return this.isConnected && !this.isLost;
  }

  get lost(): boolean {
    return this.isLost;
  }

  /** Requests on this link: written and waiting for a reply, plus queued. */
  get load(): number {
    return this.inFlight.size + this.queuedIds.length;
  }

  /** Queues one request frame (its id field already set to `id`); written at the next flush. */
  enqueue(id: number, frame: Buffer): void {
    if (this.isLost) throw new Error('enqueue on a lost link');
    this.queuedFrames.push(frame);
    this.queuedIds.push(id);
  }

  /** Writes everything queued in one socket write; from here on those requests count as delivered. */
  flush(): void {
    if (!this.connected || this.queuedIds.length === 0) return;
    const frames = this.queuedFrames;
    for (const id of this.queuedIds) this.inFlight.add(id);
    this.queuedFrames = [];
    this.queuedIds = [];
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, frames.length * FRAME_BYTES));
  }

  /** Forgets a request given up on (timed out): a late reply to it is dropped by the gateway. */
  forget(id: number): void {
    this.inFlight.delete(id);
    const q = this.queuedIds.indexOf(id);
    if (q >= 0) {
      this.queuedIds.splice(q, 1);
      this.queuedFrames.splice(q, 1);
    }
  }

  /** True when `id` is queued here and not yet written. */
  isQueued(id: number): boolean {
    return this.queuedIds.includes(id);
  }

  close(reason: string): void {
    this.lose(reason);
  }

  private onFrame(buffer: Buffer, offset: number): void {
    const id = readRequestId(buffer, offset);
    if (!this.inFlight.delete(id)) return; // a reply to a request already given up on
    this.events.reply(this, id, buffer, offset);
  }

  private lose(reason: string): void {
    if (this.isLost) return;
    this.isLost = true;
    clearTimeout(this.connectTimer);
    this.socket.destroy();
    const written = [...this.inFlight];
    const unsent = this.queuedIds;
    this.inFlight.clear();
    this.queuedIds = [];
    this.queuedFrames = [];
    this.events.lost(this, reason, written, unsent);
  }
}

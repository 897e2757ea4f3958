// The sending side of a connection to the group's writer thread, used by a
// processor and by the cluster member: numbers requests, matches answers,
// holds requests while no writer is attached (a replacement is starting), and
// reports every request in flight as lost when the writer dies: its outcome is
// unknown, since the writer may have committed it before it died.

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { FromWriter, ToWriter } from './contract.ts';

/** An answer, or null when the writer died with the request in flight (outcome unknown). */
export type WriterAnswer = FromWriter | null;
type Callback = (answer: WriterAnswer) => void;
type Request = ToWriter extends infer R ? (R extends ToWriter ? Omit<R, 'id'> : never) : never;

export class WriterLink {
  private port: MessagePort | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Callback>();
  /** requests made while no writer was attached, with when they were made (ms, monotonic) */
  private waiting: Array<{ request: Request; callback: Callback; sinceMs: number }> = [];
  private readonly maxWaitMs: number;
  private readonly timer: NodeJS.Timeout;

  /** `maxWaitMs`: a request that found no writer for this long fails (it was never sent: nothing applied). */
  constructor(maxWaitMs: number) {
    this.maxWaitMs = maxWaitMs;
    this.timer = setInterval(() => this.expireWaiting(), Math.max(10, Math.min(1000, maxWaitMs / 4)));
    this.timer.unref();
  }

  get attached(): boolean {
    return this.port !== undefined;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Talks to a (new) writer on `port`; what waited for one is sent now. */
  attach(port: MessagePort): void {
    this.detach();
    this.port = port;
    port.on('message', (a: FromWriter) => this.answer(a));
    port.on('close', () => {
      // its messages have all been delivered by now; (receiveMessageOnPort inside this event crashes Node 24)
      if (this.port === port) this.detach(false);
    });
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) this.request(w.request, w.callback);
  }

  /**
   * The writer is gone: answers it posted before it died are taken first;
   * everything still in flight is reported lost (outcome unknown).
   */
  detach(takeQueued = true): void {
    const port = this.port;
    if (!port) return;
    this.port = undefined;
    if (takeQueued) for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.answer(m.message as FromWriter);
    port.close();
    const lost = [...this.pending.values()];
    this.pending.clear();
    for (const cb of lost) cb(null);
  }

  /** Sends `request`; an encoded 'ops' buffer is transferred (it is not usable here afterwards). */
  request(request: Request, callback: Callback): void {
    if (!this.port) {
      this.waiting.push({ request, callback, sinceMs: performance.now() });
      return;
    }
    const id = this.nextId++;
    this.pending.set(id, callback);
    this.port.postMessage({ ...request, id } as ToWriter, request.type === 'ops' ? [request.ops.buffer as ArrayBuffer] : []);
  }

  close(): void {
    clearInterval(this.timer);
    this.detach();
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.callback({ type: 'failed', id: 0, error: 'no writer: the group is stopping' });
  }

  private answer(a: FromWriter): void {
    const cb = this.pending.get(a.id);
    if (!cb) return;
    this.pending.delete(a.id);
    cb(a);
  }

  private expireWaiting(): void {
    if (this.waiting.length === 0) return;
    const now = performance.now();
    const expired = this.waiting.filter((w) => now - w.sinceMs >= this.maxWaitMs);
    if (expired.length === 0) return;
    this.waiting = this.waiting.filter((w) => now - w.sinceMs < this.maxWaitMs);
    for (const w of expired) w.callback({ type: 'failed', id: 0, error: `no writer for ${this.maxWaitMs} ms (it is being replaced, or the group gave up)` });
  }
}

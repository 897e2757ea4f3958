// One load-generator thread: opens its share of the connections, drives them
// in one client style, and reports ops, errors and a latency histogram for
// the measured window. Runs in a worker thread, never on a server's loop.

import { connect, type Socket } from 'node:net';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Command, FRAME_BYTES, FrameReader, Offset, encodeFrameInto } from '../src/protocol/index.ts';
import { newHistogram, record } from './histogram.ts';
import type { WorkerSpec, ToLoadWorker, FromLoadWorker } from './loadgen.ts';

const spec = workerData as WorkerSpec;
const port = parentPort!;
const post = (m: FromLoadWorker) => port.postMessage(m);

/** Pause before reopening a connection that failed, so a dead server does not spin the thread. */
const RECONNECT_DELAY_MS = 20;

let phase: 'idle' | 'warmup' | 'measure' | 'stopped' = 'idle';
let ops = 0;
let errors = 0;
let misses = 0;
const hist = newHistogram();

// xorshift32: cheap, per-thread, deterministic key choice
let rng = (threadId * 2654435761) >>> 0 || 1;
function random(): number {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 4294967296;
}

const value = Buffer.alloc(spec.valueSize);
for (let i = 0; i < value.length; i++) value[i] = 97 + (i % 26);
let nextId = 1;

/** Encodes the next request (GET or PUT on a random key of the key space) at buf[offset]. */
function encodeRequest(buf: Buffer, offset: number): number {
  const id = nextId++;
  const key = spec.keyPrefix + Math.floor(random() * spec.keyCount);
  const isGet = spec.getFraction >= 1 || random() < spec.getFraction;
  const flag = spec.flag ?? 0;
  encodeFrameInto(buf, offset, isGet ? { id: BigInt(id), command: Command.GET, key, flag } : { id: BigInt(id), command: Command.PUT, key, value, flag });
  return id;
}

/** Counts a reply; only replies that arrive while measuring count. */
function onReply(buf: Buffer, offset: number, expectedId: number, sentAtMs: number): void {
  if (phase !== 'measure') return;
  const id = Number(buf.readBigInt64LE(offset + Offset.id));
  const command = buf.readInt32LE(offset + Offset.command);
  if (id !== expectedId || command === Command.ERROR) {
    errors++;
    return;
  }
  if (command === Command.NO_VAL) misses++;
  ops++;
  record(hist, (performance.now() - sentAtMs) * 1000);
}

/** A connection kept open with up to `depth` requests in flight (depth 1: the persistent style). */
class Pipeline {
  private socket: Socket | undefined;
  private readonly reader = new FrameReader();
  private readonly sentAt: Float64Array;
  private readonly ids: Int32Array;
  private head = 0;
  private tail = 0;
  private inFlight = 0;
  private readonly depth: number;
  readyPromise: Promise<void>;

  constructor(depth: number) {
    this.depth = depth;
    this.sentAt = new Float64Array(depth);
    this.ids = new Int32Array(depth);
    this.readyPromise = this.open();
  }

  private open(): Promise<void> {
    return new Promise((resolve) => {
      const s = connect({ port: spec.port, host: spec.host, noDelay: true }, () => {
        this.socket = s;
        resolve();
        if (phase === 'warmup' || phase === 'measure') this.fill();
      });
      s.on('data', (chunk) => {
        let answered = 0;
        this.reader.push(chunk, (b, o) => {
          onReply(b, o, this.ids[this.tail], this.sentAt[this.tail]);
          this.tail = (this.tail + 1) % this.depth;
          this.inFlight--;
          answered++;
        });
        if (answered > 0) this.fill();
      });
      s.on('error', () => {});
      s.on('close', () => {
        if (phase === 'stopped') return;
        // the server closed or reset us: what was in flight is lost
        if (phase === 'measure') errors += Math.max(1, this.inFlight);
        this.socket = undefined;
        this.inFlight = 0;
        this.head = this.tail = 0;
        setTimeout(() => void this.open(), RECONNECT_DELAY_MS);
        resolve();
      });
    });
  }

  /** Tops the connection up to `depth` requests in flight, in one write. */
  fill(): void {
    if (!this.socket || phase === 'stopped' || phase === 'idle') return;
    const n = this.depth - this.inFlight;
    if (n <= 0) return;
    const out = Buffer.allocUnsafe(n * FRAME_BYTES);
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      this.ids[this.head] = encodeRequest(out, i * FRAME_BYTES);
      this.sentAt[this.head] = now;
      this.head = (this.head + 1) % this.depth;
    }
    this.inFlight += n;
    this.socket.write(out);
  }

  close(): void {
    this.socket?.destroy();
  }
}

/** The original client: connect, send one request, read the reply, close; then again. */
class OneShotLoop {
  private socket: Socket | undefined;

  start(): void {
    if (phase === 'stopped') return;
    const startedAt = performance.now();
    const out = Buffer.allocUnsafe(FRAME_BYTES);
    const id = encodeRequest(out, 0);
    const reader = new FrameReader();
    let answered = false;
    const s = connect({ port: spec.port, host: spec.host, noDelay: true }, () => s.write(out));
    this.socket = s;
    s.on('data', (chunk) =>
      reader.push(chunk, (b, o) => {
        if (answered) return;
        answered = true;
        onReply(b, o, id, startedAt);
        s.destroy();
        this.start();
      }),
    );
    s.on('error', () => {});
    s.on('close', () => {
      if (answered || phase === 'stopped') return;
      if (phase === 'measure') errors++;
      setTimeout(() => this.start(), RECONNECT_DELAY_MS);
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

const pipelines: Pipeline[] = [];
const loops: OneShotLoop[] = [];
if (spec.style === 'oneshot') {
  for (let i = 0; i < spec.connections; i++) loops.push(new OneShotLoop());
  post({ type: 'ready' });
} else {
  const depth = spec.style === 'pipelined' ? spec.depth : 1;
  for (let i = 0; i < spec.connections; i++) pipelines.push(new Pipeline(depth));
  void Promise.all(pipelines.map((p) => p.readyPromise)).then(() => post({ type: 'ready' }));
}

port.on('message', (m: ToLoadWorker) => {
  if (m.type === 'go') {
    phase = 'warmup';
    for (const p of pipelines) p.fill();
    for (const l of loops) l.start();
  } else if (m.type === 'measure') {
    phase = 'measure';
  } else if (m.type === 'stop') {
    phase = 'stopped';
    for (const p of pipelines) p.close();
    for (const l of loops) l.close();
    post({ type: 'done', ops, errors, misses, hist });
  }
});

// The echo baseline: a bare kv739-framed server with the daemon's thread
// model and no store. N worker threads listen on one port with SO_REUSEPORT,
// read 4096-byte frames with FrameReader and write each frame back (one write
// per connection per read, as the processor writes one per batch).
//
// Run as a process: node bench/echo-server.ts PORT THREADS; it sends 'ready'
// over IPC (or prints it) once every thread listens, and exits on SIGTERM.

import { createServer } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FRAME_BYTES, FrameReader } from '../src/protocol/index.ts';

interface EchoThreadData {
  host: string;
  port: number;
}

function serveThread({ host, port }: EchoThreadData): void {
  const server = createServer({ noDelay: true }, (socket) => {
    const reader = new FrameReader();
    socket.on('data', (chunk) => {
      const frames: Array<[Buffer, number]> = [];
      reader.push(chunk, (buf, off) => frames.push([buf, off]));
      if (frames.length === 0) return;
      // copy now: a frame is valid only until the reader's next push
      const out = Buffer.allocUnsafe(frames.length * FRAME_BYTES);
      for (let i = 0; i < frames.length; i++) frames[i][0].copy(out, i * FRAME_BYTES, frames[i][1], frames[i][1] + FRAME_BYTES);
      socket.write(out);
    });
    socket.on('error', () => {});
  });
  server.listen({ host, port, reusePort: true, backlog: 4096 }, () => parentPort!.postMessage('listening'));
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const threads = Number(process.argv[3] ?? 1);
  if (!Number.isInteger(port) || !Number.isInteger(threads) || threads < 1) {
    console.error('usage: node bench/echo-server.ts PORT THREADS');
    process.exit(2);
  }
  const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: { host: '127.0.0.1', port } satisfies EchoThreadData }));
  await Promise.all(workers.map((w) => new Promise((res, rej) => { w.once('message', res); w.once('error', rej); })));
  if (process.send) process.send('ready');
  else console.log('ready');
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

if (isMainThread) await main();
else serveThread(workerData as EchoThreadData);

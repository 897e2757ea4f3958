// The echo baseline: a bare kv739-framed server with the daemon's thread
// model and no store. N worker threads listen on one port with SO_REUSEPORT,
// read 4096-byte frames with FrameReader and write each frame back, with the
// processor's batching: frames are collected for one event-loop turn
// (setImmediate) and each connection gets one write per turn.
//
// Run as a process: node bench/echo-server.ts PORT THREADS; it sends 'ready'
// over IPC (or prints it) once every thread listens, and exits on SIGTERM.

import { createServer, type Socket } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FRAME_BYTES, FrameReader } from '../src/protocol/index.ts';

interface EchoThreadData {
  host: string;
  port: number;
}

function serveThread({ host, port }: EchoThreadData): void {
  const pending = new Map<Socket, Buffer[]>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const [socket, frames] of pending) if (!socket.destroyed) socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
    pending.clear();
  };
  const server = createServer({ noDelay: true }, (socket) => {
    const reader = new FrameReader();
    socket.on('data', (chunk) => {
      let frames = pending.get(socket);
      reader.push(chunk, (buf, off) => {
        if (!frames) pending.set(socket, (frames = []));
        // copy now: a frame is valid only until the reader's next push
        frames.push(Buffer.from(buf.subarray(off, off + FRAME_BYTES)));
      });
      if (frames && !scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
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

// The plain Node baseline: one thread, one event loop, each 4096-byte frame
// written back as soon as it is read (one write per frame), no batching and
// no store. What a Node server that answers each request on its own costs;
// the daemon's GET is compared with it.
//
// Run as a process: node bench/plain-echo.ts PORT; sends 'ready' over IPC
// (or prints it) once listening, exits on SIGTERM.

import { createServer } from 'node:net';
import { FRAME_BYTES, FrameReader } from '../src/protocol/index.ts';

const port = Number(process.argv[2]);
if (!Number.isInteger(port)) {
  console.error('usage: node bench/plain-echo.ts PORT');
  process.exit(2);
}
const server = createServer({ noDelay: true }, (socket) => {
  const reader = new FrameReader();
  socket.on('data', (chunk) => reader.push(chunk, (buf, off) => socket.write(Buffer.from(buf.subarray(off, off + FRAME_BYTES)))));
  socket.on('error', () => {});
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => (process.send ? process.send('ready') : console.log('ready')));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

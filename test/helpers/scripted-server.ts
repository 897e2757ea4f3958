// A kv739 server of a few lines for client tests: real TCP on loopback, the
// real frame codec, and a script that decides per request what to answer and
// when (answer now, hold the reply, or never answer). It records every frame
// it receives, so a test can check the flag bits a client sent.

import { createServer, type Server, type Socket } from 'node:net';
import { FrameReader, decodeFrame, encodeFrame, type Frame, type FrameFields } from '../../src/protocol/index.ts';

/** What to do with one request: a reply now, a promise of one (held), or null (never answer). */
export type Answer = FrameFields | Promise<FrameFields> | null;

export interface ScriptedServer {
  port: number;
  address: string;
  received: Frame[];
  close(): Promise<void>;
}

export async function scriptedServer(answer: (request: Frame) => Answer, port = 0): Promise<ScriptedServer> {
  const received: Frame[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader();
    socket.on('data', (chunk) =>
      reader.push(chunk, (buffer, offset) => {
        const d = decodeFrame(buffer, offset);
        if (!d.ok) throw new Error('client sent a bad frame');
        received.push(d.frame);
        const a = answer(d.frame);
        if (a === null) return;
        void Promise.resolve(a).then((reply) => {
          if (!socket.destroyed) socket.write(encodeFrame({ ...reply, id: d.frame.id }));
        });
      }),
    );
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

// A small scripted kv739 server for client tests: it speaks the 4096-byte
// frame, answers each request with what `answer` returns, and records every
// connection and request, so a test can check what a client sent (or that it
// sent nothing) and make it see replies a real daemon gives only in rare
// states (SHUTTING_DOWN, OUTCOME_UNKNOWN, ...).

import { createServer, type Server, type Socket } from 'node:net';
import { Command, FrameReader, decodeFrame, encodeFrame, type Frame, type FrameFields } from '../../src/protocol/index.ts';
import { freePorts } from './ports.ts';

export interface FakeReply {
  /** the request's id unless the reply gives one */
  reply: FrameFields;
  /** close the connection after this reply (FIN), or reset it (RST) */
  close?: boolean | 'reset';
}

export interface FakeServer {
  port: number;
  host: string;
  /** 'host:port' as a client's list takes it */
  address: string;
  connections: number;
  requests: Frame[];
  close(): Promise<void>;
}

/** `answer` may hold a reply back (return a promise); replies on one connection keep request order. */
/** Answers GET, PUT and DEL from an in-memory map, as the daemon would. */
export function memoryStore(): (request: Frame) => FakeReply {
  const store = new Map<string, Uint8Array>();
  return (r) => {
    const old = store.get(r.key);
    if (r.command === Command.PUT) store.set(r.key, r.value);
    if (r.command === Command.DEL) store.delete(r.key);
    return { reply: old === undefined ? { command: Command.NO_VAL, key: r.key } : { command: Command.OK, key: r.key, value: old } };
  };
}

export async function startFakeServer(answer: (request: Frame) => FakeReply | Promise<FakeReply>, host = '127.0.0.1'): Promise<FakeServer> {
  const [port] = await freePorts(1, host);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    fake.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader();
    let previous: Promise<void> = Promise.resolve();
    socket.on('data', (chunk) =>
      reader.push(chunk, (buffer, offset) => {
        const decoded = decodeFrame(buffer, offset);
        if (!decoded.ok) {
          socket.destroy();
          return;
        }
        const request = decoded.frame;
        fake.requests.push(request);
        const answered = Promise.resolve(answer(request));
        previous = previous.then(async () => {
          const { reply, close } = await answered;
          if (socket.destroyed) return;
          socket.write(encodeFrame({ id: request.id, ...reply }));
          if (close === 'reset') socket.write('', () => socket.resetAndDestroy());
          else if (close) socket.end();
        });
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, resolve);
  });
  const fake: FakeServer = {
    port,
    host,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return fake;
}

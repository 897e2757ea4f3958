// The daemon's local admin interface: newline-delimited JSON over TCP bound
// to 127.0.0.1 only. One request object per line, one reply object per line.
// Ops: status, resize, restart (rolling), and fault (only when the config
// enables fault injection; "slot": "writer" aims at the group's writer).

import { createServer, type Server } from 'node:net';
import { jsonReplacer, type Logger } from './log.ts';

export type AdminRequest =
  | { op: 'status' }
  | { op: 'resize'; port: number; processors: number }
  | { op: 'restart'; port: number }
  | { op: 'fault'; port: number; slot: number | 'writer'; fault: WriterFault };

/** Faults for tests: a processor takes crash and hang; the writer also the last two (slow-commit: its next transaction lasts `ms`). */
export type WriterFault = 'crash' | 'hang' | 'crash-after-commit' | 'slow-commit';
const FAULTS: readonly string[] = ['crash', 'hang', 'crash-after-commit', 'slow-commit'];

export type AdminReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export type AdminHandler = (req: AdminRequest) => Promise<AdminReply>;

const MAX_LINE_BYTES = 64 * 1024;

/** Validates one parsed admin request; returns an error string for anything else. */
export function parseAdminRequest(raw: unknown): AdminRequest | string {
  if (typeof raw !== 'object' || raw === null) return 'request must be a JSON object with "op"';
  const r = raw as Record<string, unknown>;
  const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
  switch (r.op) {
    case 'status':
      return { op: 'status' };
    case 'resize':
      if (!isInt(r.port) || !isInt(r.processors)) return 'resize needs integer "port" and "processors"';
      return { op: 'resize', port: r.port as number, processors: r.processors as number };
    case 'restart':
      if (!isInt(r.port)) return 'restart needs integer "port"';
      return { op: 'restart', port: r.port as number };
    case 'fault':
      if (!isInt(r.port) || !(isInt(r.slot) || r.slot === 'writer') || !FAULTS.includes(r.fault as string)) {
        return 'fault needs integer "port", "slot" (an integer or "writer") and "fault": "crash" | "hang" | "crash-after-commit" | "slow-commit" (the last two: writer only)';
      }
      return { op: 'fault', port: r.port as number, slot: r.slot as number | 'writer', fault: r.fault as WriterFault };
    default:
      return `unknown op ${JSON.stringify(r.op)} (known: status, resize, restart, fault)`;
  }
}

export function startAdminServer(port: number, handle: AdminHandler, log: Logger): Promise<Server> {
  const server = createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE_BYTES) {
        socket.end(JSON.stringify({ ok: false, error: `request line over ${MAX_LINE_BYTES} bytes` }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) void answer(line).then((reply) => socket.writable && socket.write(JSON.stringify(reply, jsonReplacer) + '\n'));
      }
    });
  });
  async function answer(line: string): Promise<AdminReply> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return { ok: false, error: 'request is not valid JSON' };
    }
    const req = parseAdminRequest(raw);
    if (typeof req === 'string') return { ok: false, error: req };
    try {
      return await handle(req);
    } catch (e) {
      log('warn', 'admin request failed', { op: req.op, error: (e as Error).message });
      return { ok: false, error: (e as Error).message };
    }
  }
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`admin interface cannot listen on 127.0.0.1:${port}: ${e.message}`)));
    server.listen({ host: '127.0.0.1', port }, () => resolve(server));
  });
}

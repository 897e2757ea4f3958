// The daemon's admin interface: newline-delimited JSON over TCP. One request
// object per line, one reply object per line. Ops: status, resize, restart
// (rolling), and fault (only when the config enables fault injection).
//
// It listens on 127.0.0.1 (callers on this machine, no authentication) and,
// when the daemon's host is another address, on host:adminPort as well, so
// `kv status` and `kv workers` work from other hosts: there every request
// carries a mac made with the cluster secret over a per-connection challenge
// (src/shared/admin-client.ts), and fault injection is refused.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { adminMacMatches } from '../shared/admin-client.ts';
import { jsonReplacer, type Logger } from '../shared/log.ts';

export type AdminRequest =
  | { op: 'status' }
  | { op: 'resize'; port: number; processors: number }
  | { op: 'restart'; port: number }
  | { op: 'fault'; port: number; slot: number; fault: 'crash' | 'hang' };

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
      if (!isInt(r.port) || !isInt(r.slot) || (r.fault !== 'crash' && r.fault !== 'hang')) {
        return 'fault needs integer "port", "slot" and "fault": "crash" | "hang"';
      }
      return { op: 'fault', port: r.port as number, slot: r.slot as number, fault: r.fault };
    default:
      return `unknown op ${JSON.stringify(r.op)} (known: status, resize, restart, fault)`;
  }
}

/** Options of the listener at the daemon's host address: who may call, and what stays loopback-only. */
export interface RemoteAdmin {
  host: string;
  secret: Buffer;
}

/** Ops that only a caller on this machine may send. */
const LOOPBACK_ONLY_OPS: readonly AdminRequest['op'][] = ['fault'];

export function startAdminServer(port: number, handle: AdminHandler, log: Logger, remote?: RemoteAdmin): Promise<Server> {
  const server = createServer((socket) => {
    let buffered = '';
    const challenge = remote ? randomBytes(16).toString('hex') : '';
    let seq = 0;
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    if (remote) socket.write(JSON.stringify({ challenge }) + '\n');
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
        if (!line) continue;
        if (remote) {
          const sp = line.indexOf(' ');
          const mac = sp > 0 ? line.slice(0, sp) : '';
          const json = sp > 0 ? line.slice(sp + 1) : line;
          if (!adminMacMatches(remote.secret, challenge, seq++, json, mac)) {
            log('warn', 'admin request refused: bad or missing mac', { from: socket.remoteAddress });
            socket.end(JSON.stringify({ ok: false, error: 'not authenticated: requests on this address need the cluster secret (kv does this with --config)' }) + '\n');
            return;
          }
          void answer(json, true).then((reply) => socket.writable && socket.write(JSON.stringify(reply, jsonReplacer) + '\n'));
        } else void answer(line, false).then((reply) => socket.writable && socket.write(JSON.stringify(reply, jsonReplacer) + '\n'));
      }
    });
  });
  async function answer(line: string, fromRemote: boolean): Promise<AdminReply> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return { ok: false, error: 'request is not valid JSON' };
    }
    const req = parseAdminRequest(raw);
    if (typeof req === 'string') return { ok: false, error: req };
    if (fromRemote && LOOPBACK_ONLY_OPS.includes(req.op)) return { ok: false, error: `${req.op} is accepted only on 127.0.0.1` };
    try {
      return await handle(req);
    } catch (e) {
      log('warn', 'admin request failed', { op: req.op, error: (e as Error).message });
      return { ok: false, error: (e as Error).message };
    }
  }
  const host = remote?.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`admin interface cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen({ host, port }, () => resolve(server));
  });
}

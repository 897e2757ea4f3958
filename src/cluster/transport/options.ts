// The peer transport's options: their types, defaults (with units) and the
// validation done once in the constructor, with errors that name the option.

import { MAX_NODE_ID_BYTES, MAX_HANDSHAKE_FRAME_BYTES, SEALED_OVERHEAD_BYTES } from './handshake.ts';

/** Same shape as the supervisor's JSON-lines logger. */
export type TransportLogger = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface PeerAddress {
  id: string;
  host: string;
  port: number;
}

export interface TransportOptions {
  selfId: string;
  /** Address to listen on for peer connections. */
  host: string;
  port: number;
  /** Every other member of the cluster (not this node). */
  peers: PeerAddress[];
  /** The shared cluster secret, at least 16 bytes. */
  secret: Buffer;
  log: TransportLogger;
  /** Largest frame, length prefix included; a DATA payload may be up to this minus 30 bytes. */
  maxFrameBytes?: number;
  /** Bound on bytes queued per connection; send() returns false beyond it. */
  maxWriteBufferBytes?: number;
  handshakeTimeoutMs?: number;
  reconnectBackoffInitialMs?: number;
  reconnectBackoffMaxMs?: number;
  /** A PING goes out when nothing was sent for this long; 0 disables. */
  heartbeatIntervalMs?: number;
  /** A connection with nothing received for this long is dropped; 0 disables. */
  idleTimeoutMs?: number;
  /** Bound on connections still in their handshake (unauthenticated). */
  maxPendingConnections?: number;
}

export type ResolvedTransportOptions = Readonly<Required<TransportOptions>>;

export const TRANSPORT_DEFAULTS = {
  maxFrameBytes: 8 * 1024 * 1024,
  maxWriteBufferBytes: 32 * 1024 * 1024,
  handshakeTimeoutMs: 5_000,
  reconnectBackoffInitialMs: 100,
  reconnectBackoffMaxMs: 5_000,
  heartbeatIntervalMs: 1_000,
  idleTimeoutMs: 5_000,
  maxPendingConnections: 64,
} as const;

export const MIN_SECRET_BYTES = 16;

export function resolveTransportOptions(options: TransportOptions): ResolvedTransportOptions {
  const o = { ...TRANSPORT_DEFAULTS, ...dropUndefined(options) } as Required<TransportOptions>;
  checkNodeId('selfId', o.selfId);
  checkString('host', o.host);
  checkPort('port', o.port, true);
  if (!Buffer.isBuffer(o.secret) || o.secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(`secret: must be a Buffer of at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (typeof o.log !== 'function') throw new TypeError('log: must be a function (level, msg, fields)');
  if (!Array.isArray(o.peers)) throw new TypeError('peers: must be an array of {id, host, port}');
  const seen = new Set<string>([o.selfId]);
  o.peers.forEach((p, i) => {
    checkNodeId(`peers[${i}].id`, p.id);
    checkString(`peers[${i}].host`, p.host);
    checkPort(`peers[${i}].port`, p.port, false);
    if (seen.has(p.id)) throw new RangeError(`peers[${i}].id: ${JSON.stringify(p.id)} is selfId or listed twice`);
    seen.add(p.id);
  });
  checkInt('maxFrameBytes', o.maxFrameBytes, MAX_HANDSHAKE_FRAME_BYTES, 2 ** 31);
  checkInt('maxWriteBufferBytes', o.maxWriteBufferBytes, o.maxFrameBytes, 2 ** 40);
  checkInt('handshakeTimeoutMs', o.handshakeTimeoutMs, 1, 600_000);
  checkInt('reconnectBackoffInitialMs', o.reconnectBackoffInitialMs, 1, 600_000);
  checkInt('reconnectBackoffMaxMs', o.reconnectBackoffMaxMs, o.reconnectBackoffInitialMs, 3_600_000);
  checkInt('heartbeatIntervalMs', o.heartbeatIntervalMs, 0, 600_000);
  checkInt('idleTimeoutMs', o.idleTimeoutMs, 0, 3_600_000);
  if (o.idleTimeoutMs > 0 && o.idleTimeoutMs < 2 * o.heartbeatIntervalMs) {
    throw new RangeError('idleTimeoutMs: must be at least 2 × heartbeatIntervalMs, or a quiet healthy link would be dropped');
  }
  if (o.idleTimeoutMs > 0 && o.heartbeatIntervalMs === 0) {
    throw new RangeError('idleTimeoutMs: needs heartbeatIntervalMs > 0 (heartbeats keep a quiet link alive)');
  }
  checkInt('maxPendingConnections', o.maxPendingConnections, 1, 100_000);
  return Object.freeze({ ...o, peers: o.peers.map((p) => Object.freeze({ ...p })) });
}

/** The largest payload send() accepts for a given maxFrameBytes. */
export function maxPayloadBytes(maxFrameBytes: number): number {
  return maxFrameBytes - SEALED_OVERHEAD_BYTES;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkNodeId(name: string, v: unknown): void {
  checkString(name, v);
  const bytes = Buffer.byteLength(v as string, 'utf8');
  if (bytes > MAX_NODE_ID_BYTES) throw new RangeError(`${name}: at most ${MAX_NODE_ID_BYTES} bytes of UTF-8, got ${bytes}`);
}

function checkString(name: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`${name}: must be a non-empty string`);
}

function checkPort(name: string, v: unknown, allowZero: boolean): void {
  checkInt(name, v, allowZero ? 0 : 1, 65535);
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name}: must be an integer in ${min}..${max}, got ${String(v)}`);
  }
}

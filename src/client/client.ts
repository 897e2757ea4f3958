// KvClient: the kv739 store from code. A list of servers, one persistent
// pipelined connection per server, a deadline per call, failover to the next
// server when one refuses or does not answer, and reconnect with exponential
// backoff. Keys and values are checked before anything is sent.

import { Command, ErrorCode, checkKey, checkValueLength, errorMessage, type Frame, type FrameFields } from '../protocol/index.ts';
import { ConnectionFailure, ServerConnection } from './connection.ts';
import { KvInputError, KvServerError, KvTimeoutError, KvUnavailableError } from './errors.ts';
import { backoffMs } from '../shared/backoff.ts';

export interface KvClientOptions {
  /** 'host:port' of each server, in order of preference */
  servers: readonly string[];
  /** whole-call deadline, across every server tried (default 5000) */
  deadlineMs?: number;
  /** how long one server gets to answer before the call moves to the next (default: deadlineMs) */
  attemptTimeoutMs?: number;
  /** TCP connect timeout per server (default 1000) */
  connectTimeoutMs?: number;
  /** first wait before a failed server is tried again; doubles per failure up to backoffMaxMs (defaults 50, 5000) */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export type ValueResult = { found: true; value: Buffer; timestamp: bigint } | { found: false };
export type TimestampResult = { found: true; timestamp: bigint } | { found: false };

/** kv739 contract codes: 0 found / ok, 1 not found, -1 failure. */
export type ContractCode = 0 | 1 | -1;

/** Maps a call's outcome onto the kv739 contract: pass the result, or the error it threw. */
export function contractCode(outcome: { found: boolean } | true | Error): ContractCode {
  if (outcome instanceof Error) return -1;
  if (outcome === true) return 0;
  return outcome.found ? 0 : 1;
}

interface Server {
  host: string;
  port: number;
  address: string;
  connection: ServerConnection | undefined;
  failures: number;
  /** Date.now() before which the server is not tried */
  retryAtMs: number;
  lastFailure: string;
}

function parseServer(s: string): Server {
  const m = /^(.+):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new KvInputError(0, `server "${s}" is not host:port (for example 127.0.0.1:7390)`);
  }
  return { host: m[1]!, port, address: `${m[1]}:${port}`, connection: undefined, failures: 0, retryAtMs: 0, lastFailure: '' };
}

/** Replies that mean "this server takes no work now": try the next one. */
const REFUSALS = new Set<number>([ErrorCode.SHUTTING_DOWN, ErrorCode.TOO_MANY_CONNECTIONS]);

export class KvClient {
  private readonly servers: Server[];
  private readonly deadlineMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  /** index of the server that answered last; calls start there */
  private preferred = 0;
  private nextId = 1n;
  private closed = false;

  constructor(options: KvClientOptions) {
    if (!options.servers?.length) throw new KvInputError(0, 'KvClient needs at least one server (host:port)');
    this.servers = options.servers.map(parseServer);
    this.deadlineMs = positive('deadlineMs', options.deadlineMs ?? 5000);
    this.attemptTimeoutMs = positive('attemptTimeoutMs', options.attemptTimeoutMs ?? this.deadlineMs);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs ?? 1000);
    this.backoffInitialMs = positive('backoffInitialMs', options.backoffInitialMs ?? 50);
    this.backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs ?? 5000);
  }

  async get(key: string): Promise<ValueResult> {
    checkedKey(key);
    return valueResult(await this.call({ command: Command.GET, key }));
  }

  /** Stores the value; resolves with the value it replaced. */
  async put(key: string, value: string | Buffer): Promise<ValueResult> {
    checkedKey(key);
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (checkValueLength(bytes.length)) {
      throw new KvInputError(ErrorCode.VALUE_TOO_LONG, `value is ${bytes.length} bytes; values are at most 2048 bytes`);
    }
    return valueResult(await this.call({ command: Command.PUT, key, value: bytes }));
  }

  /** Deletes the key; resolves with the value it had. */
  async del(key: string): Promise<ValueResult> {
    checkedKey(key);
    return valueResult(await this.call({ command: Command.DEL, key }));
  }

  /** Health check: resolves true when a server answers. */
  async chk(): Promise<true> {
    await this.call({ command: Command.CHK });
    return true;
  }

  async getTimestamp(key: string): Promise<TimestampResult> {
    checkedKey(key);
    return timestampResult(await this.call({ command: Command.GET_TS, key }));
  }

  async lastTimestamp(): Promise<TimestampResult> {
    return timestampResult(await this.call({ command: Command.GET_LAST_TS }));
  }

  async firstTimestamp(): Promise<TimestampResult> {
    return timestampResult(await this.call({ command: Command.GET_FIRST_TS }));
  }

  /** Closes every connection; requests in flight and later calls fail with KvUnavailableError. */
  close(): void {
    this.closed = true;
    for (const s of this.servers) {
      s.connection?.close();
      s.connection = undefined;
    }
  }

  /**
   * Sends one request, starting at the preferred server and moving on when a
   * server cannot be reached, does not answer in time, or refuses. Note: a
   * PUT/DEL that timed out may have been applied by the server given up on.
   */
  private async call(fields: FrameFields): Promise<Frame> {
    const tried: { server: string; reason: string }[] = [];
    if (this.closed) throw new KvUnavailableError('the client is closed; create a new KvClient');
    const deadline = Date.now() + this.deadlineMs;
    const n = this.servers.length;
    for (let i = 0; i < n; i++) {
      const index = (this.preferred + i) % n;
      const server = this.servers[index]!;
      const now = Date.now();
      if (server.retryAtMs > now) {
        tried.push({ server: server.address, reason: `skipped, failed recently (${server.lastFailure})` });
        continue;
      }
      const remaining = deadline - now;
      if (remaining <= 0) throw new KvTimeoutError(this.deadlineMs, tried);
      const id = this.nextId++;
      try {
        const reply = await this.connectionTo(server).request({ ...fields, id }, Math.min(remaining, this.attemptTimeoutMs));
        if (reply.command === Command.ERROR) {
          const code = Number(reply.param);
          const message = Buffer.from(reply.value).toString('latin1');
          if (REFUSALS.has(code)) {
            this.markFailed(server, `refused: ${message}`);
            tried.push({ server: server.address, reason: `refused: ${message}` });
            continue;
          }
          throw new KvServerError(code, message, server.address);
        }
        server.failures = 0;
        this.preferred = index;
        return reply;
      } catch (e) {
        if (!(e instanceof ConnectionFailure)) throw e;
        if (this.closed) throw new KvUnavailableError('the client was closed while the request was in flight');
        tried.push({ server: server.address, reason: e.message });
      }
    }
    if (Date.now() >= deadline) throw new KvTimeoutError(this.deadlineMs, tried);
    throw new KvUnavailableError(`no server answered; check that the daemons are running`, tried);
  }

  private connectionTo(server: Server): ServerConnection {
    if (server.connection?.usable) return server.connection;
    const connection = new ServerConnection(server.host, server.port, this.connectTimeoutMs, (reason) => {
      if (server.connection === connection) server.connection = undefined;
      this.markFailed(server, reason);
    });
    server.connection = connection;
    return connection;
  }

  /** Exponential backoff: the server is skipped until retryAtMs, then reconnected on the next call. */
  private markFailed(server: Server, reason: string): void {
    server.failures++;
    server.lastFailure = reason;
    const wait = backoffMs(server.failures - 1, this.backoffInitialMs, this.backoffMaxMs);
    server.retryAtMs = Date.now() + wait;
  }
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new KvInputError(0, `${name} must be a positive number of milliseconds, got ${v}`);
  return v;
}

function checkedKey(key: string): void {
  if (typeof key !== 'string') throw new KvInputError(ErrorCode.KEY_EMPTY, 'key must be a string');
  const code = checkKey(key);
  if (code) throw new KvInputError(code, `bad key ${JSON.stringify(key.slice(0, 40))}: ${errorMessage(code)}`);
}

function valueResult(f: Frame): ValueResult {
  if (f.command === Command.NO_VAL) return { found: false };
  return { found: true, value: Buffer.from(f.value), timestamp: f.valueTimestamp };
}

function timestampResult(f: Frame): TimestampResult {
  return f.command === Command.NO_VAL ? { found: false } : { found: true, timestamp: f.valueTimestamp };
}

// A processor: one worker thread that listens on its group's port with
// SO_REUSEPORT (the kernel spreads connections over the group's processors),
// reads 4096-byte frames, executes them in batches on the store and writes
// the replies. Heartbeat and counters go to shared memory for the supervisor.

import { createServer, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { Command, ConsistencyLevel, ErrorCode, FRAME_BYTES, FrameReader, decodeFrame, encodeFrameInto, errorReply, validateRequest, type Frame } from '../protocol/index.ts';
import { Store, type StoreError } from '../store/store.ts';
import { SharedClock } from '../store/clock.ts';
import { WriteLock } from '../store/write-lock.ts';
import { executeBatch, isWrite, rereadGet, type HandlerEnv, type Request } from './handler.ts';
import { MetricsWriter } from '../metrics/counters.ts';
import { StatSlot, type FromProcessor, type ProcessorData, type ToProcessor } from './contract.ts';
import { Consistency } from './consistency.ts';

const data = workerData as ProcessorData;
const port = parentPort!;
const stats = new Float64Array(data.stats);
const metrics = new MetricsWriter(data.metrics);
const send = (m: FromProcessor) => port.postMessage(m);
const log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => send({ type: 'log', level, msg, fields });

interface Connection {
  socket: Socket;
  reader: FrameReader;
  remote: string;
  inFlight: number;
  /** requests of this connection in the current batch, in arrival order */
  queued: Request[];
  /** executed requests whose replies are not sent yet: a READ_THROUGH GET at the head holds the rest (replies keep request order) */
  outbox: Request[];
  /** the head of the outbox is waiting for a key fetch */
  waiting: boolean;
  lastActivityMs: number;
  /** performance.now() of the last bytes read */
  receivedAtMs: number;
}

/** While draining, a connection with nothing in flight and no request for this long is closed. */
const DRAIN_IDLE_CLOSE_MS = 50;

const store = Store.open(data.dbFile, {
  writeLock: new WriteLock(data.writeLock),
  readCacheEntries: data.limits.readCacheEntries,
  keepTombstones: data.keepTombstones,
  durability: data.durability,
  maxStoreBytes: data.limits.maxStoreBytes,
  origin: data.origin,
  onCommit: (writes, seconds) => metrics.commit(writes, seconds),
});
const clock = new SharedClock(data.clock);
const consistency = data.consistency ? new Consistency(data.consistency, send) : null;
const connections = new Set<Connection>();
let batchConnections: Connection[] = [];
let batchScheduled = false;
/** requests queued for the next batch, and how many were queued at the previous look */
let batchRequests = 0;
let batchRequestsSeen = 0;
let batchDeferrals = 0;
/**
 * Group commit: a batch with writes pays one fsync however many writes it
 * holds. When requests are still arriving, the batch waits up to this many
 * more event-loop turns (each reads whatever the sockets have by then)
 * instead of committing the first few alone.
 */
const MAX_BATCH_DEFERRALS = 3;
/** stop was asked: no new connections; open ones are served until idle or the drain deadline */
let draining = false;
/** the drain deadline passed: every request is refused with SHUTTING_DOWN */
let refusing = false;

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/** READ_THROUGH waits by key: resolved when the supervisor says the fetch finished, or at the deadline. */
const keyWaits = new Map<string, { done: Promise<void>; resolve: () => void }>();
/** misses reported recently; cleared every second so a hot missing key is not reported per request */
const reportedMisses = new Set<string>();
const MAX_REPORTED_MISSES = 4096;

function keyFetched(key: string): Promise<void> {
  let w = keyWaits.get(key);
  if (!w) {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => finishWait(key), data.readThroughTimeoutMs + 50);
    w = { done, resolve: () => (clearTimeout(timer), resolve()) };
    keyWaits.set(key, w);
    send({ type: 'key-miss', key, wait: true });
  }
  return w.done;
}

function finishWait(key: string): void {
  keyWaits.get(key)?.resolve();
  keyWaits.delete(key);
}

const env: HandlerEnv = {
  store,
  clock,
  shutdown(req: Request) {
    if (!data.allowShutdown || !isLoopback(req.remote)) return ErrorCode.NOT_ALLOWED;
    send({ type: 'shutdown-requested', from: req.remote });
    return 0 as const;
  },
  onStoreError(e: StoreError) {
    log('error', 'store write failed; batch rolled back and answered with STORE_FAILED', {
      file: e.file,
      sqliteCode: e.sqliteCode,
      error: e.message,
    });
  },
  onCommitted: data.reportKeyMisses ? () => send({ type: 'committed' }) : undefined,
  onKeyMiss: data.reportKeyMisses
    ? (key, readThrough) => {
        if (readThrough || reportedMisses.has(key) || reportedMisses.size >= MAX_REPORTED_MISSES) return;
        reportedMisses.add(key);
        send({ type: 'key-miss', key, wait: false });
      }
    : undefined,
};

function badFrame(id: bigint, command: number): Frame {
  return { id, command, flag: 0, param: 0n, key: '', value: new Uint8Array(0), valueTimestamp: 0n };
}

function enqueue(conn: Connection, buffer: Buffer, offset: number): void {
  const decoded = decodeFrame(buffer, offset);
  const req: Request = decoded.ok
    ? { frame: decoded.frame, remote: conn.remote, receivedAtMs: conn.receivedAtMs }
    : { frame: badFrame(decoded.error.id, decoded.error.command), refused: decoded.error.code, remote: conn.remote, receivedAtMs: conn.receivedAtMs };
  if (refusing) req.refused = ErrorCode.SHUTTING_DOWN;
  else if (conn.inFlight >= data.limits.maxInFlightPerConnection) req.refused = ErrorCode.TOO_MANY_IN_FLIGHT;
  else if (consistency && !req.refused && validateRequest(req.frame) === 0) {
    req.level = consistency.levelOf(req.frame);
    const refusal = consistency.refusal(req.frame, req.level);
    if (refusal) req.refused = refusal;
  }
  conn.inFlight++;
  if (conn.queued.length === 0) batchConnections.push(conn);
  conn.queued.push(req);
  batchRequests++;
  if (!batchScheduled) {
    batchScheduled = true;
    setImmediate(runBatch);
  }
}

function runBatch(): void {
  const arriving = batchRequests > batchRequestsSeen;
  if (arriving && batchDeferrals < MAX_BATCH_DEFERRALS && batchConnections.some((c) => c.queued.some(isWrite))) {
    batchDeferrals++;
    batchRequestsSeen = batchRequests;
    setImmediate(runBatch);
    return;
  }
  batchScheduled = false;
  batchRequests = batchRequestsSeen = batchDeferrals = 0;
  const conns = batchConnections;
  batchConnections = [];
  const batch: Request[] = [];
  for (const c of conns) for (const r of c.queued) batch.push(r);
  store.syncReadCache();
  const leaseEnd = consistency?.leaseEnd() ?? 0n;
  executeBatch(env, batch);
  if (consistency) holdForCluster(conns, consistency.readUnderLease(leaseEnd));
  for (const conn of conns) {
    for (const r of conn.queued) conn.outbox.push(r);
    conn.queued = [];
    flush(conn);
  }
  stats[StatSlot.requests] += batch.length;
}

/** Replies that the request's consistency level makes wait for the cluster; `leased`: the batch's reads were made under read leases. */
function holdForCluster(conns: Connection[], leased: boolean): void {
  const seq = store.lastWriteSeq;
  const now = performance.now();
  const reads: Request[] = [];
  const connOf = new Map<Request, Connection>();
  for (const conn of conns) {
    for (const r of conn.queued) {
      if (r.level === undefined || r.level === ConsistencyLevel.ONE || r.reply!.command === Command.ERROR) continue;
      if (r.frame.command === Command.GET) {
        if (!leased) reads.push(r);
        connOf.set(r, conn);
      } else if (r.frame.command === Command.PUT || r.frame.command === Command.DEL) {
        consistency!.holdWrite(r, r.level, seq, now, () => flush(conn));
      }
    }
  }
  consistency!.holdReads(reads, (r) => flush(connOf.get(r)!));
}

/** Sends the executed replies of a connection in request order, up to a READ_THROUGH GET still waiting. */
function flush(conn: Connection): void {
  const box = conn.outbox;
  let n = 0;
  while (n < box.length && box[n].awaitKey === undefined && !box[n].held) n++;
  if (n > 0) {
    conn.inFlight -= n;
    if (!conn.socket.destroyed) {
      const out = Buffer.allocUnsafe(n * FRAME_BYTES);
      let errors = 0;
      const nowMs = performance.now();
      for (let i = 0; i < n; i++) {
        const reply = box[i].reply!;
        if (reply.command === -1) errors++;
        encodeFrameInto(out, i * FRAME_BYTES, reply);
        metrics.request(box[i].frame.command, reply.command, (nowMs - box[i].receivedAtMs!) / 1000);
      }
      stats[StatSlot.errors] += errors;
      stats[StatSlot.bytesOut] += out.length;
      if (!conn.socket.write(out) && conn.socket.writableLength > data.limits.maxPendingReplyBytesPerConnection) {
        // the client is not reading its replies: stop reading its requests until it does
        conn.socket.pause();
        conn.socket.once('drain', () => conn.socket.resume());
      }
    }
    box.splice(0, n);
  }
  if (box.length > 0 && box[0].awaitKey !== undefined && !conn.waiting) {
    const head = box[0];
    conn.waiting = true;
    void keyFetched(head.awaitKey!).then(() => {
      store.syncReadCache(); // the fetched key was written by another connection
      head.reply = rereadGet(env, head);
      head.awaitKey = undefined;
      conn.waiting = false;
      flush(conn);
    });
  } else if (box.length === 0 && refusing) conn.socket.end();
}

const server = createServer({ noDelay: true }, (socket) => {
  if (draining) {
    socket.destroy();
    return;
  }
  if (connections.size >= data.limits.maxConnectionsPerProcessor) {
    stats[StatSlot.refusedConnections]++;
    const out = Buffer.allocUnsafe(FRAME_BYTES);
    encodeFrameInto(out, 0, errorReply(0n, ErrorCode.TOO_MANY_CONNECTIONS));
    socket.end(out);
    socket.on('error', () => {});
    return;
  }
  const conn: Connection = {
    socket,
    reader: new FrameReader(),
    remote: socket.remoteAddress ?? '',
    inFlight: 0,
    queued: [],
    outbox: [],
    waiting: false,
    lastActivityMs: Date.now(),
    receivedAtMs: 0,
  };
  connections.add(conn);
  stats[StatSlot.connections] = connections.size;
  socket.setTimeout(data.limits.idleTimeoutMs, () => socket.destroy());
  socket.on('data', (chunk) => {
    stats[StatSlot.bytesIn] += chunk.length;
    conn.lastActivityMs = Date.now();
    conn.receivedAtMs = performance.now();
    conn.reader.push(chunk, (buf, off) => enqueue(conn, buf, off));
  });
  socket.on('error', () => {
    // a reset by the client: nothing to answer; 'close' cleans up
  });
  socket.on('close', () => {
    connections.delete(conn);
    stats[StatSlot.connections] = connections.size;
  });
});

server.on('error', (e) => {
  log('error', `processor cannot listen on ${data.host}:${data.port}: ${e.message}`);
  shutdownNow(1);
});

function beat(): void {
  stats[StatSlot.heartbeatMs] = Date.now();
}
beat();
const heartbeat = setInterval(beat, data.heartbeatIntervalMs);
const forgetMisses = setInterval(() => reportedMisses.clear(), 1000);
const expireHeld = consistency ? setInterval(() => consistency.expire(performance.now()), 50) : undefined;

server.listen({ host: data.host, port: data.port, reusePort: true, backlog: 4096 }, () => send({ type: 'ready' }));

function shutdownNow(code: number): void {
  clearInterval(heartbeat);
  clearInterval(forgetMisses);
  clearInterval(expireHeld);
  for (const c of connections) c.socket.destroy();
  store.close();
  process.exit(code);
}

/**
 * Graceful stop: close the listener (the group's other processors keep
 * accepting), keep serving open connections until each is idle, then close
 * it; at the deadline refuse what still arrives, close everything and exit.
 */
function drain(timeoutMs: number): void {
  if (draining) return;
  draining = true;
  server.close();
  const deadlineMs = Date.now() + timeoutMs;
  const poll = setInterval(() => {
    const now = Date.now();
    if (now >= deadlineMs && !refusing) {
      refusing = true;
      // replies still waiting for the cluster are answered now, so every request read gets a reply
      consistency?.failAll();
      for (const c of connections) if (c.inFlight === 0) c.socket.end();
    }
    for (const c of connections) {
      const idle = c.inFlight === 0 && c.reader.bufferedBytes === 0 && now - c.lastActivityMs >= DRAIN_IDLE_CLOSE_MS;
      if (idle && !c.socket.writableEnded) c.socket.end();
    }
    const flushed = [...connections].every((c) => c.socket.writableLength === 0);
    if ((connections.size === 0 || (refusing && flushed)) && !batchScheduled) {
      clearInterval(poll);
      shutdownNow(0);
    }
  }, 10);
}

port.on('message', (m: ToProcessor) => {
  if (m.type === 'drain') drain(m.timeoutMs);
  else if (m.type === 'key-fetched') finishWait(m.key);
  else if (m.type === 'acked') consistency?.acked();
  else if (m.type === 'quorum-read-done') consistency?.readDone(m.id, m.ok, m.entries);
  else if (m.type === 'fault') {
    if (m.fault === 'crash') throw new Error('injected crash');
    // a hang: the event loop never turns again; only the heartbeat watch can see it
    for (;;);
  }
});

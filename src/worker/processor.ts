// A processor: one worker thread that listens on its group's port with
// SO_REUSEPORT (the kernel spreads connections over the group's processors),
// reads 4096-byte frames in batches, answers reads from its own connection to
// the store, hands writes to the group's writer thread and replies once the
// writer has committed them. Heartbeat and counters go to shared memory for
// the supervisor.

import { createServer, type Socket } from 'node:net';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Command, ConsistencyLevel, ErrorCode, FRAME_BYTES, FrameReader, decodeFrame, encodeFrameInto, errorReply, validateRequest, type Frame } from '../protocol/index.ts';
import { Store } from '../store/store.ts';
import { WriterLink, type WriterAnswer } from '../writer/link.ts';
import { decodeResults, encodeOps } from '../writer/ops-codec.ts';
import type { InvalidationMessage, WriteOp } from '../writer/contract.ts';
import { executeLocal, isWrite, replyFromResult, replyWithoutCommit, rereadGet, writerOp, type HandlerEnv, type Request } from './handler.ts';
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
  /** requests whose replies are not sent yet, in request order: a reply still missing (writer, READ_THROUGH) holds the rest */
  outbox: Request[];
  /** the head of the outbox is waiting for a key fetch */
  waiting: boolean;
  /** ops of this connection handed to the writer and not answered yet: its later store reads go to the writer too */
  opsAtWriter: number;
  /** the connection is being closed: nothing more is read from it */
  closing: boolean;
  lastActivityMs: number;
  /** performance.now() of the last bytes read */
  receivedAtMs: number;
}

/** A batch's ops handed to the writer together, with the requests they answer. */
interface Handoff {
  requests: Request[];
  /** the connection of each request */
  owners: Connection[];
  conns: Connection[];
  /** the read leases' end before the hand-off (consistency.ts): reads the writer makes are under it if it is still ahead after */
  leaseEnd: bigint;
}

/** While draining, a connection with nothing in flight and no request for this long is closed. */
const DRAIN_IDLE_CLOSE_MS = 50;
/** Invalidations are also taken this often when no request comes, so they do not pile up. */
const INVALIDATION_DRAIN_MS = 100;

const store = Store.open(data.dbFile, {
  readCacheEntries: data.limits.readCacheEntries,
  keepTombstones: data.keepTombstones,
  durability: data.durability,
  origin: data.origin,
});
const writer = new WriterLink(data.writerWaitMs);
const consistency = data.consistency ? new Consistency(data.consistency, send) : null;
const commitCounter = new Int32Array(data.commitCounter);
let invalidations: MessagePort | undefined;
/** the writer's commit number up to which this processor's read cache has dropped the changed keys */
let cacheSeen = 0;

function useWriter(requests: MessagePort, changes: MessagePort): void {
  invalidations?.close();
  invalidations = changes;
  // what the previous writer changed is not all known here: start the cache afresh
  store.clearCache();
  cacheSeen = Atomics.load(commitCounter, 0);
  writer.attach(requests);
}
if (data.writer && data.invalidations) useWriter(data.writer, data.invalidations);

/**
 * Before serving reads: drop the cached keys of every commit the writer has
 * finished. The writer posts a commit's keys before it publishes the
 * commit's number and before it answers, so every write acknowledged before
 * this call is either read here or its keys are already dropped.
 */
function syncCache(): void {
  const target = Atomics.load(commitCounter, 0);
  while (cacheSeen < target) {
    const m = invalidations && receiveMessageOnPort(invalidations);
    if (!m) {
      // a commit of a writer this processor has no port for (being replaced)
      store.clearCache();
      cacheSeen = target;
      return;
    }
    const inv = m.message as InvalidationMessage;
    if (inv.n <= cacheSeen) continue;
    store.invalidate(inv.keys);
    cacheSeen = inv.n;
  }
}

const connections = new Set<Connection>();
let batchConnections: Connection[] = [];
let batchScheduled = false;
/** requests queued for the next batch, and how many were queued at the previous look */
let batchRequests = 0;
let batchRequestsSeen = 0;
let batchDeferrals = 0;
/**
 * A batch with writes waits up to this many more event-loop turns while
 * requests are still arriving (each turn reads whatever the sockets hold by
 * then), so one hand-off to the writer carries more writes.
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
  shutdown(req: Request) {
    if (!data.allowShutdown || !isLoopback(req.remote)) return ErrorCode.NOT_ALLOWED;
    send({ type: 'shutdown-requested', from: req.remote });
    return 0 as const;
  },
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
  batchRequests = batchRequestsSeen = batchDeferrals = 0;
  batchScheduled = false;
  const conns = batchConnections;
  batchConnections = [];
  syncCache();
  const leaseEnd = consistency?.leaseEnd() ?? 0n;
  const handoff: Handoff = { requests: [], owners: [], conns: [], leaseEnd };
  const ops: WriteOp[] = [];
  const local: { req: Request; conn: Connection }[] = [];
  let n = 0;
  for (const conn of conns) {
    const before = ops.length;
    for (const r of conn.queued) {
      const op = writerOp(r, conn.opsAtWriter > 0);
      if (op) {
        ops.push(op);
        handoff.requests.push(r);
        handoff.owners.push(conn);
        conn.opsAtWriter++;
      } else {
        r.reply = executeLocal(env, r);
        if (consistency) local.push({ req: r, conn });
      }
      conn.outbox.push(r);
    }
    n += conn.queued.length;
    conn.queued = [];
    if (ops.length > before) handoff.conns.push(conn);
  }
  if (consistency) holdForCluster(local, consistency.readUnderLease(leaseEnd));
  for (const conn of conns) flush(conn);
  stats[StatSlot.requests] += n;
  if (ops.length > 0) writer.request({ type: 'ops', ops: encodeOps(ops) }, (answer) => commitResultArrived(handoff, answer));
}

/**
 * The writer's answer for one hand-off arrived: build each request's reply
 * from its result, then send the replies. The one place between "committed"
 * and "answered".
 */
function commitResultArrived(handoff: Handoff, answer: WriterAnswer): void {
  settleReplies(handoff, answer);
  if (consistency) holdForCluster(handoff.requests.map((req, i) => ({ req, conn: handoff.owners[i] })), consistency.readUnderLease(handoff.leaseEnd));
  sendReplies(handoff);
}

/**
 * Replies that the request's consistency level makes wait for the cluster:
 * a MAJORITY/ALL write until enough daemons hold its seq, a MAJORITY GET
 * (unless its read was made under the read leases, `leased`) until a quorum
 * read answers. Errors go out at once.
 */
function holdForCluster(items: { req: Request; conn: Connection }[], leased: boolean): void {
  const now = performance.now();
  const reads: Request[] = [];
  const connOf = new Map<Request, Connection>();
  for (const { req: r, conn } of items) {
    if (r.level === undefined || r.level === ConsistencyLevel.ONE || r.reply === undefined || r.reply.command === Command.ERROR) continue;
    if (r.frame.command === Command.GET) {
      if (leased) continue;
      reads.push(r);
      connOf.set(r, conn);
    } else if ((r.frame.command === Command.PUT || r.frame.command === Command.DEL) && r.seq !== undefined) {
      consistency!.holdWrite(r, r.level, r.seq, now, () => flush(conn));
    }
  }
  consistency!.holdReads(reads, (r) => flush(connOf.get(r)!));
}

function settleReplies(handoff: Handoff, answer: WriterAnswer): void {
  if (answer?.type === 'done') {
    const results = decodeResults(answer.results);
    handoff.requests.forEach((r, i) => {
      r.reply = replyFromResult(env, r, results[i]);
      r.seq = results[i].seq;
    });
    return;
  }
  if (answer === null) log('error', 'the writer died with writes in flight; they are answered OUTCOME_UNKNOWN', { requests: handoff.requests.length });
  else if (answer.type === 'failed') log('error', 'store write failed; batch rolled back and answered with STORE_FAILED', { file: data.dbFile, sqliteCode: answer.sqliteCode, error: answer.error });
  // reads are answered again from committed state
  syncCache();
  for (const r of handoff.requests) r.reply = replyWithoutCommit(env, r, answer === null);
}

function sendReplies(handoff: Handoff): void {
  for (const conn of handoff.conns) {
    conn.opsAtWriter = 0;
    for (const r of conn.outbox) if (r.reply === undefined) conn.opsAtWriter++;
    flush(conn);
  }
}

/** Sends the executed replies of a connection in request order, up to a READ_THROUGH GET still waiting. */
function flush(conn: Connection): void {
  const box = conn.outbox;
  let n = 0;
  while (n < box.length && box[n].reply !== undefined && box[n].awaitKey === undefined && !box[n].held) n++;
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
      syncCache(); // the fetched key was written by the writer
      head.reply = rereadGet(env, head);
      head.awaitKey = undefined;
      conn.waiting = false;
      flush(conn);
    });
  } else if (box.length === 0 && refusing) closeConnection(conn);
}

/**
 * Closes a connection without reading from it again: a request that arrives
 * after this is never read (the client sees the connection close), so every
 * request that is read, and executed, is answered.
 */
function closeConnection(conn: Connection): void {
  if (conn.closing) return;
  conn.closing = true;
  conn.socket.pause();
  conn.socket.end(() => conn.socket.destroy());
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
    opsAtWriter: 0,
    closing: false,
    lastActivityMs: performance.now(),
    receivedAtMs: 0,
  };
  connections.add(conn);
  stats[StatSlot.connections] = connections.size;
  socket.setTimeout(data.limits.idleTimeoutMs, () => socket.destroy());
  socket.on('data', (chunk) => {
    if (conn.closing) return;
    stats[StatSlot.bytesIn] += chunk.length;
    conn.lastActivityMs = performance.now();
    conn.receivedAtMs = conn.lastActivityMs;
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
  stats[StatSlot.beats]++;
}
beat();
const heartbeat = setInterval(beat, data.heartbeatIntervalMs);
const forgetMisses = setInterval(() => reportedMisses.clear(), 1000);
const drainInvalidations = setInterval(syncCache, INVALIDATION_DRAIN_MS);
const expireHeld = consistency ? setInterval(() => consistency.expire(performance.now()), 50) : undefined;

server.listen({ host: data.host, port: data.port, reusePort: true, backlog: 4096 }, () => send({ type: 'ready' }));

function shutdownNow(code: number): void {
  clearInterval(heartbeat);
  clearInterval(forgetMisses);
  clearInterval(drainInvalidations);
  clearInterval(expireHeld);
  for (const c of connections) c.socket.destroy();
  writer.close();
  invalidations?.close();
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
  const deadlineMs = performance.now() + timeoutMs;
  const poll = setInterval(() => {
    const now = performance.now();
    if (now >= deadlineMs && !refusing) {
      refusing = true;
      // replies still waiting for the cluster are answered now, so every request read gets a reply
      consistency?.failAll();
      for (const c of connections) if (c.inFlight === 0) closeConnection(c);
    }
    for (const c of connections) {
      const idle = c.inFlight === 0 && c.reader.bufferedBytes === 0 && now - c.lastActivityMs >= DRAIN_IDLE_CLOSE_MS;
      if (idle) closeConnection(c);
    }
    const flushed = [...connections].every((c) => c.socket.writableLength === 0);
    if ((connections.size === 0 || (refusing && flushed)) && !batchScheduled && writer.inFlight === 0) {
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
  else if (m.type === 'writer') useWriter(m.port, m.invalidations);
  else if (m.type === 'writer-down') writer.detach();
  else if (m.type === 'fault') {
    if (m.fault === 'crash') throw new Error('injected crash');
    // a hang: the event loop never turns again; only the heartbeat watch can see it
    for (;;);
  }
});

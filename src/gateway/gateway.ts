// The gateway: one address for clients that know only one. It accepts kv739
// client connections (both styles: a connection per request, and persistent
// pipelined ones), forwards each request to a daemon of the cluster over a
// few persistent pipelined connections per daemon, and sends the replies
// back on each client connection in request order. This file is the I/O
// shell: sockets, timers and probes. The decisions are made by the pure
// parts: router.ts (which daemon), requests.ts (answer locally, retry or
// OUTCOME_UNKNOWN), order.ts (reply order), cluster-view.ts (the leader's flags).

import { createServer, type Server, type Socket } from 'node:net';
import { Command, ErrorCode, FRAME_BYTES, FrameReader, Offset, decodeFrame, encodeFrame, errorReply, type ErrorCodeNumber } from '../protocol/index.ts';
import type { GatewayConfig } from '../config/config.ts';
import { RestartPolicy } from '../supervisor/backoff.ts';
import type { Logger } from '../shared/log.ts';
import { fetchView, flaggedDaemons, isLoopbackHost, type AdminEndpoint } from './cluster-view.ts';
import { writeRequestId } from './ids.ts';
import { DaemonLink, type LinkEvents } from './link.ts';
import { ReplyOrder } from './order.ts';
import { afterFailure, isNotTaken, isReadOnly, localError, routingKey, type AttemptFailure } from './requests.ts';
import { Router } from './router.ts';

/** A daemon the gateway forwards to: its client port, and its admin port for the cluster view. */
export interface Backend {
  id: string;
  host: string;
  port: number;
  adminPort: number;
}

interface ClientConn {
  socket: Socket;
  reader: FrameReader;
  order: ReplyOrder;
  closed: boolean;
  lastActivityMs: number;
}

/** A client request on its way through the gateway. */
interface Request {
  client: ClientConn;
  seq: number;
  /** the client's frame; its id field holds the gateway id of the current attempt */
  frame: Buffer;
  command: number;
  key: string | undefined;
  /** the client's request id, restored on the reply */
  clientIdLo: number;
  clientIdHi: number;
  attempts: number;
  tried: Set<number>;
  /** current attempt: gateway id, daemon, link (undefined while in the daemon's backlog), start */
  id: number;
  daemon: number;
  link: DaemonLink | undefined;
  startedMs: number;
}

interface Probe {
  daemon: number;
  link: DaemonLink;
  startedMs: number;
}

interface DaemonSlot {
  backend: Backend;
  links: (DaemonLink | undefined)[];
  /** requests routed here and waiting for room on a link (not written anywhere) */
  backlog: Set<Request>;
  reconnect: RestartPolicy;
  reconnectTimers: (NodeJS.Timeout | undefined)[];
  probe: number | undefined;
  /** when the daemon last answered anything (evidence it is alive while a probe waits behind a long queue) */
  lastReplyMs: number;
  lastDownReason: string;
}

/** While starting and stopping, the gateway checks its daemons and clients this often. */
const POLL_MS = 10;
/** While stopping, a client connection with nothing outstanding and no request for this long is closed. */
const DRAIN_IDLE_CLOSE_MS = 50;
/** A client whose unread replies exceed this stops being read until it catches up. */
const MAX_PENDING_REPLY_BYTES = 4 * 1024 * 1024;

export interface GatewayStatus {
  clients: number;
  requestsInFlight: number;
  parked: number;
  daemons: { id: string; up: boolean; suspect: boolean; outstanding: number; connectedLinks: number; backlog: number; lastDownReason: string }[];
}

export class Gateway {
  private readonly config: GatewayConfig;
  private readonly log: Logger;
  private readonly router: Router;
  private readonly slots: DaemonSlot[];
  private readonly server: Server;
  private readonly clients = new Set<ClientConn>();
  /** current attempt id → request, in attempt start order (the timeout sweep relies on it) */
  private readonly attempts = new Map<number, Request>();
  private readonly probes = new Map<number, Probe>();
  /** requests waiting for any daemon to be up */
  private parked: Request[] = [];
  private nextId = 1;
  private readonly dirtyLinks = new Set<DaemonLink>();
  private readonly dirtyClients = new Set<ClientConn>();
  private flushScheduled = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** the drain deadline passed: every new request is answered SHUTTING_DOWN */
  private refusing = false;
  /** before the port opens: daemons found up now take their keys at once */
  private starting = true;
  private viewLeader: number | undefined;
  private viewPolls = 0;
  private lastViewPoll = -1;
  private readonly linkEvents: LinkEvents;

  constructor(config: GatewayConfig, backends: readonly Backend[], log: Logger) {
    if (backends.length === 0) throw new Error('the gateway needs at least one daemon');
    this.config = config;
    this.log = log;
    this.router = new Router(backends.map((b) => b.id), {
      rejoinAfterMs: config.rejoinAfterMs,
      readSpillOutstanding: config.readSpillOutstanding,
      recentWriteMs: config.recentWriteMs,
      maxRecentWrites: config.maxRecentWrites,
    });
    this.slots = backends.map((backend) => ({
      backend,
      links: new Array(config.connectionsPerDaemon).fill(undefined),
      backlog: new Set(),
      reconnect: new RestartPolicy({
        restartBackoffInitialMs: config.reconnectBackoffInitialMs,
        restartBackoffMaxMs: config.reconnectBackoffMaxMs,
        maxRestarts: Number.MAX_SAFE_INTEGER,
        restartWindowMs: 60_000,
      }),
      reconnectTimers: new Array(config.connectionsPerDaemon).fill(undefined),
      probe: undefined,
      lastReplyMs: 0,
      lastDownReason: 'not connected yet',
    }));
    this.linkEvents = {
      connected: (link) => this.sendProbe(link),
      reply: (link, id, buffer, offset) => this.onDaemonReply(link, id, buffer, offset),
      lost: (link, reason, written, unsent) => this.onLinkLost(link, reason, written, unsent),
    };
    this.server = createServer({ noDelay: true }, (socket) => this.onClient(socket));
  }

  /**
   * Connects to every daemon, waits until each has answered a probe (at most
   * connectTimeoutMs + probeTimeoutMs: the keys are spread over the daemons
   * up at that moment, so they do not move as the others answer), then
   * listens; resolves once the port is open.
   */
  async start(): Promise<void> {
    this.slots.forEach((slot, d) => slot.links.forEach((_l, k) => this.openLink(d, k)));
    const sweepMs = Math.max(5, Math.min(100, Math.floor(this.config.requestTimeoutMs / 4)));
    this.timers.push(setInterval(() => this.sweep(), sweepMs));
    this.timers.push(setInterval(() => this.probeAll(), this.config.probeIntervalMs));
    if (this.config.clusterViewIntervalMs > 0) this.timers.push(setInterval(() => void this.pollView(), this.config.clusterViewIntervalMs));
    const waitUntil = Date.now() + this.config.connectTimeoutMs + this.config.probeTimeoutMs;
    while (Date.now() < waitUntil && this.slots.some((_s, d) => !this.router.isUp(d))) await new Promise((r) => setTimeout(r, POLL_MS));
    this.starting = false;
    const down = this.slots.filter((_s, d) => !this.router.isUp(d)).map((s) => `${s.backend.id} (${s.lastDownReason})`);
    if (down.length > 0) this.log('warn', 'starting without some daemons; they take their share of keys once up for rejoinAfterMs', { down });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e) => reject(new Error(`gateway cannot listen on ${this.config.host}:${this.config.port}: ${e.message}`)));
      this.server.listen({ host: this.config.host, port: this.config.port, backlog: 4096 }, () => resolve());
    });
    this.log('info', 'gateway listening', { host: this.config.host, port: this.address().port, daemons: this.slots.map((s) => `${s.backend.id}@${s.backend.host}:${s.backend.port}`) });
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    return { host: this.config.host, port: a && typeof a === 'object' ? a.port : this.config.port };
  }

  status(): GatewayStatus {
    return {
      clients: this.clients.size,
      requestsInFlight: this.attempts.size,
      parked: this.parked.length,
      daemons: this.slots.map((s, d) => ({
        id: s.backend.id,
        up: this.router.isUp(d),
        suspect: this.router.isSuspect(d),
        outstanding: this.router.outstanding(d),
        connectedLinks: s.links.filter((l) => l?.connected).length,
        backlog: s.backlog.size,
        lastDownReason: s.lastDownReason,
      })),
    };
  }

  /**
   * Graceful stop, as a processor drains: no new connections; open ones are
   * served until each is idle (nothing outstanding, nothing sent for
   * DRAIN_IDLE_CLOSE_MS), then closed; at drainTimeoutMs what still arrives
   * is answered SHUTTING_DOWN and everything closes.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.server.close();
    const deadline = Date.now() + this.config.drainTimeoutMs;
    for (;;) {
      const now = Date.now();
      for (const c of this.clients) {
        const idle = c.order.outstanding === 0 && c.reader.bufferedBytes === 0 && now - c.lastActivityMs >= DRAIN_IDLE_CLOSE_MS;
        if (idle && !c.socket.writableEnded) c.socket.end();
      }
      if (this.clients.size === 0 || now >= deadline) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    this.refusing = true;
    // the replies already queued get a moment to leave
    const flushedBy = Date.now() + 100;
    while (Date.now() < flushedBy && [...this.clients].some((c) => c.socket.writableLength > 0)) await new Promise((r) => setTimeout(r, POLL_MS));
    for (const t of this.timers) clearInterval(t);
    for (const c of this.clients) c.socket.destroy();
    for (const slot of this.slots) {
      for (const t of slot.reconnectTimers) clearTimeout(t);
      for (const l of slot.links) l?.close('gateway stopping');
    }
  }

  // ---- client side ----

  private onClient(socket: Socket): void {
    socket.on('error', () => {
      // a reset by the client: 'close' cleans up
    });
    if (this.stopping || this.clients.size >= this.config.maxClientConnections) {
      socket.end(encodeFrame(errorReply(0n, this.stopping ? ErrorCode.SHUTTING_DOWN : ErrorCode.TOO_MANY_CONNECTIONS)));
      return;
    }
    const conn: ClientConn = { socket, reader: new FrameReader(), order: new ReplyOrder(), closed: false, lastActivityMs: Date.now() };
    this.clients.add(conn);
    socket.setTimeout(this.config.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk) => {
      conn.lastActivityMs = Date.now();
      conn.reader.push(chunk, (b, o) => this.onClientFrame(conn, b, o));
    });
    socket.on('close', () => {
      conn.closed = true;
      this.clients.delete(conn);
    });
  }

  private onClientFrame(conn: ClientConn, buffer: Buffer, offset: number): void {
    const seq = conn.order.reserve();
    const clientIdLo = buffer.readUInt32LE(offset + Offset.id);
    const clientIdHi = buffer.readUInt32LE(offset + Offset.id + 4);
    const answer = (code: ErrorCodeNumber) => this.fillReply(conn, seq, clientIdLo, clientIdHi, encodeFrame(errorReply(0n, code)));
    if (this.refusing) return answer(ErrorCode.SHUTTING_DOWN);
    if (conn.order.outstanding > this.config.maxInFlightPerClientConnection) return answer(ErrorCode.TOO_MANY_IN_FLIGHT);
    const decoded = decodeFrame(buffer, offset);
    if (!decoded.ok) return answer(decoded.error.code);
    const refused = localError(decoded.frame);
    if (refused) return answer(refused);
    const frame = Buffer.allocUnsafe(FRAME_BYTES);
    buffer.copy(frame, 0, offset, offset + FRAME_BYTES);
    const req: Request = {
      client: conn,
      seq,
      frame,
      command: decoded.frame.command,
      key: routingKey(decoded.frame),
      clientIdLo,
      clientIdHi,
      attempts: 0,
      tried: new Set(),
      id: 0,
      daemon: -1,
      link: undefined,
      startedMs: 0,
    };
    this.dispatch(req);
  }

  /** Puts a reply (any id) into the client's order with the client's request id. */
  private fillReply(conn: ClientConn, seq: number, idLo: number, idHi: number, reply: Buffer): void {
    if (conn.closed) return;
    reply.writeUInt32LE(idLo, Offset.id);
    reply.writeUInt32LE(idHi, Offset.id + 4);
    conn.order.fill(seq, reply);
    this.dirtyClients.add(conn);
    this.scheduleFlush();
  }

  private answer(req: Request, reply: Buffer): void {
    this.fillReply(req.client, req.seq, req.clientIdLo, req.clientIdHi, reply);
  }

  private answerError(req: Request, code: ErrorCodeNumber): void {
    this.answer(req, encodeFrame(errorReply(0n, code)));
  }

  // ---- routing ----

  /** Sends a request on its next attempt: to a daemon's link, its backlog, or parked until one is up. */
  private dispatch(req: Request): void {
    const now = Date.now();
    const read = isReadOnly(req.command);
    // prefer a daemon not tried yet; a read may go back to one tried before rather than wait
    let d = this.router.choose(req.key, read, req.tried, now);
    if (d === undefined && req.tried.size > 0) d = this.router.choose(req.key, read, new Set(), now);
    if (d === undefined) {
      req.link = undefined;
      req.daemon = -1;
      req.startedMs = now;
      this.parked.push(req);
      return;
    }
    req.attempts++;
    req.id = this.nextId++;
    req.daemon = d;
    req.startedMs = now;
    writeRequestId(req.frame, 0, req.id);
    this.attempts.set(req.id, req);
    this.router.started(d);
    if (!read && req.key !== undefined) this.router.wrote(req.key, d, now);
    const link = this.linkWithRoom(d);
    if (link) this.enqueueOn(link, req);
    else {
      req.link = undefined;
      this.slots[d]!.backlog.add(req);
    }
  }

  private linkWithRoom(d: number): DaemonLink | undefined {
    let best: DaemonLink | undefined;
    for (const l of this.slots[d]!.links) {
      if (l?.connected && l.load < this.config.maxInFlightPerDaemonConnection && (!best || l.load < best.load)) best = l;
    }
    return best;
  }

  private enqueueOn(link: DaemonLink, req: Request): void {
    req.link = link;
    link.enqueue(req.id, req.frame);
    this.dirtyLinks.add(link);
    this.scheduleFlush();
  }

  /** Moves backlog requests of daemon d onto links with room. */
  private pump(d: number): void {
    const backlog = this.slots[d]!.backlog;
    for (const req of backlog) {
      const link = this.linkWithRoom(d);
      if (!link) return;
      backlog.delete(req);
      this.enqueueOn(link, req);
    }
  }

  /** Ends the current attempt of a request (reply, loss or timeout): it no longer counts against its daemon. */
  private endAttempt(req: Request): void {
    this.attempts.delete(req.id);
    this.router.finished(req.daemon);
    if (req.link === undefined) this.slots[req.daemon]!.backlog.delete(req);
  }

  private failAttempt(req: Request, failure: AttemptFailure): void {
    const next = afterFailure(req.command, failure, req.attempts, this.config.maxAttempts);
    if (next === 'retry') {
      req.tried.add(req.daemon);
      this.dispatch(req);
    } else this.answerError(req, next);
  }

  // ---- daemon side ----

  private onDaemonReply(link: DaemonLink, id: number, buffer: Buffer, offset: number): void {
    const d = link.daemon;
    this.slots[d]!.lastReplyMs = Date.now();
    const probe = this.probes.get(id);
    if (probe) {
      this.probes.delete(id);
      this.slots[d]!.probe = undefined;
      this.onProbeAnswered(d, buffer.readInt32LE(offset + Offset.command));
      this.pump(d);
      return;
    }
    const req = this.attempts.get(id);
    if (!req) return;
    this.endAttempt(req);
    const command = buffer.readInt32LE(offset + Offset.command);
    if (command === Command.ERROR && req.attempts < this.config.maxAttempts && isNotTaken(command, Number(buffer.readBigInt64LE(offset + Offset.param)))) {
      // the daemon did not take it (draining, full, no quorum): nothing applied, another daemon may
      req.tried.add(d);
      this.dispatch(req);
    } else {
      const reply = Buffer.allocUnsafe(FRAME_BYTES);
      buffer.copy(reply, 0, offset, offset + FRAME_BYTES);
      this.answer(req, reply);
    }
    this.pump(d);
  }

  private onLinkLost(link: DaemonLink, reason: string, written: number[], unsent: number[]): void {
    const d = link.daemon;
    const slot = this.slots[d]!;
    const k = slot.links.indexOf(link);
    if (k >= 0) slot.links[k] = undefined;
    if (this.stopping) return;
    // any lost connection makes the daemon suspect until a probe on a fresh connection answers
    this.markDown(d, reason);
    for (const id of written) {
      const probe = this.probes.get(id);
      if (probe) {
        this.probes.delete(id);
        slot.probe = undefined;
        continue;
      }
      const req = this.attempts.get(id);
      if (!req) continue;
      this.endAttempt(req);
      this.failAttempt(req, 'lost');
    }
    for (const id of unsent) {
      const req = this.attempts.get(id);
      if (!req) continue;
      this.endAttempt(req);
      this.failAttempt(req, 'not-sent');
    }
    if (k >= 0) this.scheduleReconnect(d, k);
  }

  private markDown(d: number, reason: string): void {
    const slot = this.slots[d]!;
    slot.lastDownReason = reason;
    if (this.router.isUp(d)) {
      this.router.setDown(d);
      this.log('warn', 'daemon down', { daemon: slot.backend.id, reason });
    }
    // its backlog was never written: send it elsewhere
    for (const req of [...slot.backlog]) {
      this.endAttempt(req);
      this.failAttempt(req, 'not-sent');
    }
  }

  private openLink(d: number, k: number): void {
    const slot = this.slots[d]!;
    slot.reconnectTimers[k] = undefined;
    if (this.stopping) return;
    const { host, port } = slot.backend;
    slot.links[k] = new DaemonLink(d, host, port, this.config.connectTimeoutMs, this.linkEvents);
  }

  private scheduleReconnect(d: number, k: number): void {
    const slot = this.slots[d]!;
    if (slot.reconnectTimers[k] !== undefined) return;
    const delayMs = slot.reconnect.onFailure(Date.now()) ?? this.config.reconnectBackoffMaxMs;
    slot.reconnectTimers[k] = setTimeout(() => this.openLink(d, k), delayMs);
  }

  // ---- health ----

  private sendProbe(link: DaemonLink): void {
    const slot = this.slots[link.daemon]!;
    if (slot.probe !== undefined || !link.connected) return;
    const id = this.nextId++;
    const frame = encodeFrame({ command: Command.CHK });
    writeRequestId(frame, 0, id);
    slot.probe = id;
    this.probes.set(id, { daemon: link.daemon, link, startedMs: Date.now() });
    link.enqueue(id, frame);
    this.dirtyLinks.add(link);
    this.scheduleFlush();
  }

  private onProbeAnswered(d: number, command: number): void {
    const slot = this.slots[d]!;
    if (command !== Command.OK) {
      this.markDown(d, `CHK answered ${command === Command.ERROR ? 'ERROR' : command}`);
      return;
    }
    if (!this.router.isUp(d)) {
      this.router.setUp(d, Date.now(), this.starting);
      this.log('info', 'daemon up', { daemon: slot.backend.id });
      const parked = this.parked;
      this.parked = [];
      for (const req of parked) this.dispatch(req);
    }
  }

  /**
   * One CHK per daemon per interval on its least loaded connection. A probe
   * unanswered for probeTimeoutMs, while nothing else came back from that
   * daemon in that time either, takes the daemon down: a busy daemon still
   * answers something, a hung one nothing.
   */
  private probeAll(): void {
    const now = Date.now();
    for (const [id, p] of this.probes) {
      if (now - p.startedMs < this.config.probeTimeoutMs || now - this.slots[p.daemon]!.lastReplyMs < this.config.probeTimeoutMs) continue;
      this.probes.delete(id);
      this.slots[p.daemon]!.probe = undefined;
      p.link.forget(id);
      this.markDown(p.daemon, `no answer to CHK within ${this.config.probeTimeoutMs} ms`);
      // a hung daemon: its connections are closed so what was written there fails over now
      for (const l of this.slots[p.daemon]!.links) l?.close(`no answer to CHK within ${this.config.probeTimeoutMs} ms`);
    }
    this.slots.forEach((slot, d) => {
      if (slot.probe !== undefined) return;
      let best: DaemonLink | undefined;
      for (const l of slot.links) if (l?.connected && (!best || l.load < best.load)) best = l;
      if (best) this.sendProbe(best);
      else this.markDown(d, slot.lastDownReason);
    });
  }

  /** Asks the leader (or, not knowing it, the next daemon) for the cluster's view and applies its flags. */
  private async pollView(): Promise<void> {
    const endpoints = this.slots.map((s): AdminEndpoint => ({ id: s.backend.id, host: s.backend.host, adminPort: s.backend.adminPort }));
    const local = endpoints.map((e, d) => ({ e, d })).filter(({ e }) => isLoopbackHost(e.host));
    if (local.length === 0) return;
    const pick = local.find(({ d }) => d === this.viewLeader) ?? local[this.viewPolls++ % local.length]!;
    const view = await fetchView(pick.e, this.config.probeTimeoutMs);
    if (this.stopping) return;
    if (view instanceof Error) {
      this.viewLeader = undefined;
    } else {
      const flagged = flaggedDaemons(view);
      if (flagged) {
        this.viewLeader = pick.d;
        this.lastViewPoll = Date.now();
        this.slots.forEach((s, d) => this.router.setSuspect(d, flagged.has(s.backend.id)));
        return;
      }
      this.viewLeader = endpoints.findIndex((e) => e.id === view.leaderId);
      if (this.viewLeader < 0) this.viewLeader = undefined;
    }
    // no leader's view for a while: stop acting on an old one
    if (this.lastViewPoll >= 0 && Date.now() - this.lastViewPoll > 3 * this.config.clusterViewIntervalMs) {
      this.slots.forEach((_s, d) => this.router.setSuspect(d, false));
      this.lastViewPoll = -1;
    }
  }

  // ---- timeouts ----

  /** Attempts older than requestTimeoutMs fail (a read or unsent request moves on; a written write gets OUTCOME_UNKNOWN); parked requests past it get SHUTTING_DOWN. */
  private sweep(): void {
    const now = Date.now();
    const limit = this.config.requestTimeoutMs;
    for (const req of this.attempts.values()) {
      if (now - req.startedMs < limit) break; // attempts are in start order
      const unsent = req.link === undefined || req.link.isQueued(req.id);
      req.link?.forget(req.id);
      this.endAttempt(req);
      this.failAttempt(req, unsent ? 'not-sent' : 'lost');
    }
    if (this.parked.length > 0 && now - this.parked[0]!.startedMs >= limit) {
      const keep: Request[] = [];
      for (const req of this.parked) {
        if (now - req.startedMs >= limit) this.answerError(req, ErrorCode.SHUTTING_DOWN);
        else keep.push(req);
      }
      this.parked = keep;
    }
  }

  // ---- output ----

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  /** One socket write per daemon connection and per client connection for everything queued this turn. */
  private flush(): void {
    this.flushScheduled = false;
    for (const link of this.dirtyLinks) link.flush();
    this.dirtyLinks.clear();
    for (const conn of this.dirtyClients) {
      const replies = conn.order.take();
      if (replies.length === 0 || conn.closed) continue;
      const ok = conn.socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies, replies.length * FRAME_BYTES));
      if (!ok && conn.socket.writableLength > MAX_PENDING_REPLY_BYTES && !conn.socket.isPaused()) {
        conn.socket.pause();
        conn.socket.once('drain', () => conn.socket.resume());
      }
    }
    this.dirtyClients.clear();
  }
}

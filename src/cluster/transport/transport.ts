// PeerTransport: authenticated, framed connections between the daemons of the
// cluster, carrying opaque payloads. One live connection per pair of nodes:
// the node with the lower id (JavaScript string order) dials, the higher one
// accepts; a dialer that loses its connection redials with backoff. Payloads
// are delivered in order per pair while a connection lasts; a payload that
// cannot be sent now is refused (send() → false), never queued without bound.

import { EventEmitter } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type ConnectionSettings, type ConnectionHandlers, PeerConnection } from './connection.ts';
import { membershipDigest, type RejectReason } from './handshake.ts';
import { maxPayloadBytes, type PeerAddress, resolveTransportOptions, type ResolvedTransportOptions, type TransportOptions } from './options.ts';
import { backoffMs } from '../../shared/backoff.ts';

export interface TransportEvents {
  message: [peerId: string, payload: Buffer];
  'peer-up': [peerId: string];
  'peer-down': [peerId: string];
}

interface Dialer {
  peer: PeerAddress;
  connection: PeerConnection | null;
  timer: NodeJS.Timeout | null;
  /** Failed attempts since the last open session. */
  failures: number;
}

export class PeerTransport extends EventEmitter<TransportEvents> {
  readonly options: ResolvedTransportOptions;
  private readonly peersById: Map<string, PeerAddress>;
  private readonly server: Server;
  /** Authenticated connections by peer id. */
  private readonly sessions = new Map<string, PeerConnection>();
  /** Connections still in their handshake. */
  private readonly pending = new Set<PeerConnection>();
  private readonly dialers = new Map<string, Dialer>();
  private readonly settings: ConnectionSettings;
  private readonly handlers: ConnectionHandlers;
  private tickTimer: NodeJS.Timeout | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private stopping: Promise<void> | null = null;

  /** Throws on invalid options (naming the option); nothing after that throws. */
  constructor(options: TransportOptions) {
    super();
    this.options = resolveTransportOptions(options);
    this.peersById = new Map(this.options.peers.map((p) => [p.id, p]));
    const o = this.options;
    this.settings = {
      selfId: o.selfId,
      // the membership is what this transport knows: itself and its peers
      membership: membershipDigest([o.selfId, ...o.peers.map((p) => p.id)]),
      secret: o.secret,
      maxFrameBytes: o.maxFrameBytes,
      maxWriteBufferBytes: o.maxWriteBufferBytes,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      log: o.log,
    };
    this.handlers = {
      checkDialerId: (id) => this.checkDialerId(id),
      onOpen: (conn) => this.onOpen(conn),
      onMessage: (conn, payload) => {
        if (this.sessions.get(conn.peerId!) === conn) this.emitSafely('message', conn.peerId!, payload);
      },
      onClosed: (conn, wasOpen) => this.onClosed(conn, wasOpen),
    };
    this.server = createServer((socket) => this.onInbound(socket));
  }

  /** The largest payload send() accepts. */
  get maxPayloadBytes(): number {
    return maxPayloadBytes(this.options.maxFrameBytes);
  }

  /** Listens on the peer port, then dials the peers this node is responsible for. Rejects if it cannot listen. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('PeerTransport.start: a transport starts once (make a new one to restart)');
    this.state = 'running';
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (err) => this.options.log('error', 'peer listener error', { error: err.message }));
    this.options.log('info', 'peer transport listening', { host: this.options.host, port: this.options.port, selfId: this.options.selfId });
    if (this.state !== 'running') return;
    for (const peer of this.options.peers) {
      if (this.options.selfId < peer.id) {
        const dialer: Dialer = { peer, connection: null, timer: null, failures: 0 };
        this.dialers.set(peer.id, dialer);
        this.dial(dialer);
      }
    }
    // Idle detection needs heartbeats (options enforce it), so one timer serves both.
    const { heartbeatIntervalMs } = this.options;
    if (heartbeatIntervalMs > 0) {
      this.tickTimer = setInterval(() => this.tick(), Math.max(10, Math.floor(heartbeatIntervalMs / 4)));
      this.tickTimer.unref();
    }
  }

  /**
   * Sends one payload to a peer. False when the peer is not connected, the
   * payload is over maxPayloadBytes, or the connection's write buffer is over
   * maxWriteBufferBytes: the caller retries later by design.
   */
  send(peerId: string, payload: Buffer): boolean {
    const conn = this.sessions.get(peerId);
    return conn ? conn.send(payload) : false;
  }

  /** Ids of the peers with an authenticated connection, sorted. */
  connected(): string[] {
    return [...this.sessions.keys()].sort();
  }

  /** Closes the listener and every connection, stops redialing. Idempotent; resolves when all is closed. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    const wasListening = this.server.listening;
    this.state = 'stopped';
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const dialer of this.dialers.values()) if (dialer.timer) clearTimeout(dialer.timer);
    const serverClosed = wasListening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    const conns = [...this.pending, ...this.sessions.values()];
    const closed = conns.map((c) => c.closed());
    for (const conn of conns) conn.close();
    await Promise.all([serverClosed, ...closed]);
    this.options.log('info', 'peer transport stopped', { selfId: this.options.selfId });
  }

  private onInbound(socket: Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    if (this.pending.size >= this.options.maxPendingConnections) {
      this.options.log('warn', 'peer connection refused', { remote, reason: 'too-many-pending', limit: this.options.maxPendingConnections });
      socket.destroy();
      return;
    }
    this.pending.add(new PeerConnection(socket, 'acceptor', remote, null, this.settings, this.handlers));
  }

  private checkDialerId(peerId: string): RejectReason | null {
    if (!this.peersById.has(peerId)) return 'unknown-id';
    // Only the lower id dials; a connection the other way means the two configs disagree.
    if (!(peerId < this.options.selfId)) return 'wrong-direction';
    return null;
  }

  private dial(dialer: Dialer): void {
    dialer.timer = null;
    if (this.state !== 'running') return;
    const { host, port, id } = dialer.peer;
    const socket = connect({ host, port });
    const conn = new PeerConnection(socket, 'dialer', `${host}:${port}`, id, this.settings, this.handlers);
    dialer.connection = conn;
    this.pending.add(conn);
  }

  private onOpen(conn: PeerConnection): void {
    this.pending.delete(conn);
    if (this.state !== 'running') {
      conn.close();
      return;
    }
    const peerId = conn.peerId!;
    const dialer = this.dialers.get(peerId);
    if (dialer) dialer.failures = 0;
    const previous = this.sessions.get(peerId);
    if (previous) {
      // The peer came back (restart, or a half-open connection we had not noticed): the new connection wins.
      this.sessions.delete(peerId);
      previous.close();
      this.options.log('info', 'peer connection replaced', { peer: peerId, remote: conn.remote });
      this.emitSafely('peer-down', peerId);
    }
    this.sessions.set(peerId, conn);
    this.options.log('info', 'peer up', { peer: peerId, remote: conn.remote, role: conn.role });
    this.emitSafely('peer-up', peerId);
  }

  private onClosed(conn: PeerConnection, wasOpen: boolean): void {
    this.pending.delete(conn);
    const peerId = conn.peerId;
    if (peerId !== null && this.sessions.get(peerId) === conn) {
      this.sessions.delete(peerId);
      this.options.log('info', 'peer down', { peer: peerId, remote: conn.remote });
      this.emitSafely('peer-down', peerId);
    }
    const dialer = peerId !== null ? this.dialers.get(peerId) : undefined;
    if (dialer && dialer.connection === conn) {
      dialer.connection = null;
      if (this.state === 'running') this.scheduleRedial(dialer, wasOpen);
    }
  }

  private scheduleRedial(dialer: Dialer, wasOpen: boolean): void {
    if (!wasOpen) dialer.failures++;
    const { reconnectBackoffInitialMs, reconnectBackoffMaxMs } = this.options;
    const ceilingMs = backoffMs(dialer.failures, reconnectBackoffInitialMs, reconnectBackoffMaxMs);
    // Jitter spreads the redials of many nodes that lost the same peer at once.
    const delayMs = Math.round(ceilingMs / 2 + (Math.random() * ceilingMs) / 2);
    if (dialer.failures === 1) {
      this.options.log('info', 'peer unreachable, redialing with backoff', { peer: dialer.peer.id, remote: `${dialer.peer.host}:${dialer.peer.port}`, delayMs });
    } else {
      this.options.log('debug', 'peer redial scheduled', { peer: dialer.peer.id, failures: dialer.failures, delayMs });
    }
    dialer.timer = setTimeout(() => this.dial(dialer), delayMs);
  }

  private tick(): void {
    const now = Date.now();
    for (const conn of this.sessions.values()) conn.tick(now, this.options.heartbeatIntervalMs, this.options.idleTimeoutMs);
  }

  /** A throwing listener is the caller's bug; it must not tear down the connection that delivered the event. */
  private emitSafely<E extends keyof TransportEvents>(event: E, ...args: TransportEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: TransportEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.options.log('error', 'peer transport listener threw', { event, error: (err as Error).stack ?? String(err) });
    }
  }
}

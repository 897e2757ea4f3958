// One peer connection: takes a connected socket through the handshake (HELLO,
// AUTH both ways, session keys) and then carries sealed DATA and PING frames.
// Anything unexpected or malformed closes the connection with one log line;
// nothing here throws to the caller.

import { type KeyObject, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { type Frame, FrameDecoder, FrameType } from './framing.ts';
import {
  computeProof,
  decodeHello,
  decodeReject,
  deriveSessionKeys,
  encodeAuth,
  encodeHello,
  encodeReject,
  MAX_HANDSHAKE_FRAME_BYTES,
  NONCE_BYTES,
  openSealed,
  RejectReason,
  type Role,
  sameMac,
  SEALED_OVERHEAD_BYTES,
  sealHeader,
} from './handshake.ts';
import type { TransportLogger } from './options.ts';

export interface ConnectionSettings {
  selfId: string;
  /** membershipDigest of this daemon's config; a peer whose HELLO carries another is refused */
  membership: Buffer;
  secret: Buffer;
  maxFrameBytes: number;
  maxWriteBufferBytes: number;
  handshakeTimeoutMs: number;
  log: TransportLogger;
}

export interface ConnectionHandlers {
  /** The acceptor's check of the id a dialer claims; null accepts it. */
  checkDialerId(peerId: string): RejectReason | null;
  onOpen(conn: PeerConnection): void;
  onMessage(conn: PeerConnection, payload: Buffer): void;
  /** Called once when the socket has closed, whatever the reason. */
  onClosed(conn: PeerConnection, wasOpen: boolean): void;
}

type State = 'hello' | 'auth' | 'open' | 'closed';

export class PeerConnection {
  readonly role: Role;
  /** host:port of the other end, for log lines. */
  readonly remote: string;
  /** The peer's id: known from the start when dialing, from its HELLO when accepting. */
  peerId: string | null;
  lastReceivedAtMs = Date.now();
  lastSentAtMs = Date.now();

  private readonly socket: Socket;
  private readonly settings: ConnectionSettings;
  private readonly handlers: ConnectionHandlers;
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
  private readonly ownHello: Buffer;
  private peerHello: Buffer | null = null;
  private peerMembership: Buffer | null = null;
  private state: State = 'hello';
  private wasOpen = false;
  private sendKey: KeyObject | null = null;
  private receiveKey: KeyObject | null = null;
  private sendSeq = 0n;
  private receiveSeq = 0n;
  private corked = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(socket: Socket, role: Role, remote: string, expectedPeerId: string | null, settings: ConnectionSettings, handlers: ConnectionHandlers) {
    this.socket = socket;
    this.role = role;
    this.peerId = expectedPeerId;
    this.settings = settings;
    this.handlers = handlers;
    this.remote = remote;
    this.ownHello = encodeHello(settings.selfId, randomBytes(NONCE_BYTES), settings.membership);
    this.handshakeTimer = setTimeout(() => this.refuse('handshake-timeout', `no authenticated session within ${settings.handshakeTimeoutMs} ms`, false), settings.handshakeTimeoutMs);

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.settings.log('debug', 'peer socket error', { ...this.describe(), error: err.message }));
    socket.on('close', () => this.onSocketClosed());
    socket.write(this.ownHello);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The largest payload one DATA frame can carry. */
  get maxPayloadBytes(): number {
    return this.settings.maxFrameBytes - SEALED_OVERHEAD_BYTES;
  }

  /**
   * Sends one payload in a DATA frame. False (nothing sent) when the session is
   * not open, the payload is too large, or the write buffer is over its bound.
   * The payload is referenced, not copied, until written: do not modify it.
   */
  send(payload: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (payload.length > this.maxPayloadBytes) return false;
    if (this.socket.writableLength + SEALED_OVERHEAD_BYTES + payload.length > this.settings.maxWriteBufferBytes) return false;
    this.writeSealed(FrameType.DATA, payload);
    return true;
  }

  /** Sends a PING if nothing was sent for `heartbeatIntervalMs`; drops the connection if nothing arrived for `idleTimeoutMs`. */
  tick(nowMs: number, heartbeatIntervalMs: number, idleTimeoutMs: number): void {
    if (this.state !== 'open') return;
    if (idleTimeoutMs > 0 && nowMs - this.lastReceivedAtMs > idleTimeoutMs) {
      this.drop('idle-timeout', `nothing received for ${nowMs - this.lastReceivedAtMs} ms`);
      return;
    }
    if (heartbeatIntervalMs > 0 && nowMs - this.lastSentAtMs >= heartbeatIntervalMs && this.socket.writableLength === 0) {
      this.writeSealed(FrameType.PING, Buffer.alloc(0));
    }
  }

  /** Closes the connection at once (idempotent); onClosed follows when the socket is gone. */
  close(): void {
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    // Also cuts short a refused connection still flushing its REJECT.
    this.socket.destroy();
  }

  /** A method, not a comparison, so that TypeScript does not narrow state across callbacks that change it. */
  private hasClosed(): boolean {
    return this.state === 'closed';
  }

  /** Resolves once the socket has closed. */
  closed(): Promise<void> {
    if (this.socket.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  private writeSealed(type: typeof FrameType.DATA | typeof FrameType.PING, payload: Buffer): void {
    const header = sealHeader(type, this.sendSeq, this.sendKey!, payload);
    this.sendSeq++;
    this.lastSentAtMs = Date.now();
    // Frames sent in the same tick leave in one writev: a burst of small payloads costs one syscall.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(header);
    if (payload.length > 0) this.socket.write(payload);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastReceivedAtMs = Date.now();
    try {
      const error = this.decoder.push(chunk, (frame) => {
        this.onFrame(frame);
        return !this.hasClosed();
      });
      if (error && !this.hasClosed()) {
        if (this.isOpen) this.drop(error.code, error.detail);
        else this.refuse(error.code, error.detail, error.code === 'bad-version');
      }
    } catch (err) {
      // A bug here or in a message handler must not take the daemon down: lose this connection, keep the process.
      this.settings.log('error', 'peer connection failed', { ...this.describe(), error: (err as Error).stack ?? String(err) });
      this.close();
    }
  }

  private onFrame(frame: Frame): void {
    switch (this.state) {
      case 'hello':
        return this.onHandshakeHello(frame);
      case 'auth':
        return this.onHandshakeAuth(frame);
      case 'open':
        return this.onSessionFrame(frame);
      case 'closed':
        return;
    }
  }

  private onHandshakeHello(frame: Frame): void {
    if (frame.type === FrameType.REJECT) return this.refusedByPeer(frame);
    if (frame.type === FrameType.DATA || frame.type === FrameType.PING) return this.refuse('data-before-auth', 'sealed frame before the handshake', false);
    if (frame.type !== FrameType.HELLO) return this.refuse('protocol-error', `frame type ${frame.type} before HELLO`, true);
    const hello = decodeHello(frame.body);
    if ('error' in hello) return this.refuse(hello.error, hello.detail, true);
    if (hello.nodeId === this.settings.selfId) return this.refuse('self-id', 'the peer uses our own id', true);
    if (this.role === 'acceptor') {
      this.peerId = hello.nodeId;
      const refusal = this.handlers.checkDialerId(hello.nodeId);
      if (refusal) return this.refuse(refusal, `dialer claims id ${JSON.stringify(hello.nodeId)}`, true);
    } else if (hello.nodeId !== this.peerId) {
      return this.refuse('unexpected-id', `expected ${this.peerId}, the peer says ${JSON.stringify(hello.nodeId)}`, true);
    }
    this.peerHello = Buffer.from(frame.raw);
    this.peerMembership = hello.membership;
    this.state = 'auth';
    // The dialer proves first; the acceptor answers with its proof only to a dialer that proved.
    if (this.role === 'dialer') this.socket.write(encodeAuth(this.proof('dialer')));
  }

  private onHandshakeAuth(frame: Frame): void {
    if (frame.type === FrameType.REJECT) return this.refusedByPeer(frame);
    if (frame.type === FrameType.DATA || frame.type === FrameType.PING) return this.refuse('data-before-auth', 'sealed frame before authentication', false);
    if (frame.type !== FrameType.AUTH) return this.refuse('protocol-error', `frame type ${frame.type} instead of AUTH`, true);
    const peerRole: Role = this.role === 'dialer' ? 'acceptor' : 'dialer';
    if (!sameMac(this.proof(peerRole), frame.body)) return this.refuse('bad-auth', 'proof does not verify (wrong cluster secret?)', true);
    // checked once the peer has proved the secret (the proof covers its HELLO), so the log line is trustworthy
    if (!this.peerMembership!.equals(this.settings.membership)) {
      return this.refuse('membership', 'the peer\'s config lists other daemons than ours (compare the daemons of every host\'s config)', true);
    }
    if (this.role === 'acceptor') this.socket.write(encodeAuth(this.proof('acceptor')));
    this.open();
  }

  private onSessionFrame(frame: Frame): void {
    if (frame.type !== FrameType.DATA && frame.type !== FrameType.PING) return this.drop('unexpected-frame', `frame type ${frame.type} after the handshake`);
    const opened = openSealed(frame.type, frame.body, this.receiveKey!, this.receiveSeq);
    if ('error' in opened) return this.drop(opened.error, opened.detail);
    this.receiveSeq++;
    if (frame.type === FrameType.DATA) this.handlers.onMessage(this, opened.payload);
  }

  private open(): void {
    const [dialerHello, acceptorHello] = this.hellos();
    const keys = deriveSessionKeys(this.settings.secret, dialerHello, acceptorHello);
    this.sendKey = this.role === 'dialer' ? keys.dialerToAcceptor : keys.acceptorToDialer;
    this.receiveKey = this.role === 'dialer' ? keys.acceptorToDialer : keys.dialerToAcceptor;
    this.decoder.maxFrameBytes = this.settings.maxFrameBytes;
    clearTimeout(this.handshakeTimer);
    this.state = 'open';
    this.wasOpen = true;
    this.handlers.onOpen(this);
  }

  private proof(role: Role): Buffer {
    const [dialerHello, acceptorHello] = this.hellos();
    return computeProof(this.settings.secret, role, dialerHello, acceptorHello);
  }

  private hellos(): [dialerHello: Buffer, acceptorHello: Buffer] {
    return this.role === 'dialer' ? [this.ownHello, this.peerHello!] : [this.peerHello!, this.ownHello];
  }

  /** Handshake failure on our side: log who and why, tell the peer when it is one of ours (REJECT), close. */
  private refuse(reason: string, detail: string, tellPeer: boolean): void {
    this.settings.log('warn', 'peer handshake refused', { ...this.describe(), reason, detail });
    if (tellPeer && reason in RejectReason) this.socket.write(encodeReject(reason as RejectReason));
    this.closeAfterWrite();
  }

  private refusedByPeer(frame: Frame): void {
    this.settings.log('warn', 'peer refused our handshake', { ...this.describe(), reason: decodeReject(frame.body) });
    this.close();
  }

  /** Failure of an authenticated session (bad MAC, replay, malformed frame, idle): log and close. */
  private drop(reason: string, detail: string): void {
    this.settings.log('warn', 'peer connection dropped', { ...this.describe(), reason, detail });
    this.close();
  }

  /** Lets a REJECT already queued reach the peer, then closes; a peer that never reads does not keep us waiting. */
  private closeAfterWrite(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onSocketClosed(): void {
    clearTimeout(this.handshakeTimer);
    if (this.state !== 'closed' && this.decoder.bufferedBytes > 0) {
      this.settings.log('warn', 'peer connection dropped', { ...this.describe(), reason: 'truncated-frame', detail: `${this.decoder.bufferedBytes} bytes of an incomplete frame at close` });
    }
    this.state = 'closed';
    this.handlers.onClosed(this, this.wasOpen);
  }

  private describe(): Record<string, unknown> {
    return { remote: this.remote, role: this.role, peer: this.peerId ?? undefined };
  }
}

// ClusterNode: one daemon's cluster core — election, replication and the
// leader's cluster view behind one small API. Pure: no I/O, no timers, no
// clock reads. The shell calls it with the time, feeds it decoded peer
// messages and carries out each returned Output:
//
//   1. write `persist` (term, vote) durably, if present;
//   2. only then send `messages` (a vote must never leave before it is stored);
//   3. act on `events`.
//
// Data goes through the Replica given at construction: reads synchronous,
// applies asynchronous (the shell reports each with `applied`).

import { Election } from './election.ts';
import { REQUEST_TYPES, type Message } from './messages.ts';
import { Monitor, type ClusterView } from './monitor.ts';
import { Outbox, type Output } from './outbox.ts';
import { Quorum } from './quorum.ts';
import { Replication } from './replication.ts';
import { defaultCoreSettings, type CoreSettings, type DaemonStatus, type HardState, type NodeId, type Replica, type Role } from './types.ts';

export interface ClusterNodeOptions {
  self: NodeId;
  /** every daemon of the cluster, self included (static membership) */
  members: readonly NodeId[];
  hardState: HardState;
  replica: Replica;
  settings?: Partial<CoreSettings>;
  /** uniform in [0, 1): election timeouts and request-id starts */
  random: () => number;
  /**
   * The daemon's wall clock in ms: the same source as its versions' physical
   * part. For clock-offset estimates and the bound on versions from peers.
   */
  wallClockMs: () => number;
  /** the clock of tick/receive at construction (monotonic ms) */
  nowMs: number;
}

const VOTING_TYPES = new Set<Message['type']>(['preVote', 'preVoteReply', 'vote', 'voteReply']);
/**
 * Answers that carry data for one of this node's requests. Pulls, purge
 * rounds, bucket fetches and key queries do not depend on leadership, and
 * their request ids already fence stale answers, so one sent in a lower term
 * is still used: dropping it would stall that pull for a pull timeout after
 * every election.
 */
const DATA_REPLY_TYPES = new Set<Message['type']>(['changes', 'cursorReply', 'bucketEntries', 'hasKey']);

export class ClusterNode {
  readonly self: NodeId;
  readonly peers: readonly NodeId[];
  readonly settings: Readonly<CoreSettings>;
  private readonly election: Election;
  private readonly replication: Replication;
  private readonly monitor: Monitor;
  private readonly quorum: Quorum;
  private readonly replica: Replica;
  private readonly wallClockMs: () => number;
  private status: DaemonStatus | null = null;

  constructor(options: ClusterNodeOptions) {
    const settings = Object.freeze({ ...defaultCoreSettings, ...options.settings });
    if (settings.electionTimeoutMinMs > settings.electionTimeoutMaxMs) throw new RangeError('electionTimeoutMinMs must be <= electionTimeoutMaxMs');
    if (!options.members.includes(options.self)) throw new RangeError(`members must include self (${options.self})`);
    if (new Set(options.members).size !== options.members.length) throw new RangeError('members must be distinct');
    this.self = options.self;
    this.peers = options.members.filter((m) => m !== options.self);
    this.settings = settings;
    this.wallClockMs = options.wallClockMs;
    this.election = new Election(this.self, this.peers, settings, options.hardState, options.random, options.nowMs);
    this.replication = new Replication(this.self, this.peers, settings, options.replica, options.random, options.nowMs);
    this.monitor = new Monitor(this.peers, settings);
    const quorum = new Quorum(this.peers, settings, options.replica, this.replication, options.nowMs);
    this.quorum = quorum;
    this.replication.listener = {
      pulled: (peer, cursor, answer, nowMs, out) => quorum.pulled(peer, cursor, answer, nowMs, out),
      page: (peer, more, lease, sentAtMs, out) => quorum.page(peer, more, lease, sentAtMs, out),
      voided: (out) => quorum.reissueAll(out),
    };
    this.replica = options.replica;
  }

  /** Daemons in a majority of the cluster, this one included. */
  get majority(): number {
    return this.quorum.majority;
  }

  /** Positions of the local change stream held by a majority / by every daemon (see the `acked` event). */
  ackedPositions(): { majority: bigint; all: bigint } {
    return this.quorum.ackedPositions();
  }

  /** Until when (the clock of tick/receive) this daemon's own store answers MAJORITY reads: it holds read leases from every peer. */
  localReadsUntil(): number {
    return this.quorum.localReadsUntil();
  }

  /** How many peers were heard from within peerReachableMs. */
  reachablePeers(nowMs: number): number {
    return this.quorum.reachablePeers(nowMs);
  }

  get role(): Role {
    return this.election.role;
  }

  get term(): number {
    return this.election.term;
  }

  get leaderId(): NodeId | null {
    return this.election.leaderId;
  }

  get hardState(): HardState {
    return this.election.hardState();
  }

  /** Call every few ms (well below heartbeatIntervalMs). */
  tick(nowMs: number): Output {
    const out = this.outbox();
    this.election.tick(nowMs, out);
    this.replication.tick(nowMs, out, this.election);
    this.quorum.tick(nowMs, out);
    if (this.status && this.role === 'leader') this.monitor.selfStatus(this.status, nowMs, out);
    return out.out;
  }

  /** A decoded message from authenticated peer `from`. Messages whose `from` disagrees, or from strangers, are dropped. */
  receive(from: NodeId, msg: Message, nowMs: number): Output {
    const out = this.outbox();
    if (msg.from !== from || !this.peers.includes(from)) return out.out;
    this.quorum.heard(from, nowMs);
    // quorum reads are about data, not leadership: served and accepted in any term
    if (msg.type === 'readRequest') {
      this.quorum.answer(from, msg, out);
      return out.out;
    }
    if (msg.type === 'readReply') {
      const bounded = this.withinClockBound(from, msg, out);
      if (bounded?.type === 'readReply') this.quorum.receiveReply(from, bounded, out);
      return out.out;
    }
    if (VOTING_TYPES.has(msg.type)) {
      this.election.receiveVoting(msg, nowMs, out);
      return out.out;
    }
    if (msg.term < this.term && DATA_REPLY_TYPES.has(msg.type)) {
      const bounded = this.withinClockBound(from, msg, out);
      if (bounded) this.replication.receive(from, bounded, nowMs, out, this.election);
      return out.out;
    }
    if (!this.election.observeTerm(msg, nowMs, out, REQUEST_TYPES.has(msg.type))) return out.out;
    this.election.heardFrom(from, nowMs);
    this.monitor.heard(from, msg.term, nowMs);
    switch (msg.type) {
      case 'heartbeat':
        this.election.receiveHeartbeat(msg, nowMs, out);
        out.send(from, {
          type: 'heartbeatReply',
          echoSentAtMs: msg.sentAtMs,
          wallClockMs: this.wallClockMs(),
          status: this.status ?? emptyStatus(),
        });
        break;
      case 'heartbeatReply':
        if (this.role === 'leader') this.monitor.heartbeatReply(msg, nowMs, this.wallClockMs(), out);
        break;
      case 'retryGroups':
        if (from === this.leaderId) out.event({ type: 'retryGroups', groups: msg.groups });
        break;
      default: {
        const bounded = this.withinClockBound(from, msg, out);
        if (bounded) this.replication.receive(from, bounded, nowMs, out, this.election);
      }
    }
    return out.out;
  }

  /** The replica finished an apply it was given (`count` entries stored; null: it failed, nothing stored). */
  applied(ticket: number, count: number | null, nowMs: number): Output {
    const out = this.outbox();
    this.replication.applied(ticket, count, nowMs, out);
    return out.out;
  }

  /** How many changes of this daemon's stream `peer` has not pulled, by its last pull (null: it has not pulled yet). */
  unpulledBy(peer: NodeId): number | null {
    const cursor = this.replication.pulledCursors.get(peer);
    return cursor === undefined ? null : this.replica.pendingChanges(cursor);
  }

  /**
   * CockroachDB's max-offset rule: a version further ahead of local time than
   * maxClockSkewMs comes from a clock beyond the bound (or from a version it
   * made), and applying it would drag this daemon's clock and versions
   * forward. A page of changes holding one is dropped whole (the pull is sent
   * again after pullTimeoutMs and applies once local time has caught up, so
   * the stream keeps its order); bucket entries, key answers and quorum-read
   * answers lose just those entries. Each refused version is reported.
   */
  private withinClockBound(from: NodeId, msg: Message, out: Outbox): Message | null {
    if (msg.type !== 'changes' && msg.type !== 'bucketEntries' && msg.type !== 'hasKey' && msg.type !== 'readReply') return msg;
    const entries = msg.type === 'hasKey' ? (msg.entry ? [msg.entry] : []) : msg.type === 'readReply' ? msg.entries.filter((e) => e !== null) : msg.entries;
    const nowMs = this.wallClockMs();
    const limitUs = BigInt(Math.floor((nowMs + this.settings.maxClockSkewMs) * 1000));
    const ahead = entries.filter((e) => e.ts > limitUs);
    if (ahead.length === 0) return msg;
    for (const e of ahead) out.event({ type: 'versionAhead', peer: from, key: e.key, ts: e.ts, aheadMs: Number(e.ts) / 1000 - nowMs });
    if (msg.type === 'changes') return null;
    if (msg.type === 'hasKey') return { ...msg, entry: null };
    // a quorum read counts the answer, without the refused rows (it read repairs with what it gets)
    if (msg.type === 'readReply') return { ...msg, entries: msg.entries.map((e) => (e !== null && e.ts > limitUs ? null : e)) };
    return { ...msg, entries: msg.entries.filter((e) => e.ts <= limitUs) };
  }

  /** The shell's connection to `peer` came up: replication pulls from it at once. */
  peerUp(peer: NodeId, nowMs: number): Output {
    const out = this.outbox();
    if (this.peers.includes(peer)) this.replication.peerUp(peer, nowMs, out);
    return out.out;
  }

  /** The shell committed local writes: peers are told to pull now (call once per commit batch). */
  localWrite(): Output {
    const out = this.outbox();
    this.replication.localWrite(out);
    return out.out;
  }

  /**
   * A local GET missed `key`. A keyFetched event with `reqId` follows (in this
   * or a later Output): the entry after applying what was found (value null =
   * deleted), or null when nobody has it, on timeout or when the queue is full.
   */
  keyMiss(key: string, reqId: string, nowMs: number): Output {
    const out = this.outbox();
    this.replication.keyMiss(key, reqId, nowMs, out, this.election);
    return out.out;
  }

  /**
   * A quorum read of `keys` (consistency level MAJORITY; at most
   * settings.maxEntriesPerMessage keys). A quorumRead event with `reqId`
   * follows, in this or a later Output.
   */
  quorumRead(keys: string[], reqId: string, nowMs: number): Output {
    const out = this.outbox();
    this.quorum.read(keys, reqId, nowMs, out);
    return out.out;
  }

  /** The shell's latest health record; sent to the leader with every heartbeat reply. */
  setStatus(status: DaemonStatus): void {
    this.status = status;
  }

  view(nowMs: number): ClusterView {
    return this.monitor.view(this.self, this.role, this.term, this.leaderId, nowMs, this.status, (peer) =>
      this.replica.pendingChanges(this.replication.pulledCursors.get(peer) ?? null),
    );
  }

  private outbox(): Outbox {
    return new Outbox(this.self, () => this.election.term);
  }
}

function emptyStatus(): DaemonStatus {
  return { processorsAlive: 0, restarts: 0, degradedGroups: [], keyCount: 0, streamId: '', lastWriteTs: 0n };
}

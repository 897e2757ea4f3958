// Leader election: Raft's terms and votes without a log. A follower that hears
// no leader for a random timeout runs a pre-vote (no term change anywhere);
// only with a majority of pre-votes does it bump its term and ask for real
// votes. A vote is given at most once per term and is persisted (HardState)
// before the reply leaves. A leader heartbeats and steps down when it has not
// heard from a majority within the maximum election timeout (check-quorum).

import type { Heartbeat, Message } from './messages.ts';
import type { Outbox } from './outbox.ts';
import { InvariantError, type CoreSettings, type HardState, type NodeId, type Role } from './types.ts';

export class Election {
  readonly self: NodeId;
  readonly peers: readonly NodeId[];
  term: number;
  votedFor: NodeId | null;
  role: Role = 'follower';
  leaderId: NodeId | null = null;
  private readonly settings: CoreSettings;
  private readonly random: () => number;
  private electionDeadlineMs: number;
  private lastLeaderContactMs = -Infinity;
  private nextHeartbeatMs = 0;
  private readonly votes = new Set<NodeId>();
  /** leader only: when each peer last answered (check-quorum) */
  private readonly lastHeardMs = new Map<NodeId, number>();

  constructor(self: NodeId, peers: readonly NodeId[], settings: CoreSettings, hard: HardState, random: () => number, nowMs: number) {
    this.self = self;
    this.peers = peers;
    this.settings = settings;
    this.random = random;
    this.term = hard.term;
    this.votedFor = hard.votedFor;
    this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
  }

  get majority(): number {
    return Math.floor((this.peers.length + 1) / 2) + 1;
  }

  /** The leader is known and was heard from within the minimum election timeout. */
  inLease(nowMs: number): boolean {
    if (this.role === 'leader') return true;
    return this.leaderId !== null && nowMs - this.lastLeaderContactMs < this.settings.electionTimeoutMinMs;
  }

  tick(nowMs: number, out: Outbox): void {
    if (this.role === 'leader') {
      if (!this.hasQuorum(nowMs)) {
        this.becomeFollower(this.term, null, nowMs, out);
        return;
      }
      if (nowMs >= this.nextHeartbeatMs) this.broadcastHeartbeat(nowMs, out);
      return;
    }
    if (nowMs >= this.electionDeadlineMs) this.startPreVote(nowMs, out);
  }

  /**
   * Term rules for every message except preVote, preVoteReply and vote:
   * a higher term makes this node a follower of that term; a lower one is
   * refused (requests get Stale). Returns whether to go on with the message.
   */
  observeTerm(msg: Message, nowMs: number, out: Outbox, isRequest: boolean): boolean {
    if (msg.term > this.term) {
      this.becomeFollower(msg.term, msg.type === 'heartbeat' ? msg.from : null, nowMs, out);
    } else if (msg.term < this.term) {
      if (isRequest) out.send(msg.from, { type: 'stale' });
      return false;
    }
    return true;
  }

  /** Pre-vote and vote traffic, which has its own term rules. */
  receiveVoting(msg: Message, nowMs: number, out: Outbox): void {
    switch (msg.type) {
      case 'preVote': {
        const granted = msg.term > this.term && !this.inLease(nowMs);
        out.send(msg.from, { type: 'preVoteReply', granted }, granted ? msg.term : this.term);
        return;
      }
      case 'preVoteReply':
        if (this.role === 'precandidate' && msg.granted && msg.term === this.term + 1) {
          this.votes.add(msg.from);
          if (this.votes.size >= this.majority) this.becomeCandidate(nowMs, out);
        } else if (!msg.granted && msg.term > this.term) {
          this.becomeFollower(msg.term, null, nowMs, out);
        }
        return;
      case 'vote': {
        // A node that hears a live leader ignores votes: a partitioned node cannot depose it.
        if (msg.term > this.term && this.inLease(nowMs)) return;
        if (msg.term > this.term) this.becomeFollower(msg.term, null, nowMs, out);
        // A candidate or leader of this term has voted for itself, so this also keeps them from granting.
        const granted = msg.term === this.term && (this.votedFor === null || this.votedFor === msg.from);
        if (granted && this.votedFor === null) {
          this.votedFor = msg.from;
          out.persist(this.hardState());
        }
        if (granted) {
          if (this.role === 'precandidate') this.setRole('follower', null, out);
          this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
        }
        out.send(msg.from, { type: 'voteReply', granted });
        return;
      }
      case 'voteReply':
        if (msg.term > this.term) {
          this.becomeFollower(msg.term, null, nowMs, out);
        } else if (this.role === 'candidate' && msg.term === this.term && msg.granted) {
          this.votes.add(msg.from);
          if (this.votes.size >= this.majority) this.becomeLeader(nowMs, out);
        }
        return;
      default:
        return;
    }
  }

  /** A heartbeat of the current term (after observeTerm). */
  receiveHeartbeat(msg: Heartbeat, nowMs: number, out: Outbox): void {
    if (this.role === 'leader') throw new InvariantError(`two leaders in term ${this.term}: ${this.self} and ${msg.from}`);
    if (this.role !== 'follower' || this.leaderId !== msg.from) this.becomeFollower(this.term, msg.from, nowMs, out);
    this.lastLeaderContactMs = nowMs;
    this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
  }

  /** Leader: any message of the current term from a peer counts as contact for check-quorum. */
  heardFrom(peer: NodeId, nowMs: number): void {
    if (this.role === 'leader') this.lastHeardMs.set(peer, nowMs);
  }

  hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor };
  }

  private hasQuorum(nowMs: number): boolean {
    let active = 1;
    for (const p of this.peers) if (nowMs - (this.lastHeardMs.get(p) ?? -Infinity) <= this.settings.electionTimeoutMaxMs) active++;
    return active >= this.majority;
  }

  private randomTimeoutMs(): number {
    const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = this.settings;
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private startPreVote(nowMs: number, out: Outbox): void {
    this.setRole('precandidate', null, out);
    this.votes.clear();
    this.votes.add(this.self);
    this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
    if (this.votes.size >= this.majority) return this.becomeCandidate(nowMs, out);
    for (const p of this.peers) out.send(p, { type: 'preVote' }, this.term + 1);
  }

  private becomeCandidate(nowMs: number, out: Outbox): void {
    this.term += 1;
    this.votedFor = this.self;
    out.persist(this.hardState());
    this.setRole('candidate', null, out);
    this.votes.clear();
    this.votes.add(this.self);
    this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
    if (this.votes.size >= this.majority) return this.becomeLeader(nowMs, out);
    for (const p of this.peers) out.send(p, { type: 'vote' });
  }

  private becomeLeader(nowMs: number, out: Outbox): void {
    if (this.votedFor !== this.self) throw new InvariantError(`leader of term ${this.term} without its own vote`);
    this.setRole('leader', this.self, out);
    for (const p of this.peers) this.lastHeardMs.set(p, nowMs);
    this.broadcastHeartbeat(nowMs, out);
  }

  private becomeFollower(term: number, leaderId: NodeId | null, nowMs: number, out: Outbox): void {
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
      out.persist(this.hardState());
    }
    this.setRole('follower', leaderId, out);
    this.lastHeardMs.clear();
    this.electionDeadlineMs = nowMs + this.randomTimeoutMs();
  }

  private broadcastHeartbeat(nowMs: number, out: Outbox): void {
    this.nextHeartbeatMs = nowMs + this.settings.heartbeatIntervalMs;
    for (const p of this.peers) out.send(p, { type: 'heartbeat', sentAtMs: nowMs });
  }

  private lastReported = '';

  private setRole(role: Role, leaderId: NodeId | null, out: Outbox): void {
    this.role = role;
    this.leaderId = leaderId;
    const key = `${role}/${this.term}/${leaderId}`;
    if (key !== this.lastReported) {
      this.lastReported = key;
      out.event({ type: 'role', role, term: this.term, leaderId });
    }
  }
}

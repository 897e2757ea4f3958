// Consistency levels: which local writes a majority (or every daemon) holds,
// quorum reads, and whether this replica is synced.
//
// - Write acknowledgements come from pulls: a peer's Pull carries the cursor
//   of the last page it applied (durably, with the cursor), and the replica
//   tells how far that cursor vouches for (`Replica.ackedPosition`). The
//   positions held by a majority and by every daemon are reported in an
//   `acked` event whenever they change; the shell releases the replies of
//   writes at or below them.
// - A quorum read asks enough synced peers for their rows of the keys that,
//   with this replica (when synced), a majority answered; the result is the
//   newest row per key among them, and a newer row than this replica's is
//   applied here too (read repair). A write acknowledged by a majority is held by
//   at least one daemon of any majority, so the result is that write or newer.
// - Read leases keep most MAJORITY reads local. A peer's Pull asks for one;
//   the answer grants it when the puller holds every write this node has
//   acknowledged (its acknowledged position is at least the highest position
//   ever released) and applied the last page it was sent (a puller whose
//   applies fail keeps pulling; it must not hold the writes hostage). From the Pull's arrival this node counts the puller among
//   the daemons every write at MAJORITY must wait for, for readLeaseMs; the
//   puller holds the lease for readLeaseMs less the drift allowance, counted
//   from when it SENT the Pull (its clock, which may run slower or faster by
//   maxClockDriftPpm). While it holds unexpired leases from every peer and is
//   synced, no write can be acknowledged without it, so its own store answers
//   MAJORITY reads. A node that restarts honours the leases it may have
//   granted before (it waits for every peer for readLeaseMs after start), and
//   grants a lease only to a peer holding its whole stream as of the restart
//   (any of it may have been acknowledged).
//   Costs: in the steady state a MAJORITY write waits for every daemon (the
//   slowest), and when a daemon stops answering, writes wait up to
//   readLeaseMs until its lease has run out.
// - A replica whose data file is new may have lost writes it acknowledged
//   before; it counts for no quorum read until it has copied the full
//   streams of N - Q + 1 peers (pages up to more = false, pulled after it
//   started): every write acknowledged before it started is on Q - 1 peers
//   other than it, and any N - Q + 1 of the N - 1 peers include one of them.

import type { ReadReply, ReadRequest } from './messages.ts';
import type { Outbox } from './outbox.ts';
import { compareVersions, type CoreSettings, type Entry, type NodeId, type Replica } from './types.ts';

interface ReadQuery {
  reqId: string;
  keys: string[];
  /** synced answers still needed */
  needed: number;
  asked: Set<NodeId>;
  answered: Set<NodeId>;
  /** ask the peers not asked yet from this time on */
  hedgeAtMs: number;
  /** request ids this query was sent under (each answers it) */
  wireIds: number[];
  /** the newest row of each key among the answers so far */
  newest: Map<string, Entry>;
  deadlineMs: number;
}

/** Request ids, the purge fence and applies are replication's: one numbering per incarnation, one order of applies. */
export interface RequestIds {
  nextReqId(): number;
  /** false for an answer to a request issued before the last purge */
  accepts(reqId: number): boolean;
  apply(entries: Entry[], source: undefined, then: () => void): void;
}

function newerOf(a: Entry | undefined, b: Entry | undefined): Entry | undefined {
  if (!a) return b;
  if (!b) return a;
  return compareVersions(b, a) > 0 ? b : a;
}

/** How many daemons form a majority of `members`. */
export function majorityOf(members: number): number {
  return Math.floor(members / 2) + 1;
}

export class Quorum {
  private readonly peers: readonly NodeId[];
  private readonly settings: CoreSettings;
  private readonly replica: Replica;
  private readonly ids: RequestIds;
  /** daemons in a majority, this one included */
  readonly majority: number;
  private readonly acked = new Map<NodeId, bigint>();
  private readonly lastHeardMs = new Map<NodeId, number>();
  /** peers whose full stream this incarnation has read up to a page with more = false */
  private readonly caughtUp = new Set<NodeId>();
  private positions = { majority: 0n, all: 0n };
  /** the highest majority position ever reported: every write acknowledged so far is at or below it */
  private releasedHigh = 0n;
  /** leases this node granted: it waits for the peer's acknowledgement until then (own clock) */
  private readonly grantedUntil = new Map<NodeId, number>();
  /** per peer: the acknowledged position of the last page it was sent */
  private readonly servedAcked = new Map<NodeId, bigint>();
  /** leases this node holds from each peer, until then (own clock) */
  private readonly heldUntil = new Map<NodeId, number>();
  private readonly reads = new Map<number, ReadQuery>();
  /** rotates the peers asked first, so quorum reads spread over the peers */
  private nextFirst = 0;

  constructor(peers: readonly NodeId[], settings: CoreSettings, replica: Replica, ids: RequestIds, nowMs: number) {
    this.peers = peers;
    this.settings = settings;
    this.replica = replica;
    this.ids = ids;
    this.majority = majorityOf(peers.length + 1);
    // what was acknowledged before a restart is not known: anything in the stream may have been
    this.releasedHigh = replica.headPosition();
    for (const p of peers) {
      this.acked.set(p, 0n);
      // leases granted before a restart are still honoured
      this.grantedUntil.set(p, nowMs + settings.readLeaseMs);
    }
  }

  /**
   * Until when this node's own store answers MAJORITY reads (its clock):
   * the earliest end of the leases it holds, or -Infinity when it lacks one
   * or is not synced.
   */
  localReadsUntil(): number {
    if (!this.replica.isSynced()) return Number.NEGATIVE_INFINITY;
    let until = Number.POSITIVE_INFINITY;
    for (const p of this.peers) until = Math.min(until, this.heldUntil.get(p) ?? Number.NEGATIVE_INFINITY);
    return until;
  }

  /** Positions of the local stream held by a majority / by every daemon. */
  ackedPositions(): { majority: bigint; all: bigint } {
    return { ...this.positions };
  }

  /** Any message from `peer` (after authentication). */
  heard(peer: NodeId, nowMs: number): void {
    this.lastHeardMs.set(peer, nowMs);
  }

  /** Peers heard from within peerReachableMs. */
  reachablePeers(nowMs: number): number {
    let n = 0;
    for (const p of this.peers) {
      const at = this.lastHeardMs.get(p);
      if (at !== undefined && nowMs - at <= this.settings.peerReachableMs) n++;
    }
    return n;
  }

  /**
   * A Pull from `peer` with the cursor of the last page it applied, answered
   * with a page ending at `answer`; returns whether the answer grants a read
   * lease: the peer holds everything ever acknowledged here, and it applied
   * the last page it was sent (a peer whose applies fail, or that fell
   * behind, must not hold every MAJORITY write hostage by pulling on).
   */
  pulled(peer: NodeId, cursor: string | null, answer: string, nowMs: number, out: Outbox): boolean {
    if (!this.acked.has(peer)) return false;
    const position = this.replica.ackedPosition(cursor);
    this.acked.set(peer, position);
    const grant = position >= this.releasedHigh && position >= (this.servedAcked.get(peer) ?? 0n);
    this.servedAcked.set(peer, this.replica.ackedPosition(answer));
    if (grant) this.grantedUntil.set(peer, Math.max(this.grantedUntil.get(peer)!, nowMs + this.settings.readLeaseMs));
    this.update(nowMs, out);
    return grant;
  }

  /** An accepted page of `peer`'s stream, answering the Pull this node sent at `pullSentAtMs`. */
  page(peer: NodeId, more: boolean, lease: boolean, pullSentAtMs: number, out: Outbox): void {
    if (lease) {
      // the peer counts from the Pull's arrival (later) on its clock; this node from the sending, less what the clocks may drift apart
      const heldMs = this.settings.readLeaseMs * (1 - (2 * this.settings.maxClockDriftPpm) / 1e6);
      this.heldUntil.set(peer, Math.max(this.heldUntil.get(peer) ?? Number.NEGATIVE_INFINITY, pullSentAtMs + heldMs));
    }
    if (!more) this.caughtUpWith(peer, out);
  }

  /** Positions held by a majority and by all, with every lease holder counted in the majority; an `acked` event when they move. */
  private update(nowMs: number, out: Outbox): void {
    const sorted = [...this.acked.values()].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    // this daemon holds all of its own stream: a majority needs majority - 1 peers
    let majority = this.majority > 1 ? sorted[this.majority - 2] : (sorted[0] ?? 0n);
    for (const [p, until] of this.grantedUntil) {
      const held = this.acked.get(p)!;
      if (until > nowMs && held < majority) majority = held;
    }
    const all = sorted.length > 0 ? sorted[sorted.length - 1] : 0n;
    if (majority > this.releasedHigh) this.releasedHigh = majority;
    if (majority === this.positions.majority && all === this.positions.all) return;
    this.positions = { majority, all };
    out.event({ type: 'acked', majority, all });
  }

  /** An accepted page of `peer`'s stream with more = false. */
  private caughtUpWith(peer: NodeId, out: Outbox): void {
    this.caughtUp.add(peer);
    if (this.replica.isSynced() || this.caughtUp.size < this.peers.length + 1 - this.majority + 1) return;
    this.replica.markSynced();
    out.event({ type: 'synced' });
  }

  /**
   * Starts a quorum read of `keys` (at most maxEntriesPerMessage); a
   * quorumRead event with `reqId` follows, in this or a later Output.
   */
  read(keys: string[], reqId: string, nowMs: number, out: Outbox): void {
    if (keys.length > this.settings.maxEntriesPerMessage) throw new RangeError(`a quorum read takes at most ${this.settings.maxEntriesPerMessage} keys`);
    if (this.localReadsUntil() > nowMs) {
      out.event({ type: 'quorumRead', reqId, ok: true, entries: keys.map((k) => this.replica.get(k)) });
      return;
    }
    const needed = this.replica.isSynced() ? this.majority - 1 : this.majority;
    const q: ReadQuery = {
      reqId,
      keys,
      needed,
      asked: new Set(),
      answered: new Set(),
      hedgeAtMs: nowMs + this.settings.quorumReadHedgeMs,
      wireIds: [],
      newest: new Map(),
      deadlineMs: nowMs + this.settings.quorumReadTimeoutMs,
    };
    if (needed === 0) {
      this.complete(q, true, out);
      return;
    }
    if (needed > this.peers.length) {
      this.complete(q, false, out);
      return;
    }
    // the reachable peers first, starting at a rotating place
    const order = this.peers.map((_, i) => this.peers[(this.nextFirst + i) % this.peers.length]);
    this.nextFirst = (this.nextFirst + 1) % this.peers.length;
    const reachable = (p: NodeId) => {
      const at = this.lastHeardMs.get(p);
      return at !== undefined && nowMs - at <= this.settings.peerReachableMs;
    };
    order.sort((a, b) => Number(reachable(b)) - Number(reachable(a)));
    this.ask(q, order.slice(0, needed), out);
  }

  /** Deadlines, hedges, and leases that ran out (positions move). */
  tick(nowMs: number, out: Outbox): void {
    this.update(nowMs, out);
    for (const q of new Set(this.reads.values())) {
      if (nowMs >= q.deadlineMs) {
        this.complete(q, false, out);
      } else if (nowMs >= q.hedgeAtMs) {
        // every peer that has not answered is asked (again: a request to a peer that was not connected yet is lost), less often each time
        q.hedgeAtMs = nowMs + 4 * this.settings.quorumReadHedgeMs;
        this.ask(q, this.peers.filter((p) => !q.answered.has(p)), out);
      }
    }
  }

  /** A purge voided every request issued so far: the peers that have not answered are asked again (answers so far were applied already). */
  reissueAll(out: Outbox): void {
    for (const q of new Set(this.reads.values())) {
      for (const id of q.wireIds) this.reads.delete(id);
      q.wireIds = [];
      const again = [...q.asked].filter((p) => !q.answered.has(p));
      this.ask(q, again, out);
    }
  }

  answer(from: NodeId, msg: ReadRequest, out: Outbox): void {
    out.send(from, { type: 'readReply', reqId: msg.reqId, synced: this.replica.isSynced(), entries: msg.keys.map((k) => this.replica.get(k) ?? null) });
  }

  receiveReply(from: NodeId, msg: ReadReply, out: Outbox): void {
    const q = this.reads.get(msg.reqId);
    if (!q || !q.asked.has(from) || q.answered.has(from) || !this.ids.accepts(msg.reqId)) return;
    if (msg.entries.length !== q.keys.length || msg.entries.some((e, i) => e !== null && e.key !== q.keys[i])) return;
    if (!msg.synced) {
      // counts for nothing: ask everyone not asked yet
      this.ask(q, this.peers.filter((p) => !q.asked.has(p)), out);
      return;
    }
    q.answered.add(from);
    // read repair: rows newer than this replica's are stored here too (LWW, in the order of every apply)
    const newer: Entry[] = [];
    for (const e of msg.entries) {
      if (e === null) continue;
      const seen = q.newest.get(e.key);
      if (!seen || compareVersions(e, seen) > 0) q.newest.set(e.key, e);
      const held = this.replica.get(e.key);
      if (!held || compareVersions(e, held) > 0) newer.push(e);
    }
    if (newer.length > 0) this.ids.apply(newer, undefined, () => {});
    if (q.answered.size >= q.needed) this.complete(q, true, out);
  }

  private ask(q: ReadQuery, peers: NodeId[], out: Outbox): void {
    if (peers.length === 0) return;
    const wireId = this.ids.nextReqId();
    q.wireIds.push(wireId);
    this.reads.set(wireId, q);
    for (const p of peers) {
      q.asked.add(p);
      out.send(p, { type: 'readRequest', reqId: wireId, keys: q.keys });
    }
  }

  private complete(q: ReadQuery, ok: boolean, out: Outbox): void {
    for (const id of q.wireIds) this.reads.delete(id);
    out.event({ type: 'quorumRead', reqId: q.reqId, ok, entries: ok ? q.keys.map((k) => newerOf(this.replica.get(k), q.newest.get(k))) : [] });
  }
}

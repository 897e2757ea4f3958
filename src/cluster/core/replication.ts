// Replication between replicas: pull-based full mesh, tombstone purge,
// leader-driven anti-entropy and key-miss lookups.
//
// - Every node pulls every peer's change stream (Pull{cursor} → Changes), at
//   least every pullIntervalMs and at once after a Notify. The applied entries
//   and the new cursor are stored in one Replica.apply call (durable together).
// - Purge rounds: every purgeIntervalMs a node asks each peer how far it has
//   durably read its stream (CursorRequest, answered from the peer's durable
//   cursor at that moment); once every peer of the round is past a
//   tombstone, it is purged. Cursors carried by pulls are only used for the
//   lag shown in the view: a delayed pull from before the peer lost its data
//   file would claim more than the peer holds now.
// - Fence: data only arrives as the answer to one of this node's requests.
//   Request ids grow within an incarnation (random start per incarnation), and
//   a purge voids every request issued before it: an answer built before a
//   peer had the tombstone can then never resurrect the purged key.
// - Anti-entropy (leader): compare bucket digests with each follower; for
//   differing buckets both sides fetch the other's rows (LWW apply). At most
//   maxRepairBucketsPerRound a round, taken round-robin from where the last
//   round stopped, so a differing bucket is repaired within
//   ceil(buckets / maxRepairBucketsPerRound) rounds even while writes keep
//   other buckets differing.
// - Key miss: ask the leader; the leader answers from its replica or asks the
//   followers. One query per key, at most maxPendingKeyFetches at once.

import type { Message } from './messages.ts';
import type { Outbox } from './outbox.ts';
import type { RequestIds } from './quorum.ts';
import type { CoreSettings, Entry, NodeId, Replica } from './types.ts';

/** Most waiters (local or remote) one key query carries; more are answered null at once. */
const MAX_WAITERS_PER_QUERY = 256;
/** Most bucket fetches in flight at once. */
const MAX_BUCKET_REQUESTS = 1024;

interface PullState {
  /** reqId of the pull in flight, or null */
  outstanding: number | null;
  /** its answer is being applied: no new pull until the apply is done */
  applying: boolean;
  sentAtMs: number;
  nextAtMs: number;
  /** a Notify arrived while a pull was in flight: pull again right after */
  again: boolean;
}

interface KeyQuery {
  key: string;
  reqId: number;
  /** peers whose answer is awaited */
  awaiting: Set<NodeId>;
  localWaiters: string[];
  remoteWaiters: { peer: NodeId; reqId: number }[];
  deadlineMs: number;
}

interface BucketFetch {
  peer: NodeId;
  bucket: number;
  buckets: number;
  atMs: number;
}

/** What consistency levels learn from replication (see quorum.ts). */
export interface ReplicationListener {
  /** a Pull from `peer`: it holds the pages up to `cursor`, and is answered with a page ending at `answer`; returns whether the answer grants it a read lease */
  pulled(peer: NodeId, cursor: string | null, answer: string, nowMs: number, out: Outbox): boolean;
  /** an accepted page of `peer`'s stream, answering the pull sent at `pullSentAtMs` */
  page(peer: NodeId, more: boolean, lease: boolean, pullSentAtMs: number, out: Outbox): void;
  /** a purge voided every request issued so far */
  voided(out: Outbox): void;
}

/** What replication needs to know about the election. */
export interface LeadershipView {
  readonly role: string;
  readonly leaderId: NodeId | null;
}

export class Replication implements RequestIds {
  private readonly self: NodeId;
  private readonly peers: readonly NodeId[];
  private readonly settings: CoreSettings;
  private readonly replica: Replica;
  private lastReqId: number;
  /** answers to requests with reqId <= fenceReqId are refused (issued before the last purge) */
  private fenceReqId: number;
  private readonly pulls = new Map<NodeId, PullState>();
  /** how far each peer has read this node's stream, as its last pull said (lag only, never for purging) */
  readonly pulledCursors = new Map<NodeId, string | null>();
  private nextPurgeAtMs: number;
  /** the purge round in progress: its request id and the cursors answered so far */
  private purgeRound: { reqId: number; cursors: Map<NodeId, string | null> } | null = null;
  private nextAntiEntropyAtMs: number;
  private readonly digestRequests = new Map<number, { peer: NodeId; atMs: number }>();
  /** per follower: the bucket the next anti-entropy comparison starts at (round-robin) */
  private readonly repairFrom = new Map<NodeId, number>();
  private readonly bucketFetches = new Map<number, BucketFetch>();
  private readonly queriesByKey = new Map<string, KeyQuery>();
  private readonly queriesByReq = new Map<number, KeyQuery>();
  listener: ReplicationListener | null = null;
  /** applies handed to the replica, by ticket: what to do once each is durable (count null: it failed) */
  private readonly applying = new Map<number, (count: number | null, nowMs: number, out: Outbox) => void>();
  private lastTicket = 0;

  constructor(self: NodeId, peers: readonly NodeId[], settings: CoreSettings, replica: Replica, random: () => number, nowMs: number) {
    this.self = self;
    this.peers = peers;
    this.settings = settings;
    this.replica = replica;
    // A fresh random start per incarnation: answers to a previous incarnation's requests never match.
    this.lastReqId = Math.floor(random() * 2 ** 51);
    this.fenceReqId = this.lastReqId;
    for (const p of peers) this.pulls.set(p, { outstanding: null, applying: false, sentAtMs: 0, nextAtMs: nowMs, again: false });
    this.nextPurgeAtMs = nowMs + settings.purgeIntervalMs;
    this.nextAntiEntropyAtMs = nowMs + settings.antiEntropyIntervalMs;
  }

  get pendingKeyFetches(): number {
    return this.queriesByKey.size;
  }

  tick(nowMs: number, out: Outbox, leadership: LeadershipView): void {
    for (const [peer, p] of this.pulls) {
      const timedOut = p.outstanding !== null && !p.applying && nowMs - p.sentAtMs >= this.settings.pullTimeoutMs;
      if ((p.outstanding === null && nowMs >= p.nextAtMs) || timedOut) this.sendPull(peer, nowMs, out);
    }
    if (nowMs >= this.nextPurgeAtMs) {
      this.nextPurgeAtMs = nowMs + this.settings.purgeIntervalMs;
      this.startPurgeRound(out);
    }
    for (const q of this.queriesByKey.values()) if (nowMs >= q.deadlineMs) this.complete(q, null, out);
    if (leadership.role === 'leader' && nowMs >= this.nextAntiEntropyAtMs) {
      this.nextAntiEntropyAtMs = nowMs + this.settings.antiEntropyIntervalMs;
      this.startAntiEntropy(nowMs, out);
    }
  }

  /** The replica finished the apply of `ticket` (count null: it failed). */
  applied(ticket: number, count: number | null, nowMs: number, out: Outbox): void {
    const then = this.applying.get(ticket);
    if (!then) return;
    this.applying.delete(ticket);
    then(count, nowMs, out);
  }

  /** Hands entries to the replica (LWW); `then` runs once they are durable (count null: the apply failed). */
  apply(entries: Entry[], source: { peer: NodeId; cursor: string } | undefined, then: (count: number | null, nowMs: number, out: Outbox) => void): void {
    const ticket = ++this.lastTicket;
    this.applying.set(ticket, then);
    this.replica.apply(entries, source, ticket);
  }

  /** A connection to `peer` came up: pull at once (a pull sent while it was down is lost until its timeout). */
  peerUp(peer: NodeId, nowMs: number, out: Outbox): void {
    const p = this.pulls.get(peer);
    if (p && !p.applying) this.sendPull(peer, nowMs, out);
  }

  /** The shell committed local writes: tell every peer to pull. */
  localWrite(out: Outbox): void {
    for (const p of this.peers) out.send(p, { type: 'notify' });
  }

  /** A local read missed `key`; `reqId` (the shell's) is reported in a keyFetched event. */
  keyMiss(key: string, reqId: string, nowMs: number, out: Outbox, leadership: LeadershipView): void {
    const existing = this.queriesByKey.get(key);
    if (existing) {
      if (existing.localWaiters.length + existing.remoteWaiters.length >= MAX_WAITERS_PER_QUERY) {
        out.event({ type: 'keyFetched', reqId, key, entry: null });
      } else {
        existing.localWaiters.push(reqId);
      }
      return;
    }
    const askees = this.askeesFor(leadership, null);
    if (askees.length === 0 || this.queriesByKey.size >= this.settings.maxPendingKeyFetches) {
      out.event({ type: 'keyFetched', reqId, key, entry: null });
      return;
    }
    this.startQuery(key, askees, nowMs, out).localWaiters.push(reqId);
  }

  /** Replication messages of the current term (after the election's term rules). */
  receive(from: NodeId, msg: Message, nowMs: number, out: Outbox, leadership: LeadershipView): void {
    switch (msg.type) {
      case 'notify': {
        const p = this.pulls.get(from);
        if (!p) return;
        if (p.outstanding === null) this.sendPull(from, nowMs, out);
        else p.again = true;
        return;
      }
      case 'pull': {
        this.pulledCursors.set(from, msg.cursor);
        const page = this.replica.changesSince(msg.cursor, this.settings.maxEntriesPerMessage);
        const lease = this.listener?.pulled(from, msg.cursor, page.cursor, nowMs, out) ?? false;
        out.send(from, { type: 'changes', reqId: msg.reqId, entries: page.entries, cursor: page.cursor, more: page.more, lease });
        return;
      }
      case 'changes': {
        const p = this.pulls.get(from);
        if (!p || p.outstanding !== msg.reqId || p.applying || !this.accepts(msg.reqId)) return;
        p.applying = true;
        this.apply(msg.entries, { peer: from, cursor: msg.cursor }, (count, doneMs, doneOut) => {
          p.applying = false;
          // a purge may have sent a new pull meanwhile: that one is in flight now
          if (p.outstanding !== msg.reqId) return;
          p.outstanding = null;
          if (count === null) {
            p.nextAtMs = doneMs + this.settings.pullIntervalMs;
            return;
          }
          // durable now: what the page vouches for (catch-up, a read lease) holds
          this.listener?.page(from, msg.more, msg.lease, p.sentAtMs, doneOut);
          // after a page with entries, pull again at once: the pull tells the peer what this node now holds (its acknowledgement)
          if (msg.more || p.again || msg.entries.length > 0) this.sendPull(from, doneMs, doneOut);
          // an idle puller still pulls often enough to renew its read lease (quorum.ts)
          else p.nextAtMs = doneMs + Math.min(this.settings.pullIntervalMs, this.settings.readLeaseMs / 3);
        });
        return;
      }
      case 'cursorRequest':
        // the asker purges on this answer: it must not roll back with a power loss here
        out.send(from, { type: 'cursorReply', reqId: msg.reqId, cursor: this.replica.durableCursorFor(from) });
        return;
      case 'cursorReply': {
        const round = this.purgeRound;
        if (!round || round.reqId !== msg.reqId || !this.pulls.has(from)) return;
        round.cursors.set(from, msg.cursor);
        if (round.cursors.size === this.peers.length) {
          this.purgeRound = null;
          this.purge([...round.cursors.values()], nowMs, out);
        }
        return;
      }
      case 'whoHas':
        this.answerWhoHas(from, msg.reqId, msg.key, nowMs, out, leadership);
        return;
      case 'hasKey': {
        const q = this.queriesByReq.get(msg.reqId);
        if (!q || q.key !== msg.key || !q.awaiting.has(from) || !this.accepts(msg.reqId)) return;
        if (msg.entry !== null) {
          this.apply([msg.entry], undefined, (_count, _doneMs, doneOut) => {
            // completed meanwhile (deadline, another answer): nothing more to do
            if (this.queriesByReq.get(q.reqId) !== q) return;
            // what the replica holds now (a tombstone purged meanwhile: nothing)
            this.complete(q, this.replica.get(q.key) ?? null, doneOut);
          });
          return;
        }
        q.awaiting.delete(from);
        if (q.awaiting.size === 0) this.complete(q, null, out);
        return;
      }
      case 'digestRequest':
        out.send(from, { type: 'digests', reqId: msg.reqId, digests: this.replica.bucketDigests(msg.buckets) });
        return;
      case 'digests': {
        const req = this.digestRequests.get(msg.reqId);
        if (!req || req.peer !== from) return;
        this.digestRequests.delete(msg.reqId);
        const buckets = this.settings.antiEntropyBuckets;
        if (msg.digests.length !== buckets) return;
        const mine = this.replica.bucketDigests(buckets);
        const differing: number[] = [];
        const start = (this.repairFrom.get(from) ?? 0) % buckets;
        for (let i = 0; i < buckets && differing.length < this.settings.maxRepairBucketsPerRound; i++) {
          const b = (start + i) % buckets;
          if (mine[b] !== msg.digests[b]) differing.push(b);
        }
        if (differing.length === 0) return;
        this.repairFrom.set(from, (differing[differing.length - 1] + 1) % buckets);
        for (const b of differing) this.fetchBucket(from, b, buckets, null, nowMs, out);
        out.send(from, { type: 'repairHint', buckets, bucketList: differing });
        return;
      }
      case 'repairHint':
        for (const b of msg.bucketList.slice(0, this.settings.maxRepairBucketsPerRound)) this.fetchBucket(from, b, msg.buckets, null, nowMs, out);
        return;
      case 'bucketRequest': {
        const page = this.replica.entriesInBucket(msg.bucket, msg.buckets, msg.afterKey, this.settings.maxEntriesPerMessage);
        out.send(from, { type: 'bucketEntries', reqId: msg.reqId, entries: page.entries, more: page.more });
        return;
      }
      case 'bucketEntries': {
        const f = this.bucketFetches.get(msg.reqId);
        if (!f || f.peer !== from) return;
        this.bucketFetches.delete(msg.reqId);
        if (!this.accepts(msg.reqId)) return;
        const lastKey = msg.entries.length > 0 ? msg.entries[msg.entries.length - 1].key : null;
        this.apply(msg.entries, undefined, (count, doneMs, doneOut) => {
          if (count !== null && msg.more && lastKey !== null) this.fetchBucket(from, f.bucket, f.buckets, lastKey, doneMs, doneOut);
        });
        return;
      }
      case 'stale': {
        // The peer refused our pull as stale; our term is now up to date, so pull again soon.
        const p = this.pulls.get(from);
        if (p && !p.applying) p.outstanding = null;
        return;
      }
      default:
        return;
    }
  }

  nextReqId(): number {
    this.lastReqId += 1;
    return this.lastReqId;
  }

  accepts(reqId: number): boolean {
    return reqId > this.fenceReqId;
  }

  private sendPull(peer: NodeId, nowMs: number, out: Outbox): void {
    const p = this.pulls.get(peer)!;
    p.outstanding = this.nextReqId();
    p.sentAtMs = nowMs;
    p.again = false;
    out.send(peer, { type: 'pull', reqId: p.outstanding, cursor: this.replica.cursorFor(peer) });
  }

  private startPurgeRound(out: Outbox): void {
    if (this.peers.length === 0) return;
    this.purgeRound = { reqId: this.nextReqId(), cursors: new Map() };
    for (const p of this.peers) out.send(p, { type: 'cursorRequest', reqId: this.purgeRound.reqId });
  }

  private purge(acked: (string | null)[], nowMs: number, out: Outbox): void {
    if (acked.includes(null)) return;
    const purged = this.replica.purgeTombstones(acked);
    if (purged === 0) return;
    out.event({ type: 'purged', tombstones: purged });
    // Void every request issued so far; pulls and key queries are sent again.
    this.fenceReqId = this.lastReqId;
    this.bucketFetches.clear();
    this.listener?.voided(out);
    for (const [peer, p] of this.pulls) if (p.outstanding !== null && !p.applying) this.sendPull(peer, nowMs, out);
    for (const q of [...this.queriesByKey.values()]) {
      this.queriesByReq.delete(q.reqId);
      q.reqId = this.nextReqId();
      this.queriesByReq.set(q.reqId, q);
      for (const p of q.awaiting) out.send(p, { type: 'whoHas', reqId: q.reqId, key: q.key });
    }
  }

  /** Who to ask about a key: the leader, or (on the leader) every follower but the asker. */
  private askeesFor(leadership: LeadershipView, asker: NodeId | null): NodeId[] {
    if (leadership.role === 'leader') return this.peers.filter((p) => p !== asker);
    return leadership.leaderId !== null && leadership.leaderId !== this.self ? [leadership.leaderId] : [];
  }

  private startQuery(key: string, askees: NodeId[], nowMs: number, out: Outbox): KeyQuery {
    const q: KeyQuery = {
      key,
      reqId: this.nextReqId(),
      awaiting: new Set(askees),
      localWaiters: [],
      remoteWaiters: [],
      deadlineMs: nowMs + this.settings.keyFetchTimeoutMs,
    };
    this.queriesByKey.set(key, q);
    this.queriesByReq.set(q.reqId, q);
    for (const p of askees) out.send(p, { type: 'whoHas', reqId: q.reqId, key });
    return q;
  }

  private answerWhoHas(from: NodeId, reqId: number, key: string, nowMs: number, out: Outbox, leadership: LeadershipView): void {
    const held = this.replica.get(key);
    if (held || leadership.role !== 'leader') {
      out.send(from, { type: 'hasKey', reqId, key, entry: held ?? null });
      return;
    }
    const existing = this.queriesByKey.get(key);
    if (existing && existing.localWaiters.length + existing.remoteWaiters.length < MAX_WAITERS_PER_QUERY) {
      existing.remoteWaiters.push({ peer: from, reqId });
      return;
    }
    const askees = this.askeesFor(leadership, from);
    if (existing || askees.length === 0 || this.queriesByKey.size >= this.settings.maxPendingKeyFetches) {
      out.send(from, { type: 'hasKey', reqId, key, entry: null });
      return;
    }
    this.startQuery(key, askees, nowMs, out).remoteWaiters.push({ peer: from, reqId });
  }

  private complete(q: KeyQuery, entry: Entry | null, out: Outbox): void {
    this.queriesByKey.delete(q.key);
    this.queriesByReq.delete(q.reqId);
    for (const reqId of q.localWaiters) out.event({ type: 'keyFetched', reqId, key: q.key, entry });
    for (const w of q.remoteWaiters) out.send(w.peer, { type: 'hasKey', reqId: w.reqId, key: q.key, entry });
  }

  private startAntiEntropy(nowMs: number, out: Outbox): void {
    const staleBeforeMs = nowMs - this.settings.antiEntropyIntervalMs;
    for (const [id, r] of this.digestRequests) if (r.atMs < staleBeforeMs) this.digestRequests.delete(id);
    for (const [id, f] of this.bucketFetches) if (f.atMs < staleBeforeMs) this.bucketFetches.delete(id);
    for (const p of this.peers) {
      const reqId = this.nextReqId();
      this.digestRequests.set(reqId, { peer: p, atMs: nowMs });
      out.send(p, { type: 'digestRequest', reqId, buckets: this.settings.antiEntropyBuckets });
    }
  }

  private fetchBucket(peer: NodeId, bucket: number, buckets: number, afterKey: string | null, nowMs: number, out: Outbox): void {
    if (this.bucketFetches.size >= MAX_BUCKET_REQUESTS) return;
    const reqId = this.nextReqId();
    this.bucketFetches.set(reqId, { peer, bucket, buckets, atMs: nowMs });
    out.send(peer, { type: 'bucketRequest', reqId, bucket, buckets, afterKey });
  }
}

// Consistency levels on a processor: which level a request runs at, the
// up-front NO_QUORUM refusal, and holding replies until the cluster has what
// the level promises.
//
// - PUT/DEL at MAJORITY (ALL): committed locally as at ONE; the reply is held
//   until the cluster member reports (AckSlot) that a majority (every daemon)
//   holds the file's change stream up to the batch's position, or answered
//   OUTCOME_UNKNOWN after writeTimeoutMs (the write stays applied here and
//   replicates when it can; the client cannot know whether it is durable on
//   enough daemons).
// - GET at MAJORITY: the keys of a batch go to the member as one quorum read;
//   each reply is the newest row among a majority (see cluster/core/quorum.ts).
//   While the daemon holds read leases from every peer (AckSlot
//   localReadsUntilUs), no write can be acknowledged without it, and the
//   local read already made is the answer: no hop at all.
// - With fewer peers reachable than a level needs, the request is refused
//   with NO_QUORUM before anything is applied.
// Replies keep request order per connection: a held reply holds the ones
// after it on its connection (the caller's flush stops at a held request).

import { Command, ConsistencyLevel, ErrorCode, consistencyOf, errorReply, type Frame } from '../protocol/index.ts';
import { AckSlot, monotonicUs, type ConsistencyData, type FromProcessor, type ReadEntry } from './contract.ts';
import type { Request } from './handler.ts';

interface HeldWrite {
  req: Request;
  seq: bigint;
  deadlineMs: number;
  release: () => void;
}

interface HeldRead {
  reqs: Request[];
  keys: string[];
  release: (req: Request) => void;
}

export class Consistency {
  private readonly data: ConsistencyData;
  private readonly acks: BigInt64Array;
  private readonly send: (m: FromProcessor) => void;
  /** in commit order, so in seq order: the front is released first */
  private majorityWaits: HeldWrite[] = [];
  private allWaits: HeldWrite[] = [];
  private readonly reads = new Map<number, HeldRead>();
  private nextReadId = 1;

  constructor(data: ConsistencyData, send: (m: FromProcessor) => void) {
    this.data = data;
    this.acks = new BigInt64Array(data.acks);
    this.send = send;
  }

  /** The level `frame` runs at: its flag bits, or the cluster's default for its command. */
  levelOf(frame: Frame): number {
    const asked = consistencyOf(frame.flag);
    if (frame.command === Command.GET) {
      const level = asked === ConsistencyLevel.DEFAULT ? this.data.defaultRead : asked;
      // a read at ALL is served as MAJORITY: a majority already sees every acknowledged write
      return level === ConsistencyLevel.ALL ? ConsistencyLevel.MAJORITY : level;
    }
    if (frame.command === Command.PUT || frame.command === Command.DEL) return asked === ConsistencyLevel.DEFAULT ? this.data.defaultWrite : asked;
    return ConsistencyLevel.ONE;
  }

  /**
   * NO_QUORUM for a write whose level needs more peers than are reachable,
   * else 0: refused before anything is applied. Reads are not refused up
   * front: the quorum read itself finds out (and answers NO_QUORUM when no
   * majority answers in time), so a peer that was merely slow to be heard
   * from costs a read nothing.
   */
  refusal(frame: Frame, level: number): typeof ErrorCode.NO_QUORUM | 0 {
    if (level === ConsistencyLevel.ONE || frame.command === Command.GET) return 0;
    const needed = level === ConsistencyLevel.ALL ? this.data.peers : this.data.majority - 1;
    return Number(this.acks[AckSlot.reachablePeers]) < needed ? ErrorCode.NO_QUORUM : 0;
  }

  /**
   * After a committed batch whose last change is at `seq`: a write at
   * MAJORITY/ALL that succeeded is held until enough daemons hold `seq`.
   */
  holdWrite(req: Request, level: number, seq: bigint, nowMs: number, release: () => void): void {
    // the peers may have pulled it already, while the writer's sync or its answer was on the way
    if (seq <= this.acks[level === ConsistencyLevel.ALL ? AckSlot.all : AckSlot.majority]) return;
    const w: HeldWrite = { req, seq, deadlineMs: nowMs + this.data.writeTimeoutMs, release };
    req.held = true;
    (level === ConsistencyLevel.ALL ? this.allWaits : this.majorityWaits).push(w);
  }

  /** Read BEFORE a batch's reads: the end of the read leases (µs, monotonicUs). */
  leaseEnd(): bigint {
    return this.acks[AckSlot.localReadsUntilUs];
  }

  /** After the reads: were they all made under the leases? (lease ends only move later, so one check at the end covers them) */
  readUnderLease(leaseEndBefore: bigint): boolean {
    return leaseEndBefore > monotonicUs();
  }

  /** GETs at MAJORITY of one batch: one quorum read of their keys. */
  holdReads(reqs: Request[], release: (req: Request) => void): void {
    if (reqs.length === 0) return;
    const keys = [...new Set(reqs.map((r) => r.frame.key))];
    const id = this.nextReadId++;
    for (const r of reqs) r.held = true;
    this.reads.set(id, { reqs, keys, release });
    this.send({ type: 'quorum-read', id, keys });
  }

  /** The member moved the positions: release what they cover. */
  acked(): void {
    this.majorityWaits = this.releaseUpTo(this.majorityWaits, this.acks[AckSlot.majority]);
    this.allWaits = this.releaseUpTo(this.allWaits, this.acks[AckSlot.all]);
  }

  readDone(id: number, ok: boolean, entries: (ReadEntry | null)[]): void {
    const held = this.reads.get(id);
    if (!held) return;
    this.reads.delete(id);
    const byKey = new Map<string, ReadEntry | null>();
    held.keys.forEach((k, i) => byKey.set(k, entries[i] ?? null));
    for (const r of held.reqs) {
      const f = r.frame;
      const e = byKey.get(f.key);
      if (!ok) r.reply = errorReply(f.id, ErrorCode.NO_QUORUM);
      else if (e && e.value !== null) r.reply = { id: f.id, command: Command.OK, key: f.key, value: e.value, valueTimestamp: e.ts };
      else r.reply = { id: f.id, command: Command.NO_VAL, key: f.key };
      r.held = false;
      held.release(r);
    }
  }

  /** Writes held past writeTimeoutMs are answered OUTCOME_UNKNOWN. */
  expire(nowMs: number): void {
    const expired = (w: HeldWrite) => w.deadlineMs <= nowMs;
    for (const list of [this.majorityWaits, this.allWaits]) {
      while (list.length > 0 && expired(list[0])) {
        const w = list.shift()!;
        w.req.reply = errorReply(w.req.frame.id, ErrorCode.OUTCOME_UNKNOWN);
        w.req.held = false;
        w.release();
      }
    }
  }

  /** Stopping: every held reply is answered now (writes OUTCOME_UNKNOWN, reads NO_QUORUM). */
  failAll(): void {
    this.expire(Number.POSITIVE_INFINITY);
    for (const id of [...this.reads.keys()]) this.readDone(id, false, []);
  }

  get holding(): number {
    let n = this.majorityWaits.length + this.allWaits.length;
    for (const r of this.reads.values()) n += r.reqs.length;
    return n;
  }

  private releaseUpTo(list: HeldWrite[], position: bigint): HeldWrite[] {
    let i = 0;
    while (i < list.length && list[i].seq <= position) {
      const w = list[i++];
      w.req.held = false;
      w.release();
    }
    return i === 0 ? list : list.slice(i);
  }
}

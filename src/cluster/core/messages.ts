// The messages daemons exchange over the peer port, as the core sees them.
// Every message carries the sender's term (fencing) and its id. Data only
// ever travels as the answer to a request of the receiver (`reqId`), so a
// receiver can refuse answers to requests it has voided (see replication.ts).

import type { DaemonStatus, Entry, NodeId } from './types.ts';

interface Base {
  /** the sender's current term; in preVote / granted preVoteReply: the proposed term */
  term: number;
  from: NodeId;
}

/** "Would you vote for me in `term`?" — changes no state anywhere. */
export interface PreVote extends Base { type: 'preVote' }
export interface PreVoteReply extends Base { type: 'preVoteReply'; granted: boolean }
/** RequestVote of Raft (there is no log to compare). */
export interface Vote extends Base { type: 'vote' }
export interface VoteReply extends Base { type: 'voteReply'; granted: boolean }

export interface Heartbeat extends Base {
  type: 'heartbeat';
  /** the leader's tick clock when sent, echoed back for the round trip */
  sentAtMs: number;
}
export interface HeartbeatReply extends Base {
  type: 'heartbeatReply';
  echoSentAtMs: number;
  /** the follower's wall clock when replying (clock-offset estimate) */
  wallClockMs: number;
  status: DaemonStatus;
}
/** "Your term is old": the answer to a request from a lower term. */
export interface Stale extends Base { type: 'stale' }

/** "I have new writes": the receiver pulls from the sender soon. */
export interface Notify extends Base { type: 'notify' }
export interface Pull extends Base {
  type: 'pull';
  reqId: number;
  /** the puller's position in the receiver's stream; tells the receiver how far it has been read */
  cursor: string | null;
}
export interface Changes extends Base {
  type: 'changes';
  reqId: number;
  entries: Entry[];
  cursor: string;
  more: boolean;
  /**
   * A read lease: the sender will not acknowledge a write at MAJORITY
   * without the receiver's acknowledgement for readLeaseMs from when it got
   * the Pull (the receiver held every write it had acknowledged then).
   */
  lease: boolean;
}

/**
 * Purge round: "how far have you durably read my stream?" Asked afresh before
 * every purge, so an old or reordered answer (say from before the peer lost
 * its data file) can never let a tombstone go too early.
 */
export interface CursorRequest extends Base { type: 'cursorRequest'; reqId: number }
export interface CursorReply extends Base { type: 'cursorReply'; reqId: number; cursor: string | null }

/** Key miss: asked of the leader, and by the leader of the followers. */
export interface WhoHas extends Base { type: 'whoHas'; reqId: number; key: string }
export interface HasKey extends Base { type: 'hasKey'; reqId: number; key: string; entry: Entry | null }

/** Anti-entropy, leader-driven. */
export interface DigestRequest extends Base { type: 'digestRequest'; reqId: number; buckets: number }
export interface Digests extends Base { type: 'digests'; reqId: number; digests: number[] }
export interface BucketRequest extends Base {
  type: 'bucketRequest';
  reqId: number;
  bucket: number;
  buckets: number;
  afterKey: string | null;
}
export interface BucketEntries extends Base { type: 'bucketEntries'; reqId: number; entries: Entry[]; more: boolean }
/** From the leader: "these buckets differ, fetch them from me". */
export interface RepairHint extends Base { type: 'repairHint'; buckets: number; bucketList: number[] }

/**
 * Quorum read (consistency level MAJORITY): "your rows for these keys". The
 * answer says whether the answering replica is synced (it holds every write
 * it ever acknowledged; a replica whose data file is new is not, until it
 * has copied enough peers' streams) — only synced answers count.
 */
export interface ReadRequest extends Base { type: 'readRequest'; reqId: number; keys: string[] }
/** `entries[i]`: the row of `keys[i]` (tombstone included), or null when the replica has none. */
export interface ReadReply extends Base { type: 'readReply'; reqId: number; synced: boolean; entries: (Entry | null)[] }

/** From the leader: "retry your degraded groups". */
export interface RetryGroups extends Base { type: 'retryGroups'; groups: string[] }

export type Message =
  | PreVote
  | PreVoteReply
  | Vote
  | VoteReply
  | Heartbeat
  | HeartbeatReply
  | Stale
  | Notify
  | Pull
  | Changes
  | CursorRequest
  | CursorReply
  | WhoHas
  | HasKey
  | DigestRequest
  | Digests
  | BucketRequest
  | BucketEntries
  | RepairHint
  | RetryGroups
  | ReadRequest
  | ReadReply;

export type MessageType = Message['type'];

/** A message to send: the shell delivers `msg` to daemon `to`. */
export interface Outgoing {
  to: NodeId;
  msg: Message;
}

/** Requests expect an answer; a request from a lower term is answered with Stale. */
export const REQUEST_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'heartbeat',
  'notify',
  'pull',
  'cursorRequest',
  'whoHas',
  'digestRequest',
  'bucketRequest',
  'repairHint',
  'retryGroups',
]);

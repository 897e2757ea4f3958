// The leader's view of the cluster, fed by heartbeat replies: per daemon its
// status (from its shell), when it was last heard, its replication lag and
// clock offset. The leader acts on it: clock skew is reported once per
// episode, and a daemon with degraded groups is asked to retry them after a
// backoff that doubles per attempt.

import type { HeartbeatReply } from './messages.ts';
import type { Outbox } from './outbox.ts';
import type { CoreSettings, DaemonStatus, NodeId, Role } from './types.ts';
import { backoffMs } from '../../shared/backoff.ts';

export interface DaemonView {
  id: NodeId;
  /** 'leader' / 'follower' as last known; 'unreachable' when not heard within the max election timeout */
  role: Role | 'unreachable' | 'unknown';
  term: number | null;
  /** ms since the leader last heard from it (null: never) */
  lastSeenAgoMs: number | null;
  status: DaemonStatus | null;
  /** changes of the leader's stream it has not pulled yet (null: unknown) */
  unpulledChanges: number | null;
  /** its wall clock minus the leader's, estimated from the heartbeat round trip */
  clockOffsetMs: number | null;
  clockSkewed: boolean;
  /** degraded groups are asked to retry after this many ms (null: not degraded) */
  nextGroupRetryInMs: number | null;
}

export interface ClusterView {
  self: NodeId;
  role: Role;
  term: number;
  leaderId: NodeId | null;
  /** per daemon, self included; filled for others only on the leader */
  daemons: DaemonView[];
}

interface PeerRecord {
  lastSeenMs: number | null;
  term: number | null;
  status: DaemonStatus | null;
  clockOffsetMs: number | null;
  clockSkewed: boolean;
  retryAttempts: number;
  nextRetryAtMs: number | null;
}

const freshRecord = (): PeerRecord => ({
  lastSeenMs: null,
  term: null,
  status: null,
  clockOffsetMs: null,
  clockSkewed: false,
  retryAttempts: 0,
  nextRetryAtMs: null,
});

export class Monitor {
  private readonly settings: CoreSettings;
  private readonly records = new Map<NodeId, PeerRecord>();
  private readonly selfRecord = freshRecord();

  constructor(peers: readonly NodeId[], settings: CoreSettings) {
    this.settings = settings;
    for (const p of peers) this.records.set(p, freshRecord());
  }

  heard(peer: NodeId, term: number, nowMs: number): void {
    const r = this.records.get(peer);
    if (!r) return;
    r.lastSeenMs = nowMs;
    r.term = term;
  }

  /** Leader: a follower's heartbeat reply. `wallClockMs` is this node's wall clock now. */
  heartbeatReply(msg: HeartbeatReply, nowMs: number, wallClockMs: number, out: Outbox): void {
    const r = this.records.get(msg.from);
    if (!r) return;
    r.status = msg.status;
    const roundTripMs = Math.max(0, nowMs - msg.echoSentAtMs);
    r.clockOffsetMs = msg.wallClockMs - (wallClockMs - roundTripMs / 2);
    const skewed = Math.abs(r.clockOffsetMs) > this.settings.maxClockSkewMs;
    if (skewed && !r.clockSkewed) out.event({ type: 'clockSkew', peer: msg.from, offsetMs: Math.round(r.clockOffsetMs) });
    r.clockSkewed = skewed;
    this.scheduleRetry(r, msg.status.degradedGroups, nowMs, (groups) => out.send(msg.from, { type: 'retryGroups', groups }));
  }

  /** Leader: its own degraded groups follow the same backoff (the shell retries them on the event). */
  selfStatus(status: DaemonStatus, nowMs: number, out: Outbox): void {
    this.selfRecord.status = status;
    this.scheduleRetry(this.selfRecord, status.degradedGroups, nowMs, (groups) => out.event({ type: 'retryGroups', groups }));
  }

  view(self: NodeId, role: Role, term: number, leaderId: NodeId | null, nowMs: number, ownStatus: DaemonStatus | null, unpulled: (peer: NodeId) => number | null): ClusterView {
    const isLeader = role === 'leader';
    const daemons: DaemonView[] = [
      {
        id: self,
        role,
        term,
        lastSeenAgoMs: 0,
        status: ownStatus,
        unpulledChanges: null,
        clockOffsetMs: 0,
        clockSkewed: false,
        nextGroupRetryInMs: this.retryIn(this.selfRecord, nowMs),
      },
    ];
    for (const [id, r] of this.records) {
      const ago = r.lastSeenMs === null ? null : nowMs - r.lastSeenMs;
      const reachable = ago !== null && ago <= this.settings.electionTimeoutMaxMs;
      daemons.push({
        id,
        role: !isLeader ? (id === leaderId ? 'leader' : 'unknown') : reachable ? 'follower' : 'unreachable',
        term: r.term,
        lastSeenAgoMs: ago,
        status: isLeader ? r.status : null,
        unpulledChanges: isLeader ? unpulled(id) : null,
        clockOffsetMs: isLeader ? r.clockOffsetMs : null,
        clockSkewed: isLeader && r.clockSkewed,
        nextGroupRetryInMs: isLeader ? this.retryIn(r, nowMs) : null,
      });
    }
    return { self, role, term, leaderId, daemons };
  }

  private retryIn(r: PeerRecord, nowMs: number): number | null {
    return r.nextRetryAtMs === null ? null : Math.max(0, r.nextRetryAtMs - nowMs);
  }

  private scheduleRetry(r: PeerRecord, degraded: string[], nowMs: number, ask: (groups: string[]) => void): void {
    if (degraded.length === 0) {
      r.retryAttempts = 0;
      r.nextRetryAtMs = null;
      return;
    }
    if (r.nextRetryAtMs === null) {
      r.nextRetryAtMs = nowMs + this.backoffMs(0);
      return;
    }
    if (nowMs < r.nextRetryAtMs) return;
    ask(degraded);
    r.retryAttempts += 1;
    r.nextRetryAtMs = nowMs + this.backoffMs(r.retryAttempts);
  }

  private backoffMs(attempt: number): number {
    const { retryGroupsBackoffInitialMs: initial, retryGroupsBackoffMaxMs: max } = this.settings;
    return backoffMs(attempt, initial, max);
  }
}

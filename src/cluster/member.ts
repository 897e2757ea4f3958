// The cluster shell of one daemon: carries out what the pure core decides.
// It owns the peer transport, the election hard-state file, a read connection
// to the store (its writes go to the group's writer thread), the
// background-job pool and the timers, and turns core outputs into fsyncs,
// messages and supervisor actions.

import type { Config, DaemonConfig } from '../config/config.ts';
import type { Logger } from '../shared/log.ts';
import { wallClockUs, type SharedClock } from '../store/clock.ts';
import type { WriterLink } from '../writer/link.ts';
import { Store } from '../store/store.ts';
import { ClusterNode, InvariantError, decodeMessage, defaultCodecLimits, defaultCoreSettings, encodeMessage, entriesPerMessage, type ClusterView, type Entry, type Output } from './core/index.ts';
import { HardStateFile } from './hard-state.ts';
import { BackgroundJobs } from './jobs/pool.ts';
import { SqliteReplica } from './sqlite-replica.ts';
import { PeerTransport, loadOrCreateSecret, parseSecret } from './transport/index.ts';
import { ReplicationLag } from '../metrics/replication-lag.ts';

/** What the cluster needs from the daemon's supervisor. */
export interface MemberHooks {
  health(): { processorsAlive: number; restarts: number; degradedGroups: string[] };
  /** the leader asks to try the given groups (client ports) again */
  retryGroups(groups: string[]): void;
  /** the member cannot go on safely (its election state cannot be saved): stop the daemon */
  fatal(reason: string): void;
  /** positions of the local change stream now held by a majority / by every daemon (consistency levels) */
  acknowledged(majority: bigint, all: bigint): void;
  /** how many peers were heard from within cluster.peerReachableMs */
  reachablePeers(n: number): void;
  /** until then (µs of process.hrtime) the local store answers MAJORITY reads (read leases held from every peer) */
  localReadsUntil(us: bigint): void;
}

/** A quorum read's answer for the processors: the newest row per key among a majority (null: none). */
export interface QuorumReadResult {
  ok: boolean;
  entries: ({ value: Uint8Array | null; ts: bigint } | null)[];
}

/** The core's clock step: timers (heartbeats, elections, pulls) resolve to this. */
const STEP_MS = 5;
/** Key counts (a full count) are refreshed this often for the status. */
const KEY_COUNT_EVERY_MS = 10_000;

export class ClusterMember {
  private readonly node: ClusterNode;
  private readonly transport: PeerTransport;
  private readonly store: Store;
  private readonly replica: SqliteReplica;
  private readonly hardState: HardStateFile;
  private readonly jobs: BackgroundJobs;
  private readonly log: Logger;
  private readonly hooks: MemberHooks;
  private readonly config: Config;
  private readonly daemon: DaemonConfig;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly fetches = new Map<string, () => void>();
  private readonly reads = new Map<string, (r: { ok: boolean; entries: (Entry | undefined)[] }) => void>();
  private reachable = -1;
  private leaseEnd = Number.NaN;
  private nextFetchId = 0;
  /** a localWrite is scheduled for this turn of the event loop */
  private notifyScheduled = false;
  private keyCount = 0;
  private stopped: Promise<void> | undefined;
  /** the election state could not be saved, or the core found its state impossible: nothing more leaves this member */
  private failed = false;
  private readonly lag = new ReplicationLag();

  private constructor(parts: {
    config: Config;
    daemon: DaemonConfig;
    log: Logger;
    hooks: MemberHooks;
    node: ClusterNode;
    transport: PeerTransport;
    store: Store;
    replica: SqliteReplica;
    hardState: HardStateFile;
    jobs: BackgroundJobs;
  }) {
    this.config = parts.config;
    this.daemon = parts.daemon;
    this.log = parts.log;
    this.hooks = parts.hooks;
    this.node = parts.node;
    this.transport = parts.transport;
    this.store = parts.store;
    this.replica = parts.replica;
    this.hardState = parts.hardState;
    this.jobs = parts.jobs;
  }

  /** `hardState` stays the caller's: the member saves to it but does not close it. `writer` leads to the writer of the group whose file it replicates. */
  static async start(config: Config, daemon: DaemonConfig, clock: SharedClock, writer: WriterLink, hardState: HardStateFile, log: Logger, hooks: MemberHooks): Promise<ClusterMember> {
    const c = config.cluster;
    const secret = loadSecret(config, log);
    // tests only: a wall clock this far off, as peers see it in heartbeats
    const clockOffsetMs = config.faultInjection ? Number(process.env.KV_FAULT_CLOCK_OFFSET_MS ?? 0) || 0 : 0;
    if (clockOffsetMs !== 0) log('warn', 'fault injection: the wall clock sent to peers is offset', { clockOffsetMs });
    const store = Store.open(daemon.groups[0].dbFile, { durability: config.durability, origin: daemon.origin });
    // the member exists only once the replica does; the replica's completions reach it through this
    let member: ClusterMember | undefined;
    // digests are refreshed in the background every round (refreshDigests)
    const replica = new SqliteReplica(store, clock, writer, {
      antiEntropyIntervalMs: c.antiEntropyIntervalMs,
      tombstoneGraceMs: c.tombstoneGraceMs,
      onApplied: (ticket, count) => member?.applied(ticket, count),
      onFailed: (what, error) => log('warn', `replication ${what} failed; it is retried`, { error }),
      onStreamRewound: (cursor, headSeq) =>
        log('error', 'a peer has read this stream past its head: the data file lost changes it had served (restored from a backup?); that peer reads the whole stream again', { cursor, headSeq }),
    });
    const node = new ClusterNode({
      self: daemon.id,
      members: config.daemons.map((d) => d.id),
      hardState: hardState.load(),
      replica,
      settings: {
        heartbeatIntervalMs: c.heartbeatIntervalMs,
        electionTimeoutMinMs: c.electionTimeoutMinMs,
        electionTimeoutMaxMs: c.electionTimeoutMaxMs,
        pullIntervalMs: c.pullIntervalMs,
        antiEntropyIntervalMs: c.antiEntropyIntervalMs,
        maxClockSkewMs: c.maxClockSkewMs,
        keyFetchTimeoutMs: c.readThroughTimeoutMs,
        quorumReadTimeoutMs: c.quorumReadTimeoutMs,
        peerReachableMs: c.peerReachableMs,
        readLeaseMs: c.readLeaseMs,
        maxClockDriftPpm: c.maxClockDriftPpm,
        maxPendingKeyFetches: c.maxPendingKeyFetches,
        // a page of changes always fits in one peer message
        maxEntriesPerMessage: entriesPerMessage(c.maxPeerMessageBytes, defaultCoreSettings.maxEntriesPerMessage),
      },
      random: Math.random,
      // the versions' own time source: offsets and the bound on peers' versions are measured on what versions use
      wallClockMs: () => Number(wallClockUs()) / 1000 + clockOffsetMs,
      nowMs: performance.now(),
    });
    const transport = new PeerTransport({
      selfId: daemon.id,
      host: daemon.host,
      port: daemon.peerPort,
      peers: config.daemons.filter((d) => d !== daemon).map((d) => ({ id: d.id, host: d.host, port: d.peerPort })),
      secret,
      // the frame adds its header and MAC to the largest message
      maxFrameBytes: c.maxPeerMessageBytes + 64,
      // a peer back from a restart is dialed again within half a second: until then the pair cannot form a majority together
      reconnectBackoffInitialMs: 50,
      reconnectBackoffMaxMs: 500,
      log: (level, msg, fields) => log(level, msg, { component: 'peer', ...fields }),
    });
    const jobs = new BackgroundJobs({ threads: 1, maxPending: 4 });
    member = new ClusterMember({ config, daemon, log, hooks, node, transport, store, replica, hardState, jobs });
    try {
      await member.run();
    } catch (e) {
      await member.stop();
      throw e;
    }
    return member;
  }

  private async run(): Promise<void> {
    const limits = { ...defaultCodecLimits, maxMessageBytes: this.config.cluster.maxPeerMessageBytes };
    this.transport.on('message', (peer, payload) => {
      const decoded = decodeMessage(payload, limits);
      if (!decoded.ok) {
        this.log('warn', 'dropped a malformed peer message', { peer, error: decoded.error, bytes: payload.length });
        return;
      }
      if (decoded.msg.type === 'changes') this.lag.onChanges(peer, decoded.msg, Date.now());
      this.drive(() => this.node.receive(peer, decoded.msg, performance.now()));
    });
    this.transport.on('peer-up', (peer) => {
      this.log('info', 'peer connected', { peer });
      this.drive(() => this.node.peerUp(peer, performance.now()));
    });
    this.transport.on('peer-down', (peer) => this.log('warn', 'peer disconnected', { peer }));
    await this.transport.start();
    this.refreshStatus();
    this.countKeys();
    this.every(STEP_MS, () => this.step());
    this.every(this.config.cluster.heartbeatIntervalMs, () => this.refreshStatus());
    this.every(KEY_COUNT_EVERY_MS, () => this.countKeys());
    // each refresh is a full scan on a pool thread: once per round keeps the cores free for serving
    this.every(this.config.cluster.antiEntropyIntervalMs, () => this.refreshDigests());
    this.log('info', 'cluster member started', {
      peerPort: this.daemon.peerPort,
      members: this.config.daemons.map((d) => d.id),
      term: this.node.term,
      stream: this.replica.streamId,
    });
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  private step(): void {
    const now = performance.now();
    this.drive(() => this.node.tick(now));
    const reachable = this.node.reachablePeers(now);
    if (reachable !== this.reachable) {
      this.reachable = reachable;
      this.hooks.reachablePeers(reachable);
    }
  }

  /** The writer finished an apply of the core's. */
  private applied(ticket: number, count: number | null): void {
    if (this.stopped) return;
    this.carryOut(this.node.applied(ticket, count, performance.now()));
  }

  /**
   * Before a graceful stop, after the processors have drained: tells the
   * peers to pull and waits until every connected peer has pulled this
   * daemon's stream to its end (or `timeoutMs`), so writes acknowledged
   * during the drain are not left behind on this daemon alone.
   */
  async handOver(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.carryOut(this.node.localWrite());
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const behind = this.transport.connected().filter((peer) => this.node.unpulledBy(peer) !== 0);
      if (behind.length === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    this.log('warn', 'stopping before every peer pulled the last writes; they get them when this daemon runs again, or from anti-entropy', { timeoutMs });
  }

  /** A processor committed writes: the peers are told to pull, once per event-loop turn. */
  localWrite(): void {
    if (this.notifyScheduled || this.stopped) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      if (!this.stopped) this.drive(() => this.node.localWrite());
    });
  }

  /**
   * Runs one call of the core and carries out its output. A core that finds
   * its own state impossible (InvariantError) stops the daemon: nothing more
   * leaves this member, and pm2 restarts the process from its durable state.
   * Caught here because the transport, which delivers peer messages, keeps
   * going after a handler error.
   */
  private drive(call: () => Output): void {
    if (this.failed) return;
    let out: Output;
    try {
      out = call();
    } catch (e) {
      if (!(e instanceof InvariantError)) throw e;
      this.failed = true;
      this.log('error', 'cluster core invariant violated; sending nothing more and stopping the daemon', { error: e.message, stack: e.stack });
      this.hooks.fatal(e.message);
      return;
    }
    this.carryOut(out);
  }

  /** Persist first, then send, then act: a vote never leaves before it is on disk. */
  private carryOut(out: Output): void {
    if (this.failed) return;
    this.publishLeases();
    if (out.persist) {
      try {
        this.hardState.save(out.persist);
      } catch (e) {
        // the core already counts on this vote or term: going on could mean two votes in one term after a restart
        this.failed = true;
        this.log('error', 'cannot save the election state; sending nothing more and stopping the daemon', { error: (e as Error).message });
        this.hooks.fatal(`cannot save the election state: ${(e as Error).message}`);
        return;
      }
    }
    for (const { to, msg } of out.messages) {
      if (!this.transport.send(to, encodeMessage(msg)) && process.env.KV_DEBUG_PEER) this.log('debug', 'peer send dropped', { to, type: msg.type });
    }
    for (const e of out.events) {
      switch (e.type) {
        case 'role':
          this.log('info', `cluster role: ${e.role}`, { term: e.term, leader: e.leaderId });
          break;
        case 'clockSkew':
          this.log('warn', 'peer clock differs beyond the configured bound', { peer: e.peer, offsetMs: e.offsetMs, maxClockSkewMs: this.config.cluster.maxClockSkewMs });
          break;
        case 'versionAhead':
          this.log('warn', 'refused a version from a peer further ahead of local time than the clock-skew bound', {
            peer: e.peer,
            key: e.key,
            ts: e.ts,
            aheadMs: Math.round(e.aheadMs),
            maxClockSkewMs: this.config.cluster.maxClockSkewMs,
          });
          break;
        case 'keyFetched': {
          const done = this.fetches.get(e.reqId);
          this.fetches.delete(e.reqId);
          done?.();
          break;
        }
        case 'retryGroups':
          this.log('info', 'leader asks to retry degraded groups', { groups: e.groups });
          this.hooks.retryGroups(e.groups);
          break;
        case 'acked':
          this.hooks.acknowledged(e.majority, e.all);
          break;
        case 'quorumRead': {
          const done = this.reads.get(e.reqId);
          this.reads.delete(e.reqId);
          done?.({ ok: e.ok, entries: e.entries });
          break;
        }
        case 'synced':
          this.log('info', 'this replica holds every acknowledged write again: it counts for quorum reads', { stream: this.replica.streamId });
          break;
        case 'purged':
          this.log('debug', 'purged tombstones every daemon has', { tombstones: e.tombstones });
          break;
      }
    }
  }

  /** The read leases' end, on the processors' clock (process.hrtime, µs), whenever it moves. */
  private publishLeases(): void {
    const until = this.node.localReadsUntil();
    if (until === this.leaseEnd) return;
    this.leaseEnd = until;
    const us = Number.isFinite(until) ? process.hrtime.bigint() / 1000n + BigInt(Math.floor((until - performance.now()) * 1000)) : 0n;
    this.hooks.localReadsUntil(us > 0n ? us : 0n);
  }

  private refreshStatus(): void {
    this.node.setStatus({
      ...this.hooks.health(),
      keyCount: this.keyCount,
      streamId: this.replica.streamId,
      lastWriteTs: this.store.lastTimestamp() ?? 0n,
    });
  }

  /** A full count: a background job, so a large store does not stall the peer port. */
  private countKeys(): void {
    if (!this.jobs.hasRoom) return;
    this.jobs
      .keyCount({ file: this.store.file, durability: this.config.durability })
      .then((n) => (this.keyCount = n))
      .catch((e: Error) => this.log('warn', 'key count job failed', { error: e.message }));
  }

  /** Digests are a full scan: computed by a background job, ahead of the leader's rounds. */
  private refreshDigests(): void {
    if (!this.jobs.hasRoom) return;
    const buckets = this.node.settings.antiEntropyBuckets;
    this.jobs
      .digests({ file: this.store.file, buckets, durability: this.config.durability })
      .then((values) => this.replica.setDigests(buckets, values))
      .catch((e: Error) => this.log('warn', 'digest job failed', { error: e.message }));
  }

  /**
   * A processor's GET missed `key`: ask the cluster for it (through the
   * leader). Resolves once the fetch has finished, found or not; concurrent
   * misses of one key are coalesced by the core, and the queue is bounded.
   */
  keyMiss(key: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const reqId = String(this.nextFetchId++);
    const done = new Promise<void>((resolve) => this.fetches.set(reqId, resolve));
    this.drive(() => this.node.keyMiss(key, reqId, performance.now()));
    return done;
  }

  /**
   * Resolves once this replica counts for quorum reads (synced: a new file
   * has copied its peers), or after `maxWaitMs` (peers may be down).
   */
  async whenSynced(maxWaitMs: number): Promise<boolean> {
    const until = performance.now() + maxWaitMs;
    while (!this.replica.isSynced() && performance.now() < until && !this.stopped) await new Promise((r) => setTimeout(r, 20));
    return this.replica.isSynced();
  }

  /** GETs at MAJORITY: the newest row of each key among a majority of the cluster (read repair included). */
  async quorumRead(keys: string[]): Promise<QuorumReadResult> {
    if (this.stopped) return { ok: false, entries: [] };
    const chunk = this.node.settings.maxEntriesPerMessage;
    const parts: Promise<{ ok: boolean; entries: (Entry | undefined)[] }>[] = [];
    for (let i = 0; i < keys.length; i += chunk) {
      const reqId = String(this.nextFetchId++);
      parts.push(new Promise((resolve) => this.reads.set(reqId, resolve)));
      this.drive(() => this.node.quorumRead(keys.slice(i, i + chunk), reqId, performance.now()));
    }
    const results = await Promise.all(parts);
    if (results.some((r) => !r.ok)) return { ok: false, entries: [] };
    return { ok: true, entries: results.flatMap((r) => r.entries.map((e) => (e ? { value: e.value, ts: e.ts } : null))) };
  }

  view(): ClusterView & { connectedPeers: string[]; synced: boolean; majority: number; acked: { majority: string; all: string } } {
    const acked = this.node.ackedPositions();
    return {
      ...this.node.view(performance.now()),
      connectedPeers: this.transport.connected(),
      // counts for quorum reads: holds every write it acknowledged (a new data file copies its peers first)
      synced: this.replica.isSynced(),
      majority: this.node.majority,
      acked: { majority: acked.majority.toString(), all: acked.all.toString() },
    };
  }

  /** Figures for the metrics endpoint and pm2: read only. */
  metrics(): { isLeader: boolean; term: number; role: string; keyCount: number; peers: { id: string; up: boolean; lagSeconds: number | null }[] } {
    const connected = new Set(this.transport.connected());
    return {
      isLeader: this.node.role === 'leader',
      term: this.node.term,
      role: this.node.role,
      keyCount: this.keyCount,
      peers: this.config.daemons.filter((d) => d !== this.daemon).map((d) => ({ id: d.id, up: connected.has(d.id), lagSeconds: this.lag.of(d.id) })),
    };
  }

  /** Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      await this.transport.stop();
      await this.jobs.close().catch(() => {});
      for (const done of this.fetches.values()) done();
      this.fetches.clear();
      for (const done of this.reads.values()) done({ ok: false, entries: [] });
      this.reads.clear();
      this.store.close();
    })();
    return this.stopped;
  }
}

/** KV_CLUSTER_SECRET (hex) if set, else the secret file, created with a random secret on first start. */
function loadSecret(config: Config, log: Logger): Buffer {
  const fromEnv = process.env.KV_CLUSTER_SECRET;
  if (fromEnv) return parseSecret(fromEnv, 'KV_CLUSTER_SECRET');
  const { secret, created } = loadOrCreateSecret(config.cluster.secretFile);
  if (created) log('info', 'created a new cluster secret; copy this file to every host of the cluster', { file: config.cluster.secretFile });
  return secret;
}

// One processor group: N worker threads serving one (port, SQLite file) pair,
// and the one writer thread of that file. Starts them, watches their exits
// and heartbeats, replaces failed ones with exponential backoff, resizes at
// runtime (start new before stopping old) and drains them on stop. Gives up
// (onGiveUp) past the restart intensity, counted over all of the group's
// threads.

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Config, DaemonConfig, GroupConfig } from '../config/config.ts';
import { ACK_SLOTS, AckSlot, STAT_SLOTS, StatSlot, type ConsistencyData, type FromProcessor, type ProcessorData, type ReadEntry, type ToProcessor } from '../worker/contract.ts';
import { WRITER_SLOTS, WriterSlot, type FromWriterThread, type ToWriterThread, type WriterData } from '../writer/contract.ts';
import { WriterLink } from '../writer/link.ts';
import { ConsistencyLevel } from '../protocol/index.ts';
import { RestartPolicy } from './backoff.ts';
import { HeartbeatWatch } from './heartbeat.ts';
import type { Logger } from '../shared/log.ts';
import { MetricsSnapshot, newMetricsBuffer } from '../metrics/counters.ts';

const PROCESSOR_ENTRY = new URL('../worker/processor.ts', import.meta.url);
const WRITER_ENTRY = new URL('../writer/writer.ts', import.meta.url);

type ProcessorState = 'starting' | 'running' | 'draining' | 'exited';

interface Processor {
  slot: number;
  worker: Worker;
  stats: Float64Array;
  watch: HeartbeatWatch;
  state: ProcessorState;
  startedAtMs: number;
  /** set when the supervisor stops it on purpose: its exit is not a failure */
  retiring: boolean;
  hung: boolean;
  ready: Promise<void>;
}

export interface ProcessorStatus {
  slot: number;
  threadId: number;
  state: ProcessorState;
  heartbeatAgeMs: number;
  requests: number;
  errors: number;
  connections: number;
  bytesIn: number;
  bytesOut: number;
}

interface WriterThread {
  worker: Worker;
  stats: Float64Array;
  watch: HeartbeatWatch;
  /** progress of the WAL syncs while one is in flight (a stalled disk) */
  syncWatch: HeartbeatWatch | undefined;
  state: ProcessorState;
  hung: boolean;
  stopping: boolean;
  /** its end of the cluster member's channel (given to the member's link when the writer is ready) */
  memberPort: MessagePort;
}

/** The writer's counters: plain numbers, ready for a metrics exporter. */
export interface WriterStatus {
  state: ProcessorState | 'none';
  threadId: number | null;
  heartbeatAgeMs: number;
  restarts: number;
  commits: number;
  requests: number;
  ops: number;
  failedCommits: number;
  /** mean requests (processor hand-offs, applies) per commit */
  requestsPerCommit: number;
  commitMsTotal: number;
  commitMsMean: number;
  commitMsMax: number;
  /** WAL fdatasyncs (durability full) and their mean duration */
  syncs: number;
  syncMsMean: number;
  batchMax: number;
}

export interface GroupStatus {
  port: number;
  dbFile: string;
  processorsTarget: number;
  restarts: number;
  restartsInWindow: number;
  /** why the group gave up restarting (cluster mode keeps the daemon up and lets the leader ask for a retry) */
  degraded: string | null;
  processors: ProcessorStatus[];
  writer: WriterStatus;
}

export interface GroupEvents {
  onGiveUp(reason: string): void;
  onShutdownRequested(from: string): void;
  /** a processor committed writes (cluster mode) */
  onCommitted?(): void;
  /** a processor's GET missed `key`; the promise settles when a fetch from the cluster has finished */
  onKeyMiss?(key: string): Promise<void>;
  /** GETs at MAJORITY (cluster mode): the newest rows of `keys` among a majority */
  onQuorumRead?(keys: string[]): Promise<{ ok: boolean; entries: (ReadEntry | null)[] }>;
}

export class ProcessorGroup {
  readonly group: GroupConfig;
  private readonly daemon: DaemonConfig;
  private readonly origin: number;
  private readonly config: Config;
  private readonly clock: SharedArrayBuffer;
  /** the writer's commit number, read by the processors to keep their read caches current (survives writer restarts) */
  private readonly commitCounter = new SharedArrayBuffer(4);
  private writer: WriterThread | undefined;
  private writerRestarts = 0;
  /** channels handed out to processors, for unique names at the writer */
  private attachments = 0;
  private pendingWriterRestart: NodeJS.Timeout | undefined;
  /** counters of writers that have exited, so totals never go down */
  private retiredWriter = new Float64Array(WRITER_SLOTS);
  /** the cluster member's (main thread) connection to this group's writer */
  readonly memberLink: WriterLink;
  private readonly log: Logger;
  private readonly events: GroupEvents;
  /** acknowledgement positions the cluster member writes and the processors read (layout AckSlot) */
  private readonly acks = new BigInt64Array(new SharedArrayBuffer(ACK_SLOTS * 8));
  private readonly consistency: ConsistencyData | null;
  private policy: RestartPolicy;
  /** why the group stopped restarting processors (restart intensity exceeded); null when healthy */
  degraded: string | null = null;
  private readonly processors = new Map<number, Processor>();
  private readonly pendingRestarts = new Map<number, NodeJS.Timeout>();
  private target: number;
  private restarts = 0;
  private stopping = false;
  /** counters of processors that have exited, so totals never go down */
  private retired = { requests: 0, errors: 0, bytesIn: 0, bytesOut: 0 };
  /** request and commit metrics of processors that have exited */
  private readonly retiredMetrics = new MetricsSnapshot();
  /** metrics of every thread not yet exited, including ones being drained (no longer in `processors`) */
  private readonly liveMetrics = new Set<SharedArrayBuffer>();

  constructor(config: Config, daemon: DaemonConfig, group: GroupConfig, clock: SharedArrayBuffer, log: Logger, events: GroupEvents) {
    this.config = config;
    this.daemon = daemon;
    this.origin = daemon.origin;
    this.group = group;
    this.clock = clock;
    this.log = log;
    this.events = events;
    this.target = group.processors;
    this.policy = new RestartPolicy(config.supervision);
    this.memberLink = new WriterLink(config.supervision.startTimeoutMs);
    const c = config.cluster;
    const level = { one: ConsistencyLevel.ONE, majority: ConsistencyLevel.MAJORITY, all: ConsistencyLevel.ALL };
    this.consistency =
      config.daemons.length > 1
        ? {
            defaultWrite: level[c.defaultWriteConsistency],
            defaultRead: level[c.defaultReadConsistency],
            peers: config.daemons.length - 1,
            majority: Math.floor(config.daemons.length / 2) + 1,
            writeTimeoutMs: c.writeQuorumTimeoutMs,
            acks: this.acks.buffer as SharedArrayBuffer,
          }
        : null;
  }

  /** From the cluster member: positions of the file's stream held by a majority / by all, and reachable peers. */
  setAcknowledged(majority: bigint, all: bigint): void {
    this.acks[AckSlot.majority] = majority;
    this.acks[AckSlot.all] = all;
    this.broadcast({ type: 'acked' });
  }

  setReachablePeers(n: number): void {
    this.acks[AckSlot.reachablePeers] = BigInt(n);
  }

  /** Until then (µs of monotonicUs) the processors answer MAJORITY reads from the local store. */
  setLocalReadsUntil(us: bigint): void {
    this.acks[AckSlot.localReadsUntilUs] = us;
  }

  private broadcast(m: ToProcessor): void {
    for (const p of this.processors.values()) if (p.state !== 'exited') p.worker.postMessage(m);
  }

  /** Starts the writer and the configured processors (they attach to it as it comes up); resolves when all are ready, rejects if one fails to start. */
  async start(): Promise<void> {
    const started = [this.spawnWriter()];
    for (let slot = 0; slot < this.target; slot++) started.push(this.spawn(slot).ready);
    await Promise.all(started);
    this.log('info', 'processor group ready', { port: this.group.port, dbFile: this.group.dbFile, processors: this.target });
  }

  /** Starts the writer; resolves when it has opened the file. The processors and the member are attached to it. */
  private spawnWriter(): Promise<void> {
    const stats = new Float64Array(new SharedArrayBuffer(WRITER_SLOTS * 8));
    const metrics = newMetricsBuffer();
    this.liveMetrics.add(metrics);
    const data: WriterData = {
      daemonId: this.daemon.id,
      origin: this.origin,
      dbFile: this.group.dbFile,
      durability: this.config.durability,
      maxStoreBytes: this.config.limits.maxStoreBytes,
      keepTombstones: this.config.daemons.length > 1,
      heartbeatIntervalMs: this.config.supervision.heartbeatIntervalMs,
      clock: this.clock,
      stats: stats.buffer as SharedArrayBuffer,
      commitCounter: this.commitCounter,
      metrics,
      faultInjection: this.config.faultInjection,
    };
    const worker = new Worker(WRITER_ENTRY, { workerData: data, name: `kv ${this.daemon.id}:${this.group.port} writer` });
    const member = new MessageChannel();
    const w: WriterThread = {
      worker,
      stats,
      watch: new HeartbeatWatch(this.config.supervision.heartbeatIntervalMs, performance.now(), 0),
      syncWatch: undefined,
      state: 'starting',
      hung: false,
      stopping: false,
      memberPort: member.port1,
    };
    this.writer = w;
    worker.postMessage({ type: 'attach', name: 'member', port: member.port2 } satisfies ToWriterThread, [member.port2]);
    for (const p of this.processors.values()) if (p.state !== 'exited') this.attachProcessor(p);
    let lastError: string | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      const startTimer = setTimeout(() => {
        if (w.state !== 'starting') return;
        this.log('error', 'writer did not start in time; terminating it', { port: this.group.port, startTimeoutMs: this.config.supervision.startTimeoutMs });
        w.hung = true;
        void worker.terminate();
      }, this.config.supervision.startTimeoutMs);
      worker.on('message', (m: FromWriterThread) => {
        if (m.type === 'committed') this.events.onCommitted?.();
        else if (m.type === 'ready') {
          clearTimeout(startTimer);
          w.state = 'running';
          this.memberLink.attach(w.memberPort);
          resolve();
        } else if (m.type === 'log') this.log(m.level, m.msg, { port: this.group.port, thread: 'writer', ...m.fields });
      });
      worker.on('error', (e) => {
        lastError = e.message;
        this.log('error', 'writer threw', { port: this.group.port, error: e.message, stack: e.stack });
      });
      worker.on('exit', (code) => {
        clearTimeout(startTimer);
        const wasStarting = w.state === 'starting';
        w.state = 'exited';
        this.retiredMetrics.add(metrics);
        this.liveMetrics.delete(metrics);
        for (let i = 0; i < WRITER_SLOTS; i++) if (i !== WriterSlot.beats && i !== WriterSlot.inCommit) this.retiredWriter[i] += i === WriterSlot.commitMsMax || i === WriterSlot.batchMax ? 0 : stats[i];
        this.retiredWriter[WriterSlot.commitMsMax] = Math.max(this.retiredWriter[WriterSlot.commitMsMax], stats[WriterSlot.commitMsMax]);
        this.retiredWriter[WriterSlot.batchMax] = Math.max(this.retiredWriter[WriterSlot.batchMax], stats[WriterSlot.batchMax]);
        if (this.writer === w) this.writer = undefined;
        // what was in flight has an unknown outcome; requests made from now on wait for the replacement
        this.memberLink.detach();
        for (const p of this.processors.values()) if (p.state !== 'exited') p.worker.postMessage({ type: 'writer-down' } satisfies ToProcessor);
        const why = w.hung ? 'hung (heartbeat stopped)' : lastError ? `threw: ${lastError}` : `exited with code ${code}`;
        if (wasStarting) reject(new Error(`writer of ${this.group.port} failed to start: ${why}`));
        if (w.stopping || this.stopping) return;
        this.onWriterFailure(why);
      });
    });
    ready.catch(() => {}); // observed through exit handling too
    return ready;
  }

  private onWriterFailure(why: string): void {
    this.restarts++;
    this.writerRestarts++;
    const delayMs = this.policy.onFailure(performance.now());
    if (delayMs === null) {
      const { maxRestarts, restartWindowMs } = this.config.supervision;
      this.degraded = `group port ${this.group.port}: more than ${maxRestarts} restarts within ${restartWindowMs} ms (last: the writer ${why})`;
      this.events.onGiveUp(this.degraded);
      return;
    }
    this.log('warn', 'writer failed; writes in flight are answered OUTCOME_UNKNOWN; restarting it', { port: this.group.port, why, restartInMs: delayMs });
    this.pendingWriterRestart = setTimeout(() => {
      this.pendingWriterRestart = undefined;
      if (this.stopping || this.writer) return;
      this.spawnWriter().catch((e: Error) => this.log('error', e.message, { port: this.group.port }));
    }, delayMs);
  }

  /** Gives a processor its own channels to the current writer (requests, and invalidations). */
  private writerChannels(slot: number): { port: MessagePort; invalidations: MessagePort } | undefined {
    const w = this.writer;
    if (!w || w.state === 'exited') return undefined;
    const requests = new MessageChannel();
    const invalidations = new MessageChannel();
    // unique per attachment: a replacement and the processor it replaces can share a slot for a while
    const name = `processor ${slot} #${++this.attachments}`;
    w.worker.postMessage(
      { type: 'attach', name, port: requests.port2, invalidations: invalidations.port2 } satisfies ToWriterThread,
      [requests.port2, invalidations.port2],
    );
    return { port: requests.port1, invalidations: invalidations.port1 };
  }

  private attachProcessor(p: Processor): void {
    const ch = this.writerChannels(p.slot);
    if (ch) p.worker.postMessage({ type: 'writer', ...ch } satisfies ToProcessor, [ch.port, ch.invalidations]);
  }

  private spawn(slot: number): Processor {
    const stats = new Float64Array(new SharedArrayBuffer(STAT_SLOTS * 8));
    const metrics = newMetricsBuffer();
    this.liveMetrics.add(metrics);
    const channels = this.writerChannels(slot);
    const data: ProcessorData = {
      daemonId: this.daemon.id,
      origin: this.origin,
      host: this.daemon.host,
      port: this.group.port,
      dbFile: this.group.dbFile,
      slot,
      limits: this.config.limits,
      durability: this.config.durability,
      allowShutdown: this.config.allowShutdown,
      heartbeatIntervalMs: this.config.supervision.heartbeatIntervalMs,
      reportKeyMisses: this.events.onKeyMiss !== undefined,
      keepTombstones: this.config.daemons.length > 1,
      readThroughTimeoutMs: this.config.cluster.readThroughTimeoutMs,
      stats: stats.buffer as SharedArrayBuffer,
      metrics,
      clock: this.clock,
      consistency: this.consistency,
      commitCounter: this.commitCounter,
      writer: channels?.port,
      invalidations: channels?.invalidations,
      writerWaitMs: this.config.supervision.startTimeoutMs,
    };
    const worker = new Worker(PROCESSOR_ENTRY, {
      workerData: data,
      transferList: channels ? [channels.port, channels.invalidations] : [],
      name: `kv ${this.daemon.id}:${this.group.port}#${slot}`,
    });
    let resolveReady!: () => void;
    let rejectReady!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {}); // observed through exit handling too
    const p: Processor = {
      slot,
      worker,
      stats,
      watch: new HeartbeatWatch(this.config.supervision.heartbeatIntervalMs, performance.now(), 0),
      state: 'starting',
      startedAtMs: performance.now(),
      retiring: false,
      hung: false,
      ready,
    };
    const startTimer = setTimeout(() => {
      if (p.state !== 'starting') return;
      this.log('error', 'processor did not start in time; terminating it', { port: this.group.port, slot, startTimeoutMs: this.config.supervision.startTimeoutMs });
      p.hung = true;
      void worker.terminate();
    }, this.config.supervision.startTimeoutMs);
    let lastError: string | undefined;
    worker.on('message', (m: FromProcessor) => {
      if (m.type === 'ready') {
        clearTimeout(startTimer);
        if (p.state === 'starting') p.state = 'running';
        resolveReady();
      } else if (m.type === 'shutdown-requested') this.events.onShutdownRequested(m.from);
      else if (m.type === 'key-miss') {
        const fetched = this.events.onKeyMiss?.(m.key) ?? Promise.resolve();
        if (m.wait) void fetched.finally(() => p.state !== 'exited' && worker.postMessage({ type: 'key-fetched', key: m.key } satisfies ToProcessor));
      }
      else if (m.type === 'quorum-read') {
        const read = this.events.onQuorumRead?.(m.keys) ?? Promise.resolve({ ok: false, entries: [] });
        void read.then(
          (r) => p.state !== 'exited' && worker.postMessage({ type: 'quorum-read-done', id: m.id, ok: r.ok, entries: r.entries } satisfies ToProcessor),
          () => p.state !== 'exited' && worker.postMessage({ type: 'quorum-read-done', id: m.id, ok: false, entries: [] } satisfies ToProcessor),
        );
      }
      else if (m.type === 'log') this.log(m.level, m.msg, { port: this.group.port, slot, ...m.fields });
    });
    worker.on('error', (e) => {
      lastError = e.message;
      this.log('error', 'processor threw', { port: this.group.port, slot, error: e.message, stack: e.stack });
    });
    worker.on('exit', (code) => {
      clearTimeout(startTimer);
      const wasStarting = p.state === 'starting';
      p.state = 'exited';
      this.retired.requests += stats[StatSlot.requests];
      this.retired.errors += stats[StatSlot.errors];
      this.retired.bytesIn += stats[StatSlot.bytesIn];
      this.retired.bytesOut += stats[StatSlot.bytesOut];
      this.retiredMetrics.add(metrics);
      this.liveMetrics.delete(metrics);
      if (this.processors.get(slot) === p) this.processors.delete(slot);
      const why = p.hung ? 'hung (heartbeat stopped)' : lastError ? `threw: ${lastError}` : `exited with code ${code}`;
      if (wasStarting) rejectReady(new Error(`processor ${this.group.port}#${slot} failed to start: ${why}`));
      if (p.retiring || this.stopping) return;
      this.onFailure(slot, why);
    });
    this.processors.set(slot, p);
    return p;
  }

  private onFailure(slot: number, why: string): void {
    this.restarts++;
    const delayMs = this.policy.onFailure(performance.now());
    if (delayMs === null) {
      const { maxRestarts, restartWindowMs } = this.config.supervision;
      this.degraded = `group port ${this.group.port}: more than ${maxRestarts} processor restarts within ${restartWindowMs} ms (last: slot ${slot} ${why})`;
      this.events.onGiveUp(this.degraded);
      return;
    }
    this.log('warn', 'processor failed; restarting', { port: this.group.port, slot, why, restartInMs: delayMs });
    const timer = setTimeout(() => {
      this.pendingRestarts.delete(slot);
      if (this.stopping || slot >= this.target || this.processors.has(slot)) return;
      this.spawn(slot).ready.catch((e: Error) => this.log('error', e.message, { port: this.group.port, slot }));
    }, delayMs);
    this.pendingRestarts.set(slot, timer);
  }

  /**
   * Called every heartbeatIntervalMs with the supervisor's monotonic clock:
   * a running thread that missed its beats while the supervisor ran is
   * terminated (and then replaced). The writer inside a transaction (a slow
   * fsync) is hung only after writerStallLimitMs in one transaction.
   */
  checkHeartbeats(nowMs: number): void {
    const { heartbeatIntervalMs, heartbeatMissLimit, writerStallLimitMs } = this.config.supervision;
    const limitMs = heartbeatIntervalMs * heartbeatMissLimit;
    for (const p of this.processors.values()) {
      if (p.state !== 'running' || p.hung) continue;
      if (p.watch.check(nowMs, p.stats[StatSlot.beats], limitMs)) {
        p.hung = true;
        this.log('error', 'processor missed its heartbeats; terminating it', { port: this.group.port, slot: p.slot, silentMs: p.watch.silentForMs, limitMs });
        void p.worker.terminate();
      }
    }
    const w = this.writer;
    if (w && w.state === 'running' && !w.hung) {
      const busy = w.stats[WriterSlot.inCommit] === 1;
      const syncsDone = w.stats[WriterSlot.syncsDone];
      if (w.stats[WriterSlot.syncsStarted] > syncsDone) w.syncWatch ??= new HeartbeatWatch(heartbeatIntervalMs, nowMs, syncsDone);
      else w.syncWatch = undefined;
      let why: string | undefined;
      if (w.watch.check(nowMs, w.stats[WriterSlot.beats], limitMs, busy, writerStallLimitMs)) {
        why = busy ? 'writer stuck in one transaction; terminating it' : 'writer missed its heartbeats; terminating it';
      } else if (w.syncWatch?.check(nowMs, syncsDone, writerStallLimitMs)) {
        why = 'writer\'s WAL sync has not finished (a stalled disk); terminating it';
      }
      if (why) {
        w.hung = true;
        this.log('error', why, { port: this.group.port, silentMs: Math.max(w.watch.silentForMs, w.syncWatch?.silentForMs ?? 0), limitMs: busy || w.syncWatch ? writerStallLimitMs : limitMs });
        void w.worker.terminate();
      }
    }
  }

  /** Drains one processor: it stops accepting, finishes in-flight requests, closes its store and exits. */
  private retire(p: Processor): Promise<void> {
    p.retiring = true;
    p.state = 'draining';
    const exited = new Promise<void>((res) => p.worker.once('exit', () => res()));
    const timeoutMs = this.config.supervision.drainTimeoutMs;
    p.worker.postMessage({ type: 'drain', timeoutMs } satisfies ToProcessor);
    // a processor that cannot drain (hung) is terminated after its deadline plus a margin
    const kill = setTimeout(() => void p.worker.terminate(), timeoutMs + 1_000);
    return exited.finally(() => clearTimeout(kill));
  }

  /**
   * Changes the number of processors. Growing starts the new ones and waits
   * until they listen; shrinking drains the highest slots while the rest keep
   * serving, so no accepted request fails.
   */
  async resize(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError('processors must be an integer from 1 to 64');
    const from = this.target;
    this.target = count;
    const starting: Promise<void>[] = [];
    for (let slot = 0; slot < count; slot++) {
      if (!this.processors.has(slot) && !this.pendingRestarts.has(slot)) starting.push(this.spawn(slot).ready);
    }
    await Promise.all(starting);
    const draining: Promise<void>[] = [];
    for (const [slot, p] of this.processors) if (slot >= count) draining.push(this.retire(p));
    for (const [slot, t] of this.pendingRestarts) {
      if (slot >= count) {
        clearTimeout(t);
        this.pendingRestarts.delete(slot);
      }
    }
    await Promise.all(draining);
    this.log('info', 'processor group resized', { port: this.group.port, from, to: count });
  }

  /** Replaces every processor, one at a time, starting each replacement before draining the old one. */
  async rollingRestart(): Promise<void> {
    for (const [slot, old] of [...this.processors]) {
      old.retiring = true;
      this.processors.delete(slot);
      const fresh = this.spawn(slot);
      try {
        await fresh.ready;
      } catch (e) {
        this.processors.set(slot, old);
        old.retiring = false;
        throw e;
      }
      await this.retire(old);
    }
  }

  /** Tries a degraded group again: a fresh restart budget, and every missing processor started. */
  async retry(): Promise<void> {
    if (this.stopping) return;
    this.degraded = null;
    this.policy = new RestartPolicy(this.config.supervision);
    if (!this.writer && !this.pendingWriterRestart) {
      try {
        await this.spawnWriter();
      } catch (e) {
        this.log('error', (e as Error).message, { port: this.group.port });
      }
    }
    const starting: Promise<void>[] = [];
    for (let slot = 0; slot < this.target; slot++) {
      if (!this.processors.has(slot) && !this.pendingRestarts.has(slot)) starting.push(this.spawn(slot).ready);
    }
    await Promise.allSettled(starting);
    this.log('info', 'degraded group retried', { port: this.group.port, running: this.processors.size, target: this.target });
  }

  /** Processors currently serving. */
  get alive(): number {
    let n = 0;
    for (const p of this.processors.values()) if (p.state === 'running') n++;
    return n;
  }

  /** Sends a fault to the writer (tests only; the supervisor checks the config). */
  injectWriter(fault: 'crash' | 'hang' | 'crash-after-commit' | 'slow-commit'): boolean {
    const w = this.writer;
    if (!w || w.state !== 'running') return false;
    w.worker.postMessage({ type: 'fault', fault } satisfies ToWriterThread);
    return true;
  }

  /** Sends a fault to one processor (tests only; the supervisor checks the config). */
  inject(slot: number, fault: 'crash' | 'hang'): boolean {
    const p = this.processors.get(slot);
    if (!p || p.state !== 'running') return false;
    p.worker.postMessage({ type: 'fault', fault } satisfies ToProcessor);
    return true;
  }

  /** Drains every processor (their writes still reach the writer); the writer keeps running for the cluster member. */
  async stopProcessors(): Promise<void> {
    this.stopping = true;
    for (const t of this.pendingRestarts.values()) clearTimeout(t);
    this.pendingRestarts.clear();
    await Promise.all([...this.processors.values()].map((p) => this.retire(p)));
  }

  /** Last: the writer commits what it holds, closes the file and exits. */
  async stopWriter(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.pendingWriterRestart);
    const w = this.writer;
    this.memberLink.close();
    if (!w || w.state === 'exited') return;
    w.stopping = true;
    const exited = new Promise<void>((res) => w.worker.once('exit', () => res()));
    w.worker.postMessage({ type: 'stop' } satisfies ToWriterThread);
    const kill = setTimeout(() => void w.worker.terminate(), this.config.supervision.drainTimeoutMs + 1_000);
    await exited.finally(() => clearTimeout(kill));
  }

  async stop(): Promise<void> {
    await this.stopProcessors();
    await this.stopWriter();
  }

  private writerStatus(nowMs: number): WriterStatus {
    const w = this.writer;
    const total = (slot: number) => this.retiredWriter[slot] + (w ? w.stats[slot] : 0);
    const commits = total(WriterSlot.commits);
    const commitMsTotal = total(WriterSlot.commitMsTotal);
    return {
      state: w ? w.state : 'none',
      threadId: w ? w.worker.threadId : null,
      heartbeatAgeMs: w ? Math.round(w.watch.ageMs(nowMs)) : 0,
      restarts: this.writerRestarts,
      commits,
      requests: total(WriterSlot.requests),
      ops: total(WriterSlot.ops),
      failedCommits: total(WriterSlot.failedCommits),
      requestsPerCommit: commits > 0 ? total(WriterSlot.requests) / commits : 0,
      commitMsTotal,
      commitMsMean: commits > 0 ? commitMsTotal / commits : 0,
      commitMsMax: Math.max(this.retiredWriter[WriterSlot.commitMsMax], w ? w.stats[WriterSlot.commitMsMax] : 0),
      syncs: total(WriterSlot.syncsDone),
      syncMsMean: total(WriterSlot.syncsDone) > 0 ? total(WriterSlot.syncMsTotal) / total(WriterSlot.syncsDone) : 0,
      batchMax: Math.max(this.retiredWriter[WriterSlot.batchMax], w ? w.stats[WriterSlot.batchMax] : 0),
    };
  }

  status(nowMs: number): GroupStatus {
    const processors = [...this.processors.values()]
      .sort((a, b) => a.slot - b.slot)
      .map((p) => ({
        slot: p.slot,
        threadId: p.worker.threadId,
        state: p.state,
        heartbeatAgeMs: Math.round(p.watch.ageMs(nowMs)),
        requests: p.stats[StatSlot.requests],
        errors: p.stats[StatSlot.errors],
        connections: p.stats[StatSlot.connections],
        bytesIn: p.stats[StatSlot.bytesIn],
        bytesOut: p.stats[StatSlot.bytesOut],
      }));
    return {
      port: this.group.port,
      dbFile: this.group.dbFile,
      processorsTarget: this.target,
      restarts: this.restarts,
      restartsInWindow: this.policy.recent(nowMs),
      degraded: this.degraded,
      processors,
      writer: this.writerStatus(nowMs),
    };
  }

  /** Request and commit metrics over the group's whole life, added into `into`. */
  addMetrics(into: MetricsSnapshot): void {
    into.add(this.retiredMetrics.values);
    for (const m of this.liveMetrics) into.add(m);
  }

  /** Totals over the group's whole life, including processors that have exited. */
  totals(): { requests: number; errors: number; bytesIn: number; bytesOut: number } {
    const t = { ...this.retired };
    for (const p of this.processors.values()) {
      t.requests += p.stats[StatSlot.requests];
      t.errors += p.stats[StatSlot.errors];
      t.bytesIn += p.stats[StatSlot.bytesIn];
      t.bytesOut += p.stats[StatSlot.bytesOut];
    }
    return t;
  }
}

// Deterministic simulator of the cluster core: N ClusterNodes over a virtual
// network that drops, delays, reorders, duplicates and partitions messages,
// with crashes (restart from persisted state only: hard state + replica),
// data-file loss, per-node clock offsets, random client writes and reads
// (a read of a key without a row is a key miss). Each node's data is the
// daemon's own code (SimReplica: the real store, replica and request handler
// on SQLite in memory). One seed drives everything, so a failing seed replays exactly.
// Invariants are checked as the run goes (SimViolation); `run()` ends with a
// healed network and checks convergence.

import {
  ClusterNode,
  compareVersions,
  decodeMessage,
  encodeMessage,
  type ClusterEvent,
  type CoreSettings,
  type Entry,
  type HardState,
  type Output,
} from '../../src/cluster/core/index.ts';
import { SimReplica } from './sim-replica.ts';
import { originOf } from '../../src/shared/origin.ts';

export class SimViolation extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'SimViolation';
  }
}

/** xoshiro128** seeded through splitmix32: small, fast, good enough for schedules. */
export class Rng {
  private s: Uint32Array;
  constructor(seed: number) {
    let x = seed >>> 0;
    const split = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.of(split(), split(), split(), split());
  }
  /** uniform in [0, 1) */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 2 ** 32;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface SimOptions {
  nodes: number;
  /** virtual ms per step */
  stepMs: number;
  /** steps with faults and writes, before the healing phase */
  chaosSteps: number;
  /** most steps the healed cluster may take to converge */
  maxHealSteps: number;
  keys: number;
  /**
   * Deliberately broken behaviour, to show the simulator catches it.
   * ackOnSend: a write is acknowledged once the pages carrying it were sent
   * to a majority, one step before the peers have applied them.
   * longLeases: odd-numbered nodes believe read leases last three times as
   * long as their grantors promise.
   */
  fault?: 'skipVotePersistence' | 'forgetVote' | 'ackOnSend' | 'longLeases';
  /** receives a line per notable happening (SIM_TRACE=1 when replaying) */
  trace?: (line: string) => void;
}

/** Core timing scaled down for the simulator (ms of virtual time). */
export const simSettings: Partial<CoreSettings> = {
  heartbeatIntervalMs: 20,
  electionTimeoutMinMs: 100,
  electionTimeoutMaxMs: 200,
  pullIntervalMs: 30,
  pullTimeoutMs: 120,
  antiEntropyIntervalMs: 300,
  antiEntropyBuckets: 8,
  maxRepairBucketsPerRound: 4,
  purgeIntervalMs: 60,
  maxClockSkewMs: 200,
  keyFetchTimeoutMs: 150,
  maxPendingKeyFetches: 4,
  maxEntriesPerMessage: 3,
  quorumReadTimeoutMs: 300,
  quorumReadHedgeMs: 20,
  peerReachableMs: 200,
  readLeaseMs: 150,
  // clocks drift apart fast here (2 %), so the lease's drift allowance matters
  maxClockDriftPpm: 20_000,
  retryGroupsBackoffInitialMs: 50,
  retryGroupsBackoffMaxMs: 400,
};

interface SimNode {
  id: string;
  index: number;
  clockOffsetMs: number;
  /** how fast this node's clock runs off real time, in ppm (any two differ by at most simSettings.maxClockDriftPpm) */
  clockDriftPpm: number;
  /** durable */
  hard: HardState;
  replica: SimReplica;
  /** volatile: null while crashed */
  core: ClusterNode | null;
  downUntilMs: number;
  /**
   * Durable apart from the data file (the shell keeps it in the state file):
   * the highest timestamp this daemon ever issued or held. A daemon that loses
   * its data must not issue versions below what it held, or a write made after
   * a delete could lose to a tombstone that was purged meanwhile.
   */
  clockFloorTs: bigint;
  /** per key: the highest version this replica ever held (invariant checks) */
  everHeld: Map<string, Entry>;
  pendingMisses: Map<string, number>;
  /** the member's background digest refresh: next run, on the node's clock */
  nextDigestRefreshMs: number;
  /** client writes waiting for a majority: acknowledged when the node's majority position reaches `seq` */
  pendingWrites: PendingWrite[];
  /** quorum reads in flight: reqId → what they must return at least */
  pendingReads: Map<string, PendingRead>;
}

interface PendingWrite {
  entry: Entry;
  seq: bigint;
  /** ackOnSend fault: peers the write was sent to */
  sentTo: Set<string>;
}

interface PendingRead {
  key: string;
  /** the newest write of the key acknowledged before the read began */
  floor: AckedWrite | undefined;
}

interface InFlight {
  atMs: number;
  order: number;
  from: string;
  to: string;
  bytes: Buffer;
}

interface AckedWrite {
  entry: Entry;
  node: string;
  /** lost with a data file before it reached any other replica: no longer required */
  lost: boolean;
}

export interface SimResult {
  steps: number;
  messages: number;
  writes: number;
  crashes: number;
  wipes: number;
  partitions: number;
  elections: number;
  healSteps: number;
  /** writes acknowledged at MAJORITY */
  acknowledged: number;
  /** quorum reads answered / refused (no majority in time) */
  reads: number;
  readsRefused: number;
}

export class Simulation {
  readonly seed: number;
  private readonly opts: SimOptions;
  private readonly rng: Rng;
  private nowMs = 0;
  private step = 0;
  private readonly nodes: SimNode[] = [];
  private queue: InFlight[] = [];
  private order = 0;
  private group = new Map<string, number>();
  private readonly leaders = new Map<number, string>();
  private readonly acked: AckedWrite[] = [];
  private missCounter = 0;
  private chaos = true;
  /** share of messages that take long (varies per seed: some schedules have a slow, reordering network) */
  private readonly slowShare: number;
  private readonly stats: SimResult = { steps: 0, messages: 0, writes: 0, crashes: 0, wipes: 0, partitions: 0, elections: 0, healSteps: 0, acknowledged: 0, reads: 0, readsRefused: 0 };
  /** every client write, acknowledged or not (a read may return any of them) */
  private readonly written: Entry[] = [];
  private readCounter = 0;
  private readonly keys: string[];
  private readonly members: string[];

  constructor(seed: number, opts: SimOptions) {
    this.seed = seed;
    this.opts = opts;
    this.rng = new Rng(seed);
    this.keys = Array.from({ length: opts.keys }, (_, i) => `k${i}`);
    this.slowShare = this.rng.pick([0.02, 0.05, 0.2, 0.4]);
    this.members = Array.from({ length: opts.nodes }, (_, i) => `n${i}`);
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i}`;
      const node: SimNode = {
        id,
        index: i,
        // within the stated bound (maxClockSkewMs 200 between any two, with room for the HLC's µs steps): a clock beyond it is refused, by design
        clockOffsetMs: this.rng.int(-95, 95),
        clockDriftPpm: this.rng.int(-simSettings.maxClockDriftPpm! / 2, simSettings.maxClockDriftPpm! / 2),
        hard: { term: 0, votedFor: null },
        replica: undefined as unknown as SimReplica,
        clockFloorTs: 0n,
        core: null,
        downUntilMs: 0,
        everHeld: new Map(),
        pendingMisses: new Map(),
        nextDigestRefreshMs: 0,
        pendingWrites: [],
        pendingReads: new Map(),
      };
      node.replica = this.newReplica(node);
      this.watch(node);
      this.nodes.push(node);
      this.group.set(id, 0);
      this.start(node);
    }
  }

  /** Runs the schedule and closes the nodes' databases. */
  run(): SimResult {
    try {
      return this.schedule();
    } finally {
      this.close();
    }
  }

  private schedule(): SimResult {
    for (let i = 0; i < this.opts.chaosSteps; i++) this.advance();
    this.heal();
    for (let i = 0; i < this.opts.maxHealSteps; i++) {
      this.advance();
      this.stats.healSteps++;
      if (i % 10 === 9 && this.converged() === null) return this.finish();
    }
    throw new SimViolation(`no convergence after ${this.opts.maxHealSteps} healed steps: ${this.converged()}`);
  }

  private finish(): SimResult {
    this.stats.steps = this.step;
    return this.stats;
  }

  /** Lines are built only when tracing (a thunk keeps untraced runs fast). */
  private log(line: () => string): void {
    if (this.opts.trace) this.opts.trace(`[${this.step} t=${this.nowMs}] ${line()}`);
  }

  private fail(what: string): never {
    throw new SimViolation(`step ${this.step} (t=${this.nowMs}ms): ${what}`);
  }

  /** Closes every node's in-memory database. */
  close(): void {
    for (const n of this.nodes) n.replica.close();
  }

  private newReplica(node: SimNode): SimReplica {
    return new SimReplica({
      streamId: BigInt(Math.floor(this.rng.next() * 2 ** 32)),
      origin: originOf(node.id),
      wallClockUs: () => BigInt(Math.floor(this.clockOf(node) * 1000)),
      nowMs: () => this.clockOf(node),
      antiEntropyIntervalMs: simSettings.antiEntropyIntervalMs!,
      clockFloorTs: node.clockFloorTs,
    });
  }

  /** Every row change is checked: versions only go up, nothing comes back below what was held. */
  private watch(node: SimNode): void {
    node.replica.observer = (key, before, after) => {
      this.log(() => `${node.id} row ${key}: ${show(before)} -> ${show(after)}`);
      const held = node.everHeld.get(key);
      if (after && after.ts > node.clockFloorTs) node.clockFloorTs = after.ts;
      if (after === undefined) {
        if (before?.value !== null) this.fail(`${node.id}: live ${key} removed`);
        return;
      }
      if (held && compareVersions(after, held) < 0) {
        const what = after.value === null ? 'tombstone' : 'live value';
        this.fail(`${node.id}: ${key} went back to a ${what} ${after.ts}/${after.origin} below held ${held.ts}/${held.origin}${held.value === null ? ' (tombstone: resurrection)' : ''}`);
      }
      if (!held || compareVersions(after, held) > 0) node.everHeld.set(key, after);
    };
  }

  private start(node: SimNode): void {
    node.pendingMisses.clear();
    // a fresh core has its own tickets: completions meant for the crashed one are not its
    node.replica.completed = [];
    node.replica.restart(node.clockFloorTs);
    node.nextDigestRefreshMs = this.clockOf(node) + simSettings.antiEntropyIntervalMs!;
    node.core = new ClusterNode({
      self: node.id,
      members: this.members,
      hardState: { ...node.hard },
      replica: node.replica,
      settings: this.opts.fault === 'longLeases' && node.index % 2 === 1 ? { ...simSettings, readLeaseMs: simSettings.readLeaseMs! * 3 } : simSettings,
      random: () => this.rng.next(),
      wallClockMs: () => this.clockOf(node),
      nowMs: this.clockOf(node),
    });
    node.core.setStatus({ processorsAlive: 2, restarts: 0, degradedGroups: node.index === 1 && this.seed % 3 === 0 ? ['7391'] : [], keyCount: 0, streamId: node.replica.streamId, lastWriteTs: 0n });
  }

  private clockOf(node: SimNode): number {
    return this.nowMs * (1 + node.clockDriftPpm / 1e6) + node.clockOffsetMs + 10_000;
  }

  private advance(): void {
    this.step++;
    this.nowMs += this.opts.stepMs;
    // the applies of the previous step are durable now: report them (a writer thread answers later, not at once)
    for (const n of this.nodes) {
      if (!n.core) continue;
      n.replica.runWriter();
      const done = n.replica.completed;
      n.replica.completed = [];
      for (const c of done) if (n.core) this.handle(n, n.core.applied(c.ticket, c.count, this.clockOf(n)));
    }
    this.deliver();
    for (const n of this.nodes) if (n.core) this.handle(n, n.core.tick(this.clockOf(n)));
    for (const n of this.nodes) {
      if (!n.core || this.clockOf(n) < n.nextDigestRefreshMs) continue;
      n.nextDigestRefreshMs += simSettings.antiEntropyIntervalMs!;
      n.replica.refreshDigests(simSettings.antiEntropyBuckets!);
    }
    if (this.chaos) this.chaosActions();
    else for (const n of this.nodes) if (!n.core) this.start(n);
    this.checkLeaders();
  }

  private deliver(): void {
    const due = this.queue.filter((m) => m.atMs <= this.nowMs).sort((a, b) => a.atMs - b.atMs || a.order - b.order);
    if (due.length === 0) return;
    this.queue = this.queue.filter((m) => m.atMs > this.nowMs);
    for (const m of due) {
      const to = this.nodes.find((n) => n.id === m.to)!;
      if (!to.core || this.group.get(m.from) !== this.group.get(m.to)) continue;
      const decoded = decodeMessage(m.bytes);
      if (!decoded.ok) this.fail(`${m.to} could not decode a message from ${m.from}: ${decoded.error}`);
      this.log(() => `${m.from} -> ${m.to} ${m.bytes.subarray(1).toString('utf8').slice(0, 300)}`);
      this.handle(to, to.core.receive(m.from, decoded.msg, this.clockOf(to)));
    }
  }

  /** Persist first, then send: the contract the shell keeps. */
  private handle(node: SimNode, out: Output): void {
    if (out.persist && this.opts.fault !== 'skipVotePersistence') {
      node.hard = this.opts.fault === 'forgetVote' ? { term: out.persist.term, votedFor: null } : { ...out.persist };
    }
    for (const { to, msg } of out.messages) {
      this.stats.messages++;
      if (this.opts.fault === 'ackOnSend' && msg.type === 'changes') this.sentChanges(node, to, msg.entries);
      const bytes = encodeMessage(msg);
      if (this.chaos && this.rng.chance(0.05)) continue;
      const copies = this.rng.chance(0.03) ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const delay = this.rng.chance(this.slowShare) ? this.rng.int(20, 300) : this.rng.int(1, 15);
        this.queue.push({ atMs: this.nowMs + delay, order: this.order++, from: node.id, to, bytes });
      }
    }
    // Adversarial schedule: sometimes crash a node right after it gave a vote, and bring it back at once,
    // so a vote that was not durable would be given twice.
    if (this.chaos && node.core && out.persist && out.persist.votedFor !== null && out.persist.votedFor !== node.id && this.rng.chance(0.3)) {
      this.crash(node, 1);
    }
    for (const e of out.events) {
      this.log(() => `${node.id} event ${JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
      this.onEvent(node, e);
    }
  }

  private onEvent(node: SimNode, e: ClusterEvent): void {
    if (e.type === 'role' && e.role === 'leader') {
      this.stats.elections++;
      const other = this.leaders.get(e.term);
      if (other !== undefined && other !== node.id) this.fail(`two leaders in term ${e.term}: ${other} and ${node.id}`);
      this.leaders.set(e.term, node.id);
    } else if (e.type === 'acked') {
      if (this.opts.fault !== 'ackOnSend') this.acknowledge(node, (w) => w.seq <= e.majority);
    } else if (e.type === 'quorumRead') {
      this.readDone(node, e.reqId, e.ok, e.entries[0]);
    } else if (e.type === 'keyFetched') {
      if (!node.pendingMisses.delete(e.reqId)) this.fail(`${node.id}: keyFetched for unknown or answered ${e.reqId}`);
      const held = node.replica.get(e.key);
      if (e.entry !== null && (!held || compareVersions(held, e.entry) !== 0)) this.fail(`${node.id}: keyFetched ${e.key} reports a version its replica does not hold`);
    }
  }

  private checkLeaders(): void {
    for (const n of this.nodes) {
      if (n.core?.role !== 'leader') continue;
      const known = this.leaders.get(n.core.term);
      if (known !== n.id) this.fail(`${n.id} leads term ${n.core.term} but ${known} was recorded`);
    }
  }

  private chaosActions(): void {
    const live = this.nodes.filter((n) => n.core);
    if (live.length > 0 && this.rng.chance(0.3)) this.clientWrite(this.rng.pick(live));
    if (live.length > 0 && this.rng.chance(0.05)) this.localGet(this.rng.pick(live));
    if (live.length > 0 && this.rng.chance(0.2)) this.clientRead(this.rng.pick(live));
    if (live.length > 0 && this.rng.chance(0.02)) this.crash(this.rng.pick(live));
    for (const n of this.nodes) if (!n.core && this.nowMs >= n.downUntilMs) this.start(n);
    if (this.rng.chance(0.01)) this.partition();
    if (this.rng.chance(0.01)) for (const n of this.nodes) this.group.set(n.id, 0);
  }

  private clientWrite(node: SimNode): void {
    const key = this.rng.pick(this.keys);
    const entry = this.rng.chance(0.3) ? node.replica.del(key) : node.replica.put(key, Uint8Array.of(this.rng.int(0, 255), node.index));
    this.stats.writes++;
    this.written.push(entry);
    node.pendingWrites.push({ entry, seq: node.replica.headSeq, sentTo: new Set() });
    this.handle(node, node.core!.localWrite());
  }

  /** Writes of `node` that `done` says a majority holds get their acknowledgement. */
  private acknowledge(node: SimNode, done: (w: PendingWrite) => boolean): void {
    const still: PendingWrite[] = [];
    for (const w of node.pendingWrites) {
      if (!done(w)) {
        still.push(w);
        continue;
      }
      this.stats.acknowledged++;
      this.log(() => `${node.id} acknowledges ${show(w.entry)} ${w.entry.key}`);
      this.acked.push({ entry: w.entry, node: node.id, lost: false });
    }
    node.pendingWrites = still;
  }

  /** ackOnSend fault: count the peers a pending write was sent to. */
  private sentChanges(node: SimNode, to: string, entries: Entry[]): void {
    for (const w of node.pendingWrites) {
      if (entries.some((e) => e.key === w.entry.key && compareVersions(e, w.entry) >= 0)) w.sentTo.add(to);
    }
    this.acknowledge(node, (w) => w.sentTo.size >= Math.floor(this.nodes.length / 2));
  }

  /** A quorum read at `node`; checked when it finishes (G1). */
  private clientRead(node: SimNode): void {
    const key = this.rng.pick(this.keys);
    const reqId = `r${++this.readCounter}`;
    node.pendingReads.set(reqId, { key, floor: this.newestAcked(key) });
    this.handle(node, node.core!.quorumRead([key], reqId, this.clockOf(node)));
  }

  /** The newest acknowledged write of `key` that is still required (not lost beyond the guarantee). */
  private newestAcked(key: string): AckedWrite | undefined {
    let newest: AckedWrite | undefined;
    for (const w of this.acked) if (w.entry.key === key && !w.lost && (!newest || compareVersions(w.entry, newest.entry) > 0)) newest = w;
    return newest;
  }

  /** G1: a quorum read returns the newest write acknowledged before it began, or a newer one. */
  private readDone(node: SimNode, reqId: string, ok: boolean, result: Entry | undefined): void {
    const r = node.pendingReads.get(reqId);
    if (!r) this.fail(`${node.id}: quorumRead for unknown or answered ${reqId}`);
    node.pendingReads.delete(reqId);
    if (!ok) {
      this.stats.readsRefused++;
      return;
    }
    this.stats.reads++;
    const floor = r.floor;
    if (!floor || floor.lost) return;
    if (result === undefined) {
      if (floor.entry.value === null) return;
      // a purged tombstone reads as absent: fine when a delete newer than the floor was written
      if (this.written.some((w) => w.key === r.key && w.value === null && compareVersions(w, floor.entry) > 0)) return;
      this.fail(`G1: ${node.id} read ${r.key} as absent; ${show(floor.entry)} was acknowledged by ${floor.node} before the read`);
    }
    if (compareVersions(result, floor.entry) < 0) {
      this.fail(`G1: ${node.id} read ${r.key} as ${show(result)}, older than ${show(floor.entry)} acknowledged by ${floor.node} before the read`);
    }
  }

  /** A client GET at level ONE, through the handler; a key this replica has no row for (not even a tombstone) is reported to the core. */
  private localGet(node: SimNode): void {
    const key = this.rng.pick(this.keys);
    node.replica.read(key, (missed) => {
      if (node.replica.get(missed) !== undefined) this.fail(`${node.id}: a GET of ${missed}, which has a row here, started a key fetch`);
      const reqId = `m${++this.missCounter}`;
      node.pendingMisses.set(reqId, this.step);
      this.handle(node, node.core!.keyMiss(missed, reqId, this.clockOf(node)));
    });
  }

  private crash(node: SimNode, downMs = this.rng.int(5, 300)): void {
    this.stats.crashes++;
    this.log(() => `${node.id} crashes`);
    node.core = null;
    node.pendingMisses.clear();
    // replies never sent: the clients of these writes and reads got no answer
    node.pendingWrites = [];
    node.pendingReads.clear();
    node.downUntilMs = this.nowMs + downMs;
    if (this.rng.chance(0.15)) this.wipe(node);
  }

  /** The data file is gone: writes that only this replica held are lost with it. */
  private wipe(node: SimNode): void {
    this.stats.wipes++;
    this.log(() => `${node.id} loses its data file`);
    node.replica.observer = null;
    node.replica.close();
    node.replica = this.newReplica(node);
    node.everHeld = new Map();
    this.watch(node);
    // G2 holds while the other replicas hold what they acknowledged: none of them is re-copying after a loss of its own
    const othersSynced = this.nodes.every((n) => n === node || n.replica.isSynced());
    for (const w of this.acked) {
      if (w.lost) continue;
      const covered = this.nodes.some((n) => n !== node && (n.everHeld.get(w.entry.key) && compareVersions(n.everHeld.get(w.entry.key)!, w.entry) >= 0));
      if (covered) continue;
      if (othersSynced) this.fail(`G2: ${show(w.entry)} ${w.entry.key}, acknowledged by ${w.node}, was only on ${node.id}, whose data file is lost`);
      w.lost = true;
    }
  }

  private partition(): void {
    this.stats.partitions++;
    for (const n of this.nodes) this.group.set(n.id, this.rng.int(0, 1));
    this.log(() => `partition ${[...this.group].map(([id, g]) => `${id}:${g}`).join(' ')}`);
  }

  private heal(): void {
    this.chaos = false;
    for (const n of this.nodes) this.group.set(n.id, 0);
  }

  /** null when converged, else why not. */
  private converged(): string | null {
    if (this.nodes.some((n) => !n.core)) return 'a node is down';
    if (!this.nodes.some((n) => n.core!.role === 'leader')) return 'no leader';
    for (const n of this.nodes) if (n.pendingMisses.size > 0) return `${n.id} has unanswered key misses`;
    const views = this.nodes.map((n) => n.replica.liveView());
    for (const key of this.keys) {
      const rows = views.map((v) => v.get(key));
      const first = rows[0];
      for (let i = 1; i < rows.length; i++) {
        const r = rows[i];
        if ((r === undefined) !== (first === undefined) || (r && first && compareVersions(r, first) !== 0)) {
          return `${key} differs: ${this.nodes.map((n, j) => `${n.id}=${rows[j] ? `${rows[j]!.ts}/${rows[j]!.origin}` : '-'}`).join(' ')}`;
        }
      }
      const why = this.matchesExpected(key, first);
      if (why) return why;
    }
    return null;
  }

  /** The final row must be the newest acknowledged write that was not lost with a data file, or newer. */
  private matchesExpected(key: string, final: Entry | undefined): string | null {
    const writes = this.acked.filter((w) => w.entry.key === key);
    let newest: AckedWrite | undefined;
    for (const w of writes) if (!w.lost && (!newest || compareVersions(w.entry, newest.entry) > 0)) newest = w;
    if (final === undefined) {
      if (!newest || newest.entry.value === null) return null;
      const laterDelete = this.written.some((w) => w.key === key && w.value === null && compareVersions(w, newest.entry) > 0);
      return laterDelete ? null : `${key}: acknowledged ${newest.entry.ts}/${newest.entry.origin} lost (absent everywhere)`;
    }
    const source = this.written.find((w) => w.key === key && compareVersions(w, final) === 0);
    if (!source) return `${key}: ${final.ts}/${final.origin} was never written`;
    if (!sameValue(source.value, final.value)) return `${key}: value of ${final.ts}/${final.origin} changed`;
    if (newest && compareVersions(final, newest.entry) < 0) return `${key}: acknowledged ${newest.entry.ts}/${newest.entry.origin} lost under ${final.ts}/${final.origin}`;
    return null;
  }
}

function show(e: Entry | undefined): string {
  if (!e) return '-';
  return `${e.value === null ? 'TOMB' : 'live'}@${e.ts}/${e.origin}`;
}

function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

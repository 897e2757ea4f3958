// Scripted scenarios of the pure cluster core on a tiny deterministic
// network (every message arrives at the next step unless its link is cut):
// election, pre-vote, check-quorum, fencing, the persist-before-send output,
// pull replication and purge, stream change, anti-entropy, key misses, the
// leader's view (clock skew, degraded groups).
import test, { type ExecutionContext } from 'ava';
import { ClusterNode, bucketOf, type ClusterEvent, type CoreSettings, type Entry, type HardState, type Message, type Output } from '../src/cluster/core/index.ts';
import { SimReplica } from './sim/sim-replica.ts';
import { originOf } from '../src/shared/origin.ts';
import { Rng, simSettings } from './sim/simulator.ts';

interface Member {
  id: string;
  core: ClusterNode;
  replica: SimReplica;
  hard: HardState;
  events: ClusterEvent[];
  clockOffsetMs: number;
}

class Cluster {
  nowMs = 1_000;
  readonly members = new Map<string, Member>();
  private queue: { from: string; to: string; msg: Message }[] = [];
  /** cut links, as "from>to" */
  readonly cut = new Set<string>();
  readonly sent: { from: string; to: string; msg: Message }[] = [];
  private readonly rng: Rng;
  private readonly ids: string[];
  private readonly settings: Partial<CoreSettings>;

  constructor(size: number, settings: Partial<CoreSettings> = {}, seed = 1) {
    this.rng = new Rng(seed);
    this.settings = { ...simSettings, ...settings };
    this.ids = Array.from({ length: size }, (_, i) => `n${i}`);
    this.ids.forEach((id, i) => this.start(id, this.newReplica(id, i), { term: 0, votedFor: null }, 0));
  }

  /** A new (empty) data file for member `id`: the daemon's real store and replica, in memory. */
  newReplica(id: string, streamId: number): SimReplica {
    return new SimReplica({
      streamId: BigInt(streamId),
      origin: originOf(id),
      wallClockUs: () => BigInt(this.nowMs + (this.members.get(id)?.clockOffsetMs ?? 0)) * 1000n,
      nowMs: () => this.nowMs,
      antiEntropyIntervalMs: this.settings.antiEntropyIntervalMs!,
    });
  }

  close(): void {
    for (const m of this.members.values()) m.replica.close();
  }

  start(id: string, replica: SimReplica, hard: HardState, clockOffsetMs: number): Member {
    replica.completed = []; // a fresh core has its own tickets
    const m: Member = { id, replica, hard, events: [], clockOffsetMs, core: undefined as unknown as ClusterNode };
    m.core = new ClusterNode({
      self: id,
      members: this.ids,
      hardState: hard,
      replica,
      settings: this.settings,
      random: () => this.rng.next(),
      wallClockMs: () => this.nowMs + m.clockOffsetMs,
      nowMs: this.nowMs,
    });
    this.members.set(id, m);
    return m;
  }

  get(id: string): Member {
    return this.members.get(id)!;
  }

  /** Carries out an output the way the shell must: persist, then send, then events. */
  handle(m: Member, out: Output): Output {
    if (out.persist) m.hard = { ...out.persist };
    for (const { to, msg } of out.messages) {
      this.sent.push({ from: m.id, to, msg });
      this.queue.push({ from: m.id, to, msg });
    }
    m.events.push(...out.events);
    return out;
  }

  step(ms = 5): void {
    this.nowMs += ms;
    // applies handed to a replica in the previous step are reported now (the daemon's writer answers later too)
    for (const m of this.members.values()) {
      m.replica.runWriter();
      const done = m.replica.completed;
      m.replica.completed = [];
      for (const c of done) this.handle(m, m.core.applied(c.ticket, c.count, this.nowMs));
    }
    const due = this.queue;
    this.queue = [];
    for (const { from, to, msg } of due) {
      if (this.cut.has(`${from}>${to}`)) continue;
      const m = this.get(to);
      this.handle(m, m.core.receive(from, msg, this.nowMs));
    }
    for (const m of this.members.values()) this.handle(m, m.core.tick(this.nowMs));
  }

  run(ms: number): void {
    for (let t = 0; t < ms; t += 5) this.step();
  }

  runUntil(what: string, done: () => boolean, maxMs = 5_000): void {
    for (let t = 0; t < maxMs; t += 5) {
      if (done()) return;
      this.step();
    }
    throw new Error(`not reached within ${maxMs} virtual ms: ${what}`);
  }

  /** One leader, known to every node. */
  settled(): boolean {
    const l = this.leaders();
    return l.length === 1 && [...this.members.values()].every((m) => m.core.leaderId === l[0].id);
  }

  leaders(): Member[] {
    return [...this.members.values()].filter((m) => m.core.role === 'leader');
  }

  isolate(id: string): void {
    for (const other of this.ids) if (other !== id) this.cut.add(`${id}>${other}`).add(`${other}>${id}`);
  }

  write(id: string, key: string, value: string | null): Entry | undefined {
    const m = this.get(id);
    const e = value === null ? m.replica.del(key) : m.replica.put(key, Buffer.from(value));
    this.handle(m, m.core.localWrite());
    return e;
  }
}

/** A cluster whose in-memory databases are closed when the test ends. */
function cluster(t: ExecutionContext, size: number, settings: Partial<CoreSettings> = {}): Cluster {
  const c = new Cluster(size, settings);
  t.teardown(() => c.close());
  return c;
}

const valueOf = (m: Member, key: string) => {
  const e = m.replica.get(key);
  return e === undefined ? undefined : e.value === null ? null : Buffer.from(e.value).toString();
};

test('three nodes elect one leader that every follower knows', (t) => {
  const c = cluster(t, 3);
  c.runUntil('a leader', () => c.leaders().length === 1);
  const leader = c.leaders()[0];
  c.run(100);
  t.is(c.leaders().length, 1);
  for (const m of c.members.values()) {
    t.is(m.core.leaderId, leader.id);
    t.is(m.core.term, leader.core.term);
  }
  t.true(leader.events.some((e) => e.type === 'role' && e.role === 'leader' && e.term === leader.core.term));
});

test('a vote is in the persist of the same output that carries the granted reply', (t) => {
  const c = cluster(t, 3);
  const voter = c.get('n1');
  const out = voter.core.receive('n0', { type: 'vote', term: 1, from: 'n0' }, c.nowMs);
  t.deepEqual(out.persist, { term: 1, votedFor: 'n0' });
  t.deepEqual(
    out.messages.map((m) => m.msg),
    [{ type: 'voteReply', granted: true, term: 1, from: 'n1' }],
  );
  const again = voter.core.receive('n2', { type: 'vote', term: 1, from: 'n2' }, c.nowMs);
  t.is(again.persist, undefined);
  t.deepEqual(again.messages.map((m) => m.msg.type === 'voteReply' && m.msg.granted), [false], 'one vote per term');
  // restarted from the persisted state, it still refuses a second candidate of that term
  const restarted = c.start('n1', voter.replica, { term: 1, votedFor: 'n0' }, 0);
  const after = restarted.core.receive('n2', { type: 'vote', term: 1, from: 'n2' }, c.nowMs);
  t.deepEqual(after.messages.map((m) => m.msg.type === 'voteReply' && m.msg.granted), [false]);
});

test('pre-vote: an isolated follower does not raise its term and does not disturb the leader when it returns', (t) => {
  const c = cluster(t, 3);
  c.runUntil('a leader', () => c.leaders().length === 1);
  const leader = c.leaders()[0];
  const term = leader.core.term;
  const loner = [...c.members.values()].find((m) => m !== leader)!;
  c.isolate(loner.id);
  c.run(2_000);
  t.is(loner.core.term, term, 'pre-votes do not bump the term');
  t.not(loner.core.role, 'leader');
  c.cut.clear();
  c.run(500);
  t.is(leader.core.role, 'leader');
  t.is(leader.core.term, term);
  t.is(loner.core.leaderId, leader.id);
});

test('check-quorum: a cut-off leader steps down; the majority elects a new one; the old one follows on return', (t) => {
  const c = cluster(t, 3);
  c.runUntil('a leader', () => c.leaders().length === 1);
  const old = c.leaders()[0];
  c.isolate(old.id);
  c.runUntil('old leader steps down', () => old.core.role !== 'leader');
  c.runUntil('a new leader', () => c.leaders().some((m) => m !== old));
  const fresh = c.leaders().find((m) => m !== old)!;
  t.true(fresh.core.term > old.core.term);
  c.cut.clear();
  c.runUntil('old leader follows', () => old.core.leaderId === fresh.id);
  t.is(old.core.term, fresh.core.term);
  t.is(c.leaders().length, 1);
});

test('fencing: a request from an older term is answered with Stale and changes nothing', (t) => {
  const c = cluster(t, 3);
  c.runUntil('a leader', () => c.leaders().length === 1);
  const follower = [...c.members.values()].find((m) => m.core.role === 'follower')!;
  const { term, leaderId } = follower.core;
  const other = follower.id === 'n0' ? 'n1' : 'n0';
  const out = follower.core.receive(other, { type: 'heartbeat', term: term - 1, from: other, sentAtMs: 0 }, c.nowMs);
  t.deepEqual(out.messages.map((m) => m.msg.type), ['stale']);
  t.is(follower.core.term, term);
  t.is(follower.core.leaderId, leaderId);
  const spoofed = follower.core.receive('n0', { type: 'heartbeat', term: term + 5, from: 'n9', sentAtMs: 0 }, c.nowMs);
  t.deepEqual(spoofed, { messages: [], events: [] }, 'a message whose from is not the authenticated peer is dropped');
});

test('writes on any node reach every node; a delete is purged once every node has it', (t) => {
  const c = cluster(t, 3);
  c.write('n1', 'apple', 'red');
  c.runUntil('apple everywhere', () => [...c.members.values()].every((m) => valueOf(m, 'apple') === 'red'));
  c.write('n2', 'apple', null);
  c.runUntil('tombstone purged everywhere', () => [...c.members.values()].every((m) => m.replica.get('apple') === undefined));
  t.pass();
});

test('a node whose data file is recreated gets a full copy (its peers see a new stream)', (t) => {
  const c = cluster(t, 3);
  for (let i = 0; i < 10; i++) c.write(`n${i % 3}`, `k${i}`, `v${i}`);
  c.runUntil('all keys everywhere', () => [...c.members.values()].every((m) => m.replica.liveView().size === 10));
  const old = c.get('n2');
  const fresh = c.start('n2', c.newReplica('n2', 99), old.hard, 0);
  c.runUntil('refilled', () => fresh.replica.liveView().size === 10);
  c.write('n2', 'after', 'x');
  c.runUntil('its new stream is pulled', () => valueOf(c.get('n0'), 'after') === 'x');
  t.pass();
});

test('anti-entropy repairs divergence that pulls do not carry', (t) => {
  // pulls effectively off: only the leader's digest rounds can move data
  const c = cluster(t, 3, { pullIntervalMs: 1e9, pullTimeoutMs: 1e9, maxEntriesPerMessage: 2 });
  c.runUntil('a leader', () => c.leaders().length === 1);
  c.get('n0').replica.put('a', Buffer.from('0'));
  c.get('n1').replica.put('b', Buffer.from('1'));
  for (let i = 0; i < 7; i++) c.get('n2').replica.put(`c${i}`, Buffer.from('2'));
  c.get('n1').replica.put('a', Buffer.from('newer'));
  c.runUntil('all replicas equal', () => {
    const views = [...c.members.values()].map((m) => JSON.stringify([...m.replica.liveView()].map(([k, e]) => [k, e.ts.toString(), e.origin]).sort()));
    return views.every((v) => v === views[0]) && c.get('n0').replica.liveView().size === 9;
  }, 10_000);
  t.is(valueOf(c.get('n2'), 'a'), 'newer');
});

test('key miss: asked of the leader, answered from its replica or a follower, coalesced per key', (t) => {
  const c = cluster(t, 3, { pullIntervalMs: 1e9, pullTimeoutMs: 1e9, antiEntropyIntervalMs: 1e9 });
  c.runUntil('a known leader', () => c.settled());
  const leader = c.leaders()[0];
  const [asker, holder] = [...c.members.values()].filter((m) => m !== leader);
  leader.replica.put('on-leader', Buffer.from('L'));
  holder.replica.put('on-follower', Buffer.from('F'));
  const sentBefore = c.sent.length;
  c.handle(asker, asker.core.keyMiss('on-follower', 'r1', c.nowMs));
  c.handle(asker, asker.core.keyMiss('on-follower', 'r2', c.nowMs));
  c.handle(asker, asker.core.keyMiss('on-leader', 'r3', c.nowMs));
  c.handle(asker, asker.core.keyMiss('nowhere', 'r4', c.nowMs));
  t.is(c.sent.slice(sentBefore).filter((s) => s.msg.type === 'whoHas' && s.msg.key === 'on-follower').length, 1, 'one query per key');
  c.runUntil('all answered', () => asker.events.filter((e) => e.type === 'keyFetched').length === 4);
  const fetched = new Map(asker.events.flatMap((e) => (e.type === 'keyFetched' ? [[e.reqId, e.entry] as const] : [])));
  t.is(Buffer.from(fetched.get('r1')!.value!).toString(), 'F');
  t.is(Buffer.from(fetched.get('r2')!.value!).toString(), 'F');
  t.is(Buffer.from(fetched.get('r3')!.value!).toString(), 'L');
  t.is(fetched.get('r4'), null);
  t.is(valueOf(asker, 'on-follower'), 'F', 'the fetched entry is stored');
  t.is(valueOf(leader, 'on-follower'), 'F', 'the leader keeps what it relayed');
});

test('key miss without a known leader, or over the bound, answers null at once', (t) => {
  const c = cluster(t, 3, { maxPendingKeyFetches: 1 });
  const m = c.get('n0');
  const out = m.core.keyMiss('k', 'r1', c.nowMs);
  t.deepEqual(out.events, [{ type: 'keyFetched', reqId: 'r1', key: 'k', entry: null }]);
  c.runUntil('a known leader', () => c.settled());
  const follower = [...c.members.values()].find((x) => x.core.role === 'follower')!;
  c.cut.add(`${follower.id}>${follower.core.leaderId}`);
  t.deepEqual(follower.core.keyMiss('a', 'q1', c.nowMs).events, []);
  t.deepEqual(follower.core.keyMiss('b', 'q2', c.nowMs).events, [{ type: 'keyFetched', reqId: 'q2', key: 'b', entry: null }]);
});

test("the leader's view: lag, clock skew reported once, degraded groups asked to retry with backoff", (t) => {
  const c = cluster(t, 3);
  c.get('n2').clockOffsetMs = 5_000;
  c.runUntil('a leader', () => c.leaders().length === 1);
  const leader = c.leaders()[0];
  const degraded = [...c.members.values()].find((m) => m !== leader)!;
  degraded.core.setStatus({ processorsAlive: 1, restarts: 11, degradedGroups: ['7391'], keyCount: 0, streamId: 's', lastWriteTs: 0n });
  c.run(1_000);
  const retries = degraded.events.filter((e) => e.type === 'retryGroups');
  t.true(retries.length >= 2, 'asked to retry more than once');
  t.true(retries.length <= 5, 'with backoff, not every heartbeat');
  t.deepEqual(retries[0], { type: 'retryGroups', groups: ['7391'] });
  const view = leader.core.view(c.nowMs);
  t.is(view.leaderId, leader.id);
  t.is(view.daemons.length, 3);
  const d = view.daemons.find((x) => x.id === degraded.id)!;
  t.deepEqual(d.status?.degradedGroups, ['7391']);
  t.is(d.role, 'follower');
  if (leader.id !== 'n2') {
    const skewed = view.daemons.find((x) => x.id === 'n2')!;
    t.true(skewed.clockSkewed);
    t.true(Math.abs(skewed.clockOffsetMs! - 5_000) < 50);
    t.is(leader.events.filter((e) => e.type === 'clockSkew' && e.peer === 'n2').length, 1, 'reported once per episode');
  } else {
    t.true(view.daemons.filter((x) => x.id !== 'n2').every((x) => x.clockSkewed));
  }
});

test('a pull answered in a lower term is applied: pulls do not depend on leadership', (t) => {
  const c = cluster(t, 3, { pullIntervalMs: 1e9, pullTimeoutMs: 1e9, antiEntropyIntervalMs: 1e9, purgeIntervalMs: 1e9 });
  c.runUntil('a known leader', () => c.settled());
  const leader = c.leaders()[0];
  const [puller, source] = [...c.members.values()].filter((m) => m !== leader);
  const term = puller.core.term;
  source.replica.put('late-answer', Buffer.from('v'));
  const pull = puller.core.receive(source.id, { type: 'notify', term, from: source.id }, c.nowMs).messages.find((m) => m.msg.type === 'pull');
  t.truthy(pull, 'a notify makes it pull');
  const changes = source.core.receive(puller.id, pull!.msg, c.nowMs).messages.find((m) => m.msg.type === 'changes');
  t.truthy(changes);
  // an election happens while the answer is on its way
  puller.core.receive(leader.id, { type: 'heartbeat', term: term + 1, from: leader.id, sentAtMs: 0 }, c.nowMs);
  t.is(puller.core.term, term + 1);
  t.is(changes!.msg.term, term);
  puller.core.receive(source.id, changes!.msg, c.nowMs);
  // the apply went to the writer: its turn
  puller.replica.runWriter();
  t.is(valueOf(puller, 'late-answer'), 'v');
});

test('anti-entropy repairs a divergence in any bucket within a bounded number of rounds, also while the lowest buckets always differ', (t) => {
  const buckets = 8;
  const perRound = 2;
  const interval = 300;
  // pulls off: only anti-entropy moves data
  const c = cluster(t, 3, { pullIntervalMs: 1e9, pullTimeoutMs: 1e9, antiEntropyIntervalMs: interval, antiEntropyBuckets: buckets, maxRepairBucketsPerRound: perRound });
  c.runUntil('a known leader', () => c.settled());
  const leader = c.leaders()[0];
  const follower = [...c.members.values()].find((m) => m !== leader)!;
  const keyIn = (bucket: number) => {
    for (let i = 0; ; i++) if (bucketOf(`k${i}`, buckets) === bucket) return `k${i}`;
  };
  const hot = Array.from({ length: perRound }, (_, b) => keyIn(b));
  const cold = keyIn(buckets - 1);
  // the divergence: a row only the follower has, in the highest bucket
  follower.replica.put(cold, Buffer.from('only-here'));
  // steady writes on the leader to the lowest buckets: they differ at every round
  let n = 0;
  const rounds = Math.ceil(buckets / perRound) + 2;
  for (let ms = 0; ms < rounds * interval && valueOf(leader, cold) === undefined; ms += 5) {
    for (const k of hot) leader.replica.put(k, Buffer.from(String(n++)));
    c.step();
  }
  t.is(valueOf(leader, cold), 'only-here', `not repaired within ${rounds} rounds`);
});

test('cached digests are recomputed once older than the bound: a divergence is not hidden for long', (t) => {
  const interval = 1_000;
  let now = 0;
  const replica = new SimReplica({ streamId: 1n, origin: 0, wallClockUs: () => 1_000_000n, nowMs: () => now, antiEntropyIntervalMs: interval });
  t.teardown(() => replica.close());
  replica.refreshDigests(8);
  const empty = replica.bucketDigests(8);
  replica.put('k', Buffer.from('v'));
  t.deepEqual(replica.bucketDigests(8), empty, 'within the bound the cached set is used');
  // the member refreshes once a round: a cache two and a half rounds old means the refresh is stuck
  now = 2.5 * interval;
  t.notDeepEqual(replica.bucketDigests(8), empty, 'past the bound the digests are recomputed');
});

test('a version further ahead of local time than maxClockSkewMs is refused and does not drag the clock; it applies once time has caught up', (t) => {
  const c = cluster(t, 3, { maxClockSkewMs: 200 });
  c.runUntil('a known leader', () => c.settled());
  const fast = c.get('n2');
  fast.clockOffsetMs = 1_000;
  // a version made by a clock 1 s ahead: 800 ms beyond the bound
  c.write('n2', 'fast-key', 'from-the-future');
  const fastTs = fast.replica.get('fast-key')!.ts;
  c.run(300);
  for (const id of ['n0', 'n1']) {
    const m = c.get(id);
    t.is(valueOf(m, 'fast-key'), undefined, `${id} refused it`);
    t.true(m.events.some((e) => e.type === 'versionAhead' && e.peer === 'n2' && e.key === 'fast-key' && e.aheadMs > 200), `${id} reported it`);
    t.true(m.replica.put(`local-${id}`, Buffer.from('x')).ts < fastTs - 500_000n, `${id}'s clock was not dragged forward`);
  }
  c.runUntil('applied once local time is within the bound', () => valueOf(c.get('n0'), 'fast-key') === 'from-the-future' && valueOf(c.get('n1'), 'fast-key') === 'from-the-future', 3_000);
  t.pass();
});

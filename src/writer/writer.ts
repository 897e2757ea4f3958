// A group's writer: the one thread that writes the group's SQLite file. The
// processors and the cluster member send it requests on their own ports; it
// commits everything that arrived since its last commit as one transaction
// (group commit) and answers each request. While one commit's fsync runs,
// the next requests queue on the ports, so the next commit takes them all.
// After each commit it tells every processor which keys changed (their read
// caches drop those keys) before it answers anyone.
//
// Durability "full": SQLite commits without syncing (synchronous=NORMAL) and
// the writer fdatasyncs the WAL itself, asynchronously, answering a commit's
// requests only when a sync that started after that commit has finished.
// While one commit's sync runs, the next commit is made and its sync starts:
// each request waits for about one sync, not for the sync of the commit
// before it as well. (Committed data is visible to reads before its sync
// completes; see docs/architecture.md.)

import { fdatasync, openSync } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Store } from '../store/store.ts';
import { MetricsWriter } from '../metrics/counters.ts';
import { SharedClock } from '../store/clock.ts';
import { commitRequests } from './execute.ts';
import { SLOW_COMMIT_FAULT_MS, WriterSlot, type FromWriterThread, type InvalidationMessage, type ToWriter, type ToWriterThread, type WriterData } from './contract.ts';

const data = workerData as WriterData;
const parent = parentPort!;
const stats = new Float64Array(data.stats);
const metrics = new MetricsWriter(data.metrics);
const commitCounter = new Int32Array(data.commitCounter);
const send = (m: FromWriterThread) => parent.postMessage(m);

const store = Store.open(data.dbFile, {
  // full: this thread syncs the WAL after each commit, off the event loop
  durability: 'normal',
  maxStoreBytes: data.maxStoreBytes,
  origin: data.origin,
  keepTombstones: data.keepTombstones,
});
const clock = new SharedClock(data.clock);

/** Requests since the last commit, with the port each answer goes to. */
let queue: Array<{ port: MessagePort; request: ToWriter }> = [];
let commitScheduled = false;
const invalidationPorts = new Map<string, MessagePort>();
let stopping = false;
let crashAfterCommit = false;
let slowCommit = false;
const syncCommits = data.durability === 'full';
/** the WAL, opened once it exists: fdatasync of any descriptor of the file makes its written pages durable */
let walFd: number | undefined;
/** WAL syncs in flight; a new commit waits while this many run (the queue gathers meanwhile) */
let syncsInFlight = 0;
const MAX_SYNCS_IN_FLIGHT = 2;

function onRequest(port: MessagePort, request: ToWriter): void {
  queue.push({ port, request });
  if (!commitScheduled && syncsInFlight < MAX_SYNCS_IN_FLIGHT) {
    commitScheduled = true;
    // the rest of what the ports hold arrives in this turn: one commit takes it all
    setImmediate(commit);
  }
}

function commit(): void {
  commitScheduled = false;
  const items = queue;
  queue = [];
  if (items.length === 0) return;
  const startedMs = performance.now();
  stats[WriterSlot.inCommit] = 1;
  if (slowCommit) {
    // the injected stall counts as time in the transaction, like an fsync on a stalled disk
    slowCommit = false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SLOW_COMMIT_FAULT_MS);
  }
  const outcome = commitRequests(
    store,
    clock,
    items.map((i) => i.request),
  );
  stats[WriterSlot.inCommit] = 0;
  const tookMs = performance.now() - startedMs;
  stats[WriterSlot.commits]++;
  stats[WriterSlot.requests] += items.length;
  stats[WriterSlot.ops] += outcome.ops;
  stats[WriterSlot.commitMsTotal] += tookMs;
  if (tookMs > stats[WriterSlot.commitMsMax]) stats[WriterSlot.commitMsMax] = tookMs;
  if (items.length > stats[WriterSlot.batchMax]) stats[WriterSlot.batchMax] = items.length;
  if (outcome.answers.some((a) => a.type === 'failed')) stats[WriterSlot.failedCommits]++;
  if (crashAfterCommit) throw new Error('injected crash after a commit, before its answers');
  if (outcome.changedKeys.size > 0) {
    // invalidations first, then the counter, then the answers: a processor
    // that sees an acknowledged write's commit number finds its keys queued
    const n = Atomics.load(commitCounter, 0) + 1;
    const msg: InvalidationMessage = { n, keys: [...outcome.changedKeys] };
    for (const p of invalidationPorts.values()) p.postMessage(msg);
    Atomics.store(commitCounter, 0, n);
  }
  if (outcome.localWrites) send({ type: 'committed' });
  const answer = () => {
    for (let i = 0; i < items.length; i++) {
      const a = outcome.answers[i];
      items[i].port.postMessage(a, a.type === 'done' ? [a.results.buffer as ArrayBuffer] : []);
    }
  };
  if (!syncCommits || (outcome.changedKeys.size === 0 && !items.some((i) => i.request.type === 'apply'))) {
    if (outcome.ops > 0) metrics.commit(outcome.ops, tookMs / 1000);
    answer();
  } else {
    walFd ??= openSync(`${data.dbFile}-wal`, 'r+');
    syncsInFlight++;
    stats[WriterSlot.syncsStarted]++;
    const syncStartedMs = performance.now();
    fdatasync(walFd, (e) => {
      syncsInFlight--;
      stats[WriterSlot.syncsDone]++;
      stats[WriterSlot.syncMsTotal] += performance.now() - syncStartedMs;
      // commit batch size, and the time from the commit's start until it is durable
      metrics.commit(outcome.ops, (performance.now() - startedMs) / 1000);
      // a failed sync leaves committed pages of unknown durability: stop (as PostgreSQL does); what is in flight is answered OUTCOME_UNKNOWN
      if (e) throw new Error(`fdatasync of the WAL failed: ${e.message}`);
      answer();
      if (queue.length > 0 && !commitScheduled) {
        commitScheduled = true;
        setImmediate(commit);
      }
      if (stopping && queue.length === 0 && syncsInFlight === 0) finish();
    });
  }
  if (stopping && queue.length === 0 && syncsInFlight === 0) finish();
}

function finish(): void {
  store.close();
  process.exit(0);
}

const heartbeat = setInterval(() => stats[WriterSlot.beats]++, data.heartbeatIntervalMs);
heartbeat.unref();

parent.on('message', (m: ToWriterThread) => {
  switch (m.type) {
    case 'attach': {
      const { name, port, invalidations } = m;
      port.on('message', (r: ToWriter) => onRequest(port, r));
      port.on('close', () => invalidationPorts.delete(name));
      if (invalidations) invalidationPorts.set(name, invalidations);
      break;
    }
    case 'stop':
      stopping = true;
      if (!commitScheduled && syncsInFlight === 0) finish();
      break;
    case 'fault':
      if (!data.faultInjection) break;
      if (m.fault === 'crash') throw new Error('injected writer crash');
      if (m.fault === 'crash-after-commit') crashAfterCommit = true;
      else if (m.fault === 'slow-commit') slowCommit = true;
      // a hang: the event loop never turns again; only the heartbeat watch can see it
      else for (;;);
      break;
  }
});

stats[WriterSlot.beats]++;
send({ type: 'ready' });

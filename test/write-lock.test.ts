// The WriteLock that orders the writers of one SQLite file across threads.

import test from 'ava';
import { Worker } from 'node:worker_threads';
import { WriteLock } from '../src/store/write-lock.ts';

const WORKER = new URL('./fixtures/write-lock-worker.ts', import.meta.url);

test('threads holding the lock exclude each other: no increment of a plain counter is lost', async (t) => {
  const lock = new WriteLock();
  const counter = new SharedArrayBuffer(16);
  const threads = 4, iterations = 20_000;
  await Promise.all(Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: { lock: lock.buffer, counter, iterations } });
    w.once('message', () => void w.terminate().then(() => resolve()));
    w.once('error', reject);
  })));
  t.is(new Float64Array(counter)[0], threads * iterations);
  t.is(new Int32Array(lock.buffer)[0], 0, 'free at the end');
});

test('a holder that never releases (a crashed thread) is taken over after the stale time', (t) => {
  const buffer = new SharedArrayBuffer(4);
  new Int32Array(buffer)[0] = 9999; // held by a thread that is gone
  const lock = new WriteLock(buffer, 20);
  lock.acquire();
  t.not(new Int32Array(buffer)[0], 9999, 'the lock is ours now');
  lock.release();
  t.is(new Int32Array(buffer)[0], 0);
});

test('release by a thread that does not hold the lock changes nothing', (t) => {
  const buffer = new SharedArrayBuffer(4);
  new Int32Array(buffer)[0] = 4242;
  new WriteLock(buffer).release();
  t.is(new Int32Array(buffer)[0], 4242);
});

// Takes turns between the threads of one daemon that write to one SQLite
// file (the processors of a group, and the cluster member on the main
// thread). Without it a writer that finds the file locked is left to SQLite's
// busy handler, which sleeps in growing steps (up to 100 ms) and so turns a
// 0.5 ms commit of another thread into a 100 ms stall. Here a waiter sleeps on
// the lock word and is woken by the release.
//
// SQLite's own lock stays the guard of the data: this lock only orders the
// threads. A holder that does not release within `staleAfterMs` (a crashed
// thread, or a very slow disk) is taken over, and SQLite's busy handling
// covers any overlap.

import { threadId } from 'node:worker_threads';

const FREE = 0;

export class WriteLock {
  readonly buffer: SharedArrayBuffer;
  private readonly word: Int32Array;
  private readonly owner: number;
  private readonly staleAfterMs: number;

  constructor(buffer = new SharedArrayBuffer(4), staleAfterMs = 250) {
    this.buffer = buffer;
    this.word = new Int32Array(buffer, 0, 1);
    // thread ids are unique within the process and the main thread's is 0
    this.owner = threadId + 1;
    this.staleAfterMs = staleAfterMs;
  }

  acquire(): void {
    for (;;) {
      const holder = Atomics.compareExchange(this.word, 0, FREE, this.owner);
      if (holder === FREE) return;
      if (holder === this.owner) throw new Error('WriteLock is not reentrant');
      if (Atomics.wait(this.word, 0, holder, this.staleAfterMs) === 'timed-out') {
        if (Atomics.compareExchange(this.word, 0, holder, this.owner) === holder) return;
      }
    }
  }

  release(): void {
    if (Atomics.compareExchange(this.word, 0, this.owner, FREE) === this.owner) Atomics.notify(this.word, 0, 1);
  }
}

// Background jobs of the daemon, run on a piscina pool so full scans of a
// large store (anti-entropy digests, key counts) never stall the
// supervisor's event loop (heartbeats, elections, the peer port). Jobs run in
// the order queued; the queue is bounded by the caller (hasRoom).

import { Piscina } from 'piscina';
import type { DigestJob, StoreJob } from './worker.ts';

const WORKER = new URL('./worker.ts', import.meta.url).href;

export class BackgroundJobs {
  private readonly pool: Piscina;
  /** jobs queued or running, to bound the queue */
  private pending = 0;
  private readonly maxPending: number;

  constructor(options: { threads: number; maxPending: number }) {
    this.maxPending = options.maxPending;
    this.pool = new Piscina({
      filename: WORKER,
      minThreads: 0,
      maxThreads: options.threads,
      idleTimeout: 30_000,
    });
  }

  /** Whether another job may be queued now (the queue is bounded). */
  get hasRoom(): boolean {
    return this.pending < this.maxPending;
  }

  private run<R>(task: object, name: string): Promise<R> {
    this.pending++;
    return (this.pool.run(task, { name }) as Promise<R>).finally(() => this.pending--);
  }

  /** Anti-entropy digests of a store file (a full scan). */
  digests(job: DigestJob): Promise<number[]> {
    return this.run(job, 'digests');
  }

  /** Live keys of a store file (a full count). */
  keyCount(job: StoreJob): Promise<number> {
    return this.run(job, 'keyCount');
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

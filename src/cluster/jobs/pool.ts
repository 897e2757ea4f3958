// Background jobs of the cluster shell, run on a piscina pool so full scans
// of a large store never stall the supervisor's event loop (heartbeats,
// elections, the peer port). Jobs carry a priority; maintenance scans such as
// anti-entropy digests run at 'low', behind any 'normal' job.

import { Piscina, type PiscinaTask, type TaskQueue } from 'piscina';

type Task = PiscinaTask;
import type { DigestJob, StoreJob } from './worker.ts';

export type Priority = 'normal' | 'low';

/** Two FIFO levels: a queued 'normal' job always runs before a queued 'low' one. */
class PriorityQueue implements TaskQueue {
  private readonly levels: Record<Priority, Task[]> = { normal: [], low: [] };

  get size(): number {
    return this.levels.normal.length + this.levels.low.length;
  }

  push(task: Task): void {
    const options = (task as unknown as Record<symbol, { priority?: Priority } | null>)[Piscina.queueOptionsSymbol];
    this.levels[options?.priority ?? 'normal'].push(task);
  }

  shift(): Task | null {
    return this.levels.normal.shift() ?? this.levels.low.shift() ?? null;
  }

  remove(task: Task): void {
    for (const level of Object.values(this.levels)) {
      const i = level.indexOf(task);
      if (i >= 0) level.splice(i, 1);
    }
  }
}

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
      taskQueue: new PriorityQueue(),
    });
  }

  /** Whether another job may be queued now (the queue is bounded). */
  get hasRoom(): boolean {
    return this.pending < this.maxPending;
  }

  private run<R>(task: object, name: string, priority: Priority): Promise<R> {
    this.pending++;
    const queued = { ...task, [Piscina.queueOptionsSymbol]: { priority } };
    return (this.pool.run(queued, { name }) as Promise<R>).finally(() => this.pending--);
  }

  /** Anti-entropy digests of a store file (a full scan). */
  digests(job: DigestJob): Promise<number[]> {
    return this.run(job, 'digests', 'low');
  }

  /** Live keys of a store file (a full count). */
  keyCount(job: StoreJob): Promise<number> {
    return this.run(job, 'keyCount', 'low');
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

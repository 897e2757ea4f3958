// The piscina worker of BackgroundJobs. Each job opens the store file, does
// its work and closes the file before returning, so a worker thread that the
// pool retires never exits with a database open.

import { Store } from '../../store/store.ts';
import type { Durability } from '../../config/config.ts';
import { computeDigests } from '../digest.ts';

export interface StoreJob {
  file: string;
  durability: Durability;
}

export interface DigestJob extends StoreJob {
  buckets: number;
}

function withStore<T>(file: string, durability: Durability, body: (store: Store) => T): T {
  const store = Store.open(file, { durability });
  try {
    return body(store);
  } finally {
    store.close();
  }
}

export function digests(job: DigestJob): number[] {
  return withStore(job.file, job.durability, (store) => computeDigests(store.allChanges(), job.buckets));
}

export function keyCount(job: StoreJob): number {
  return withStore(job.file, job.durability, (store) => store.keyCount());
}

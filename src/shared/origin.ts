// A daemon's origin: the number written with each of its versions, the
// tie-break of two writes with one timestamp. Derived from the daemon's id
// alone, so every host agrees on it whatever the order of its config (an
// index in the config gave two daemons one origin when two hosts listed them
// in different orders, and their concurrent writes then diverged for good).
// The config refuses two ids with one origin. A pure leaf module.

import { fnv1a } from './key-hash.ts';

/** Origins fit the peer codec's field (0..65535). */
export const MAX_ORIGIN = 0xffff;

/** FNV-1a of the id, folded to 16 bits. */
export function originOf(daemonId: string): number {
  const h = fnv1a(daemonId);
  return ((h >>> 16) ^ (h & MAX_ORIGIN)) >>> 0;
}

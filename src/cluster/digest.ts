// Anti-entropy digests of a store: per key-hash bucket, the XOR of the hash
// of every live row's (key, version, value). Shared by the replica (on the spot) and
// the background job (ahead of the leader's rounds).

import type { Change } from '../store/store.ts';
import { bucketOf, rowHash } from './core/types.ts';

/** XOR of rowHash over the live rows, per bucket. */
export function computeDigests(rows: Iterable<Change>, buckets: number): number[] {
  const values = new Array<number>(buckets).fill(0);
  for (const c of rows) {
    if (c.value === null) continue;
    const b = bucketOf(c.key, buckets);
    values[b] = (values[b] ^ rowHash(c.key, c.timestamp, c.origin, c.value)) >>> 0;
  }
  return values;
}

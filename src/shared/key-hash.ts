// FNV-1a (32-bit) of a key: the store keeps it per row (column `khash`,
// indexed with the key) so that the keys of one hash range can be listed
// without a full scan, and the cluster core uses the same function for its
// anti-entropy buckets (contiguous hash ranges). A pure leaf module, below
// both the store and the cluster core (whose imports stay pure).

/** FNV-1a 32-bit over the UTF-16 code units of s (keys are ASCII in practice). */
export function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** FNV-1a 32-bit over bytes, continuing from `h` (anti-entropy digests hash values with it). */
export function fnv1aBytes(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const HASH_SPACE = 2 ** 32;

/** Bucket b of n covers the hashes [lo, hi): contiguous ranges, any n ≥ 1 (products stay below 2^53). */
export function hashRange(bucket: number, buckets: number): { lo: number; hi: number } {
  return { lo: Math.ceil((bucket * HASH_SPACE) / buckets), hi: Math.ceil(((bucket + 1) * HASH_SPACE) / buckets) };
}

/** The bucket of a hash: the b whose range holds it. */
export function bucketOfHash(hash: number, buckets: number): number {
  return Math.floor((hash * buckets) / HASH_SPACE);
}

// Sizes, command numbers and flag bits of the kv739 client frame
// (see ../shared/protocol/README.md in the design repo; docs/protocol.md here).

export const FRAME_BYTES = 4096;
export const HEADER_BYTES = 40;
export const PAYLOAD_BYTES = FRAME_BYTES - HEADER_BYTES;

/** Keys: 1..128 bytes of printable ASCII without '[' and ']'. */
export const MAX_KEY_BYTES = 128;
/** Values: 0..2048 bytes. */
export const MAX_VALUE_BYTES = 2048;

/** Byte offsets of the header fields (all little-endian). */
export const Offset = {
  id: 0,
  command: 8,
  flag: 12,
  param: 16,
  keySize: 24,
  valueSize: 28,
  valueTimestamp: 32,
  payload: 40,
} as const;

/** Command numbers. The first block is fixed by the original design; DEL is ours. */
export const Command = {
  NONE: 0,
  OK: 1,
  CHK: 2,
  GET: 3,
  PUT: 4,
  NO_VAL: 5,
  /** Ours: delete a key; replies OK with the old value, or NO_VAL. */
  DEL: 6,
  GET_META: 10,
  PUT_META: 11,
  GET_TS: 20,
  GET_LAST_TS: 25,
  GET_FIRST_TS: 26,
  INIT: 998,
  SHUT_DOWN: 999,
  ERROR: -1,
} as const;
export type CommandNumber = (typeof Command)[keyof typeof Command];

const commandNames = new Map<number, string>(Object.entries(Command).map(([name, n]) => [n, name]));
export function commandName(n: number): string {
  return commandNames.get(n) ?? `UNKNOWN(${n})`;
}

/** Request flag bits. Unknown bits are ignored. */
export const Flag = {
  /** GET: on a local miss, wait (up to the configured deadline) for the cluster to fetch the key. */
  READ_THROUGH: 1 << 0,
  /** Bits 1-2: the consistency level (`ConsistencyLevel`); 0 = the cluster's default. */
  CONSISTENCY_MASK: 0b11 << 1,
} as const;
export const CONSISTENCY_SHIFT = 1;

/**
 * Consistency level of a request (flag bits 1-2). PUT/DEL: how many daemons
 * must have the write before it is acknowledged. GET: ONE reads the local
 * store; MAJORITY returns a value at least as new as every write acknowledged
 * at MAJORITY or ALL before the read began.
 */
export const ConsistencyLevel = {
  DEFAULT: 0,
  ONE: 1,
  MAJORITY: 2,
  ALL: 3,
} as const;
export type ConsistencyLevelNumber = (typeof ConsistencyLevel)[keyof typeof ConsistencyLevel];

export function consistencyOf(flag: number): ConsistencyLevelNumber {
  return ((flag & Flag.CONSISTENCY_MASK) >>> CONSISTENCY_SHIFT) as ConsistencyLevelNumber;
}
export function withConsistency(flag: number, level: ConsistencyLevelNumber): number {
  return (flag & ~Flag.CONSISTENCY_MASK) | (level << CONSISTENCY_SHIFT);
}

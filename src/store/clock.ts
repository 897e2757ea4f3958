// The daemon's timestamp source: microseconds since the epoch that never go
// backwards, shared by every thread of one daemon through a SharedArrayBuffer.
// Each issued timestamp is above every timestamp issued or observed before it
// (a hybrid logical clock folded into one 64-bit microsecond value).

export class SharedClock {
  readonly buffer: SharedArrayBuffer;
  private readonly last: BigInt64Array;
  private readonly nowUs: () => bigint;

  constructor(buffer = new SharedArrayBuffer(8), nowUs: () => bigint = wallClockUs) {
    this.buffer = buffer;
    this.last = new BigInt64Array(buffer, 0, 1);
    this.nowUs = nowUs;
  }

  /** A fresh timestamp, strictly above `floor` and above every earlier one. */
  next(floor = 0n): bigint {
    for (;;) {
      const last = Atomics.load(this.last, 0);
      let ts = this.nowUs();
      if (ts <= last) ts = last + 1n;
      if (ts <= floor) ts = floor + 1n;
      if (Atomics.compareExchange(this.last, 0, last, ts) === last) return ts;
    }
  }

  /** Makes every later timestamp higher than `ts` (a version seen on disk or from a peer). */
  observe(ts: bigint): void {
    for (;;) {
      const last = Atomics.load(this.last, 0);
      if (ts <= last || Atomics.compareExchange(this.last, 0, last, ts) === last) return;
    }
  }

  peek(): bigint {
    return Atomics.load(this.last, 0);
  }
}

export function wallClockUs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

// Hang detection for one thread, from a beat counter the thread increments in
// shared memory. Pure: the supervisor passes its monotonic clock.
//
// A thread is hung when it misses beats while the supervisor itself was
// running. Time is credited between two checks at most one check interval,
// so when the whole process was frozen (SIGSTOP, a VM pause, a long stall)
// the freeze counts as one interval, not as missed beats; and no wall clock
// is compared, so a step of the system clock changes nothing.
//
// A thread that says it is inside a blocking call (the writer in a SQLite
// transaction: a slow fsync) is given `busyLimitMs` instead of the miss
// limit: it is hung only when one call lasts that long.

export class HeartbeatWatch {
  private readonly checkIntervalMs: number;
  private lastBeats: number;
  private lastCheckMs: number;
  /** supervisor running time credited since the beat counter last moved */
  private silentMs = 0;
  /** when the counter was last seen moving (for the age shown in status) */
  private lastMovedMs: number;

  constructor(checkIntervalMs: number, nowMs: number, beats: number) {
    this.checkIntervalMs = checkIntervalMs;
    this.lastBeats = beats;
    this.lastCheckMs = nowMs;
    this.lastMovedMs = nowMs;
  }

  /** Records a check; returns true when the thread is hung. */
  check(nowMs: number, beats: number, limitMs: number, busy = false, busyLimitMs = limitMs): boolean {
    const credited = Math.min(Math.max(0, nowMs - this.lastCheckMs), this.checkIntervalMs);
    this.lastCheckMs = nowMs;
    if (beats !== this.lastBeats) {
      this.lastBeats = beats;
      this.silentMs = 0;
      this.lastMovedMs = nowMs;
      return false;
    }
    this.silentMs += credited;
    return this.silentMs > (busy ? busyLimitMs : limitMs);
  }

  /** Supervisor running time the thread has been silent (what hang detection judges). */
  get silentForMs(): number {
    return this.silentMs;
  }

  /** Time since the beat counter was last seen moving (monotonic). */
  ageMs(nowMs: number): number {
    return Math.max(0, nowMs - this.lastMovedMs);
  }
}

// Keeps the daemon's clock above every version it ever issued, even when its
// data file is lost. The highest timestamp on disk is not enough then: a PUT
// made after a restart with an empty file and a slow wall clock would carry a
// lower version than a DEL made before, and replicas that still hold that
// tombstone would disagree with those that purged it.
//
// The floor lives in the cluster state file and is raised *ahead* of the
// clock: whenever the clock comes within `marginUs` of the saved floor, the
// floor is saved as clock + `leadUs` (one fsync every few seconds). At start
// the clock observes the saved floor before any processor issues a timestamp.
// The clock could only pass an unsaved floor by jumping more than
// `leadUs - marginUs` within one check interval (a wall-clock step forward, or
// a peer's version up to the skew bound ahead). The daemon uses
// floorTimingFor(maxClockSkewMs): the lead must stay within the bound peers
// enforce, or they refuse a restarted daemon's versions.

import type { SharedClock } from '../store/clock.ts';
import { wallClockUs } from '../store/clock.ts';
import type { HardStateFile } from './hard-state.ts';

/**
 * Floor timing for a cluster whose peers refuse versions more than
 * `maxClockSkewMs` ahead of their clocks. A restarted daemon's clock starts at
 * the saved floor, up to `leadUs` ahead of the wall clock: a lead of 10 s had
 * every peer refuse its new writes for seconds after each restart. So the
 * lead stays below the bound (0.8 of it, at most 10 s), at the price of a
 * save (one fsync of the small state file) every lead/2, checked every lead/8.
 */
export function floorTimingFor(maxClockSkewMs: number): { leadUs: bigint; marginUs: bigint; checkIntervalMs: number } {
  const leadMs = Math.max(1, Math.min(10_000, Math.floor(maxClockSkewMs * 0.8)));
  return {
    leadUs: BigInt(leadMs) * 1000n,
    marginUs: (BigInt(leadMs) * 1000n) / 2n,
    checkIntervalMs: Math.max(5, Math.min(500, Math.floor(leadMs / 8))),
  };
}

export interface ClockFloorOptions {
  leadUs?: bigint;
  marginUs?: bigint;
  checkIntervalMs?: number;
  /** a save failed: the clock may now pass the floor; the daemon must stop */
  onSaveFailed(error: Error): void;
}

export class ClockFloor {
  private readonly file: HardStateFile;
  private readonly clock: SharedClock;
  private readonly leadUs: bigint;
  private readonly marginUs: bigint;
  private readonly onSaveFailed: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private saved: bigint;

  /** Starts the clock above the saved floor and saves a new floor ahead of it; throws if that save fails. */
  constructor(file: HardStateFile, clock: SharedClock, options: ClockFloorOptions) {
    this.file = file;
    this.clock = clock;
    this.leadUs = options.leadUs ?? 10_000_000n;
    this.marginUs = options.marginUs ?? 5_000_000n;
    this.onSaveFailed = options.onSaveFailed;
    this.saved = file.clockFloor();
    clock.observe(this.saved);
    this.raise();
    this.timer = setInterval(() => this.check(), options.checkIntervalMs ?? 500);
    this.timer.unref();
  }

  get floor(): bigint {
    return this.saved;
  }

  private check(): void {
    if (this.highest() + this.marginUs < this.saved) return;
    try {
      this.raise();
    } catch (e) {
      clearInterval(this.timer);
      this.onSaveFailed(e as Error);
    }
  }

  private raise(): void {
    const floor = this.highest() + this.leadUs;
    this.file.saveClockFloor(floor);
    this.saved = floor;
  }

  private highest(): bigint {
    const issued = this.clock.peek();
    const wall = wallClockUs();
    return issued > wall ? issued : wall;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

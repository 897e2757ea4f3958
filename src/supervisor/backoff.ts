// Restart policy of a processor group, OTP style: exponential backoff between
// restarts, and a restart intensity (more than maxRestarts within
// restartWindowMs) past which the supervisor gives up. Pure: time is passed in.

import { backoffMs } from '../shared/backoff.ts';

export interface RestartPolicyConfig {
  restartBackoffInitialMs: number;
  restartBackoffMaxMs: number;
  maxRestarts: number;
  restartWindowMs: number;
}

export class RestartPolicy {
  private readonly config: RestartPolicyConfig;
  private restarts: number[] = [];

  constructor(config: RestartPolicyConfig) {
    this.config = config;
  }

  /**
   * Records a failure at `nowMs`. Returns the delay before the restart, or
   * null when the restart intensity is exceeded.
   */
  onFailure(nowMs: number): number | null {
    const { restartWindowMs, maxRestarts, restartBackoffInitialMs, restartBackoffMaxMs } = this.config;
    this.restarts = this.restarts.filter((t) => nowMs - t < restartWindowMs);
    this.restarts.push(nowMs);
    if (this.restarts.length > maxRestarts) return null;
    return backoffMs(this.restarts.length - 1, restartBackoffInitialMs, restartBackoffMaxMs);
  }

  /** Restarts counted in the current window. */
  recent(nowMs: number): number {
    return this.restarts.filter((t) => nowMs - t < this.config.restartWindowMs).length;
  }
}

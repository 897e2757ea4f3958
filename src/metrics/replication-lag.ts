// Replication lag per peer, as this daemon sees its pulls: when a page of a
// peer's changes arrives, the lag is how old the newest change in it is (the
// daemon's wall clock minus the change's hybrid-logical-clock timestamp); a
// page that is empty and says nothing more follows means caught up, lag 0.
// Pure: the caller gives the wall clock. Clock differences between hosts
// (bounded by the cluster's maxClockSkewMs) shift the figure by that much.

export class ReplicationLag {
  private readonly lagSeconds = new Map<string, number>();

  /** A page of `peer`'s change stream arrived (entry timestamps in µs since the epoch). */
  onChanges(peer: string, page: { entries: readonly { ts: bigint }[]; more: boolean }, wallClockMs: number): void {
    if (page.entries.length === 0) {
      if (!page.more) this.lagSeconds.set(peer, 0);
      return;
    }
    let newest = 0n;
    for (const e of page.entries) if (e.ts > newest) newest = e.ts;
    this.lagSeconds.set(peer, Math.max(0, wallClockMs - Number(newest / 1000n)) / 1000);
  }

  /** Seconds; null before the first page from that peer. */
  of(peer: string): number | null {
    return this.lagSeconds.get(peer) ?? null;
  }
}

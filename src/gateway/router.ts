// Chooses the daemon for each request the gateway forwards, from what it
// knows of each daemon: up or down (its own CHK probes and connections),
// suspect (the cluster's view says unreachable or degraded), back up only a
// moment ago (still catching up), and requests outstanding. Pure: time is
// passed in.
//
// A request with a key goes to the key's home daemon, the highest
// rendezvous-hash score among the usable daemons, so every request for one
// key goes to one daemon while it is up: a client reads its own writes, and
// two writes of one key are never ordered by two daemons' clocks. When the
// home fails, its keys spread over the others (and come back when it has
// been up for rejoinAfterMs). A key written within the last
// recentWriteMs stays with the daemon that took the write while that one is
// up, even if its home changed meanwhile: the new home may not have pulled
// the write yet. A GET whose home already has readSpillOutstanding requests
// outstanding goes to the least loaded daemon instead (unless written
// recently); a request without a key (CHK, GET_LAST_TS, ...) always does.

import { fnv1a } from '../shared/key-hash.ts';

export interface RouterOptions {
  /** a daemon that came back is preferred again only after it has been up this long */
  rejoinAfterMs: number;
  /** a GET goes elsewhere when its home daemon has this many requests outstanding */
  readSpillOutstanding: number;
  /** how long a written key stays with the daemon that took the write (above the replication lag) */
  recentWriteMs: number;
  /** most keys remembered that way; the oldest are forgotten first */
  maxRecentWrites: number;
}

interface DaemonState {
  up: boolean;
  upSinceMs: number;
  suspect: boolean;
  outstanding: number;
  /** seed of this daemon's rendezvous score */
  seed: number;
}

export class Router {
  private readonly options: RouterOptions;
  private readonly daemons: DaemonState[];
  /** where the search for the least loaded daemon starts, so ties rotate */
  private rotation = 0;
  /** key → the daemon its last write went to, oldest first */
  private readonly recentWrites = new Map<string, { daemon: number; atMs: number }>();

  constructor(ids: readonly string[], options: RouterOptions) {
    this.options = options;
    this.daemons = ids.map((id) => ({ up: false, upSinceMs: 0, suspect: false, outstanding: 0, seed: fnv1a(id) }));
  }

  get size(): number {
    return this.daemons.length;
  }

  isUp(i: number): boolean {
    return this.daemons[i]!.up;
  }

  isSuspect(i: number): boolean {
    return this.daemons[i]!.suspect;
  }

  outstanding(i: number): number {
    return this.daemons[i]!.outstanding;
  }

  /** `settled`: usable at once (daemons found up while the gateway starts, before it serves anyone) */
  setUp(i: number, nowMs: number, settled = false): void {
    const d = this.daemons[i]!;
    if (!d.up) {
      d.up = true;
      d.upSinceMs = settled ? -Infinity : nowMs;
    }
  }

  setDown(i: number): void {
    this.daemons[i]!.up = false;
  }

  setSuspect(i: number, suspect: boolean): void {
    this.daemons[i]!.suspect = suspect;
  }

  started(i: number): void {
    this.daemons[i]!.outstanding++;
  }

  finished(i: number): void {
    const d = this.daemons[i]!;
    if (d.outstanding <= 0) throw new Error(`router: daemon ${i} finished more requests than it started`);
    d.outstanding--;
  }

  /** Records that a write of `key` went to daemon i. */
  wrote(key: string, i: number, nowMs: number): void {
    this.recentWrites.delete(key);
    this.recentWrites.set(key, { daemon: i, atMs: nowMs });
    for (const [k, w] of this.recentWrites) {
      if (this.recentWrites.size <= this.options.maxRecentWrites && nowMs - w.atMs < this.options.recentWriteMs) break;
      this.recentWrites.delete(k);
    }
  }

  /**
   * The daemon for a request: among the up daemons not in `exclude`, the
   * settled ones (not suspect, up for rejoinAfterMs) if any, else the others.
   * Undefined when no daemon is up.
   */
  choose(key: string | undefined, isRead: boolean, exclude: ReadonlySet<number>, nowMs: number): number | undefined {
    const candidates = this.candidates(exclude, nowMs);
    if (candidates.length === 0) return undefined;
    if (key === undefined) return this.leastLoaded(candidates);
    const recent = this.recentWrites.get(key);
    if (recent && nowMs - recent.atMs < this.options.recentWriteMs && this.daemons[recent.daemon]!.up && !exclude.has(recent.daemon)) return recent.daemon;
    const keyHash = fnv1a(key);
    let home = candidates[0]!;
    let best = -1;
    for (const i of candidates) {
      const score = mix32(keyHash ^ this.daemons[i]!.seed);
      if (score > best) {
        best = score;
        home = i;
      }
    }
    if (isRead && this.daemons[home]!.outstanding >= this.options.readSpillOutstanding) {
      const other = this.leastLoaded(candidates);
      if (this.daemons[other]!.outstanding < this.daemons[home]!.outstanding) return other;
    }
    return home;
  }

  private candidates(exclude: ReadonlySet<number>, nowMs: number): number[] {
    const settled: number[] = [];
    const others: number[] = [];
    this.daemons.forEach((d, i) => {
      if (!d.up || exclude.has(i)) return;
      if (!d.suspect && nowMs - d.upSinceMs >= this.options.rejoinAfterMs) settled.push(i);
      else others.push(i);
    });
    return settled.length > 0 ? settled : others;
  }

  private leastLoaded(candidates: readonly number[]): number {
    const n = candidates.length;
    const start = this.rotation++ % n;
    let pick = candidates[start]!;
    for (let k = 1; k < n; k++) {
      const i = candidates[(start + k) % n]!;
      if (this.daemons[i]!.outstanding < this.daemons[pick]!.outstanding) pick = i;
    }
    return pick;
  }
}

/**
 * murmur3's 32-bit finalizer: every input bit flips each output bit with
 * probability ~1/2. FNV-1a alone is not enough for rendezvous scores: with
 * seeds that differ in a bit or two (daemon ids "a" and "b"), one daemon won
 * nearly every key.
 */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// What the writer does with the requests gathered since its last commit:
// executes them in arrival order inside one transaction (old values read in
// it, so a PUT stays an atomic read-old-and-write) and builds each answer.
// Separate from the thread so it can be tested on a store directly.

import type { SharedClock } from '../store/clock.ts';
import { StoreError, type Store, type Versioned } from '../store/store.ts';
import { OpKind, type FromWriter, type OpResult, type ToWriter } from './contract.ts';
import { decodeOps, encodeResults } from './ops-codec.ts';

export interface CommitOutcome {
  /** one answer per request, in order */
  answers: FromWriter[];
  /** keys whose rows changed (the processors' read caches drop them) */
  changedKeys: Set<string>;
  /** the transaction held writes made by this daemon's clients */
  localWrites: boolean;
  /** ops and entries executed */
  ops: number;
}

const toResult = (v: Versioned | undefined, seq?: bigint): OpResult => (v ? { value: v.value, ts: v.timestamp, seq } : { value: null, ts: null, seq });

/**
 * Runs every request in one transaction and commits. If the transaction fails
 * (disk full, I/O error), every request is answered `failed` and nothing is
 * applied; any other exception is a bug and propagates.
 */
export function commitRequests(store: Store, clock: SharedClock, requests: ToWriter[]): CommitOutcome {
  const changedKeys = new Set<string>();
  let localWrites = false;
  let ops = 0;
  const stamp = (old: bigint) => clock.next(old);
  try {
    const answers = store.writeBatch(() =>
      requests.map((r): FromWriter => {
        switch (r.type) {
          case 'ops': {
            const results: OpResult[] = [];
            for (const op of decodeOps(r.ops)) {
              ops++;
              switch (op.kind) {
                case OpKind.PUT: {
                  const v = op.value!;
                  const old = store.put(op.key, Buffer.from(v.buffer, v.byteOffset, v.length), stamp);
                  changedKeys.add(op.key);
                  localWrites = true;
                  results.push(toResult(old, store.currentSeq));
                  break;
                }
                case OpKind.DEL: {
                  const old = store.del(op.key, stamp);
                  changedKeys.add(op.key);
                  localWrites = true;
                  results.push(toResult(old, store.currentSeq));
                  break;
                }
                case OpKind.GET:
                  results.push(toResult(store.get(op.key)));
                  break;
                case OpKind.GET_TS:
                  results.push({ value: null, ts: store.getTimestamp(op.key) ?? null });
                  break;
                case OpKind.GET_LAST_TS:
                  results.push({ value: null, ts: store.lastTimestamp() ?? null });
                  break;
                case OpKind.GET_FIRST_TS:
                  results.push({ value: null, ts: store.firstTimestamp() ?? null });
                  break;
              }
            }
            return { type: 'done', id: r.id, results: encodeResults(results) };
          }
          case 'apply': {
            let count = 0;
            let maxTs = 0n;
            for (const e of r.entries) {
              ops++;
              if (store.applyRemote({ key: e.key, value: e.value, timestamp: e.ts, origin: e.origin })) {
                count++;
                changedKeys.add(e.key);
              }
              if (e.ts > maxTs) maxTs = e.ts;
            }
            if (r.source) store.savePeerCursor(r.source.peer, r.source.cursor);
            // later local writes must carry higher timestamps than anything seen
            clock.observe(maxTs);
            return { type: 'applied', id: r.id, count };
          }
          case 'purge':
            ops++;
            return { type: 'applied', id: r.id, count: store.purgeTombstones(r.upToSeq, r.deletedBeforeTs) };
          case 'mark-synced':
            store.setSynced();
            return { type: 'applied', id: r.id, count: 0 };
        }
      }),
    );
    return { answers, changedKeys, localWrites, ops };
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    const answers = requests.map((r): FromWriter => ({ type: 'failed', id: r.id, error: e.message, sqliteCode: e.sqliteCode }));
    return { answers, changedKeys: new Set(), localWrites: false, ops: 0 };
  }
}

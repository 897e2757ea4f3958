// The file's writer as SqliteReplica sees it, carried out on the spot on the
// same store with the writer's own code: for tests of the replica without a
// writer thread.

import type { SharedClock } from '../../src/store/clock.ts';
import type { Store } from '../../src/store/store.ts';
import type { FromWriter, ToWriter } from '../../src/writer/contract.ts';
import { commitRequests } from '../../src/writer/execute.ts';
import type { WriterLink } from '../../src/writer/link.ts';

export function inlineWriter(store: Store, clock: SharedClock): WriterLink {
  return {
    request(request: Omit<ToWriter, 'id'>, answer: (a: FromWriter | null) => void) {
      answer(commitRequests(store, clock, [{ ...request, id: 0 } as ToWriter]).answers[0]);
    },
  } as unknown as WriterLink;
}

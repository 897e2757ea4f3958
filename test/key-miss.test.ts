// Which GETs report a key miss (cluster mode: the key is then fetched through
// the leader): only keys this store has never seen. A deleted key (a
// tombstone) is an answer, NO_VAL, and must not start a fetch on every read.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Flag, type Frame } from '../src/protocol/index.ts';
import { SharedClock } from '../src/store/clock.ts';
import { Store } from '../src/store/store.ts';
import { executeLocal, replyFromResult, writerOp, type HandlerEnv, type Request } from '../src/worker/handler.ts';
import { commitRequests } from '../src/writer/execute.ts';
import { decodeResults, encodeOps } from '../src/writer/ops-codec.ts';

const frame = (command: number, key: string, value = '', flag = 0): Frame => ({
  id: 1n, command, flag, param: 0n, key, value: Buffer.from(value), valueTimestamp: 0n,
});

for (const readCacheEntries of [0, 16]) {
  test(`a GET of a deleted key answers NO_VAL without a key miss; a never-seen key is a miss (read cache ${readCacheEntries})`, (t) => {
    const file = join(mkdtempSync(join(tmpdir(), 'kv-miss-')), 'm.sqlite');
    const store = Store.open(file, { durability: 'normal', readCacheEntries });
    t.teardown(() => store.close());
    const misses: string[] = [];
    const env: HandlerEnv = { store, shutdown: () => 0, onKeyMiss: (key) => misses.push(key) };
    const clock = new SharedClock();
    // as a processor does: writes through the writer's code, reads on the processor's own connection
    const run = (f: Frame): Request => {
      const r: Request = { frame: f, remote: '127.0.0.1' };
      const op = writerOp(r, false);
      if (op) {
        const answer = commitRequests(store, clock, [{ type: 'ops', id: 0, ops: encodeOps([op]) }]).answers[0];
        if (answer.type !== 'done') throw new Error(`write failed: ${JSON.stringify(answer)}`);
        r.reply = replyFromResult(env, r, decodeResults(answer.results)[0]);
      } else {
        r.reply = executeLocal(env, r);
      }
      return r;
    };
    run(frame(Command.PUT, 'gone', 'v'));
    run(frame(Command.DEL, 'gone'));
    run(frame(Command.DEL, 'never-put'));
    for (let i = 0; i < 3; i++) {
      t.is(run(frame(Command.GET, 'gone')).reply?.command, Command.NO_VAL);
      t.is(run(frame(Command.GET, 'never-put')).reply?.command, Command.NO_VAL);
    }
    const through = run(frame(Command.GET, 'gone', '', Flag.READ_THROUGH));
    t.is(through.reply?.command, Command.NO_VAL);
    t.is(through.awaitKey, undefined, 'a READ_THROUGH GET of a tombstone does not wait for a fetch');
    t.deepEqual(misses, [], 'tombstones are not misses');

    t.is(run(frame(Command.GET, 'unknown')).reply?.command, Command.NO_VAL);
    t.deepEqual(misses, ['unknown']);
    t.is(run(frame(Command.GET, 'unknown', '', Flag.READ_THROUGH)).awaitKey, 'unknown');
  });
}

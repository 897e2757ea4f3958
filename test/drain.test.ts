// A draining processor closes idle connections: a request that arrives on a
// connection as it is being closed is either answered or never executed.
// (It used to be executed and left unanswered: the socket was ended while the
// request was still being read.)

import test from 'ava';
import { Command } from '../src/protocol/index.ts';
import { Store } from '../src/store/store.ts';
import { startDaemon, waitFor } from './helpers/daemon.ts';
import { PersistentConnection } from './helpers/wire.ts';

test('during a drain, every PUT that was executed was answered: an unanswered PUT is not in the store', async (t) => {
  // one processor; a drain long enough that idle connections are closed one by one (idle after 50 ms)
  const d = await startDaemon({ processors: 1, durability: 'normal', supervision: { drainTimeoutMs: 5_000 } });
  t.teardown(() => d.kill().catch(() => {}));
  const answered = new Set<string>();
  const unanswered: string[] = [];
  let stopped = false;
  // each client pauses a little longer than the drain's idle limit between PUTs, so many land just as the server closes
  const client = async (c: number) => {
    const conn = await PersistentConnection.open(d.ports[0]);
    for (let i = 0; !stopped; i++) {
      const key = `c${c}:${i}`;
      try {
        const r = await conn.send({ command: Command.PUT, key, value: Buffer.from('v') });
        if (r.command === Command.ERROR) return;
        answered.add(key);
      } catch {
        unanswered.push(key);
        return;
      }
      await new Promise((r) => setTimeout(r, 46 + ((c * 7 + i) % 12)));
    }
    conn.close();
  };
  const clients = Array.from({ length: 24 }, (_, c) => client(c));
  await waitFor('PUTs flowing', () => answered.size > 200, 20_000);
  const exited = d.stop();
  await Promise.all(clients);
  stopped = true;
  t.is((await exited).code, 0);
  t.true(unanswered.length > 0, 'some PUTs were sent as connections closed');
  const store = Store.open(d.dbFiles[0], { durability: 'normal' });
  t.teardown(() => store.close());
  const executedUnanswered = unanswered.filter((k) => store.get(k) !== undefined);
  t.deepEqual(executedUnanswered, [], `${executedUnanswered.length} of ${unanswered.length} unanswered PUTs were executed`);
  t.deepEqual([...answered].filter((k) => store.get(k) === undefined), [], 'every answered PUT is stored');
});

// A graceful stop (SIGTERM) of a cluster member drains its processors first,
// lets the peers pull what was acknowledged meanwhile, and only then stops the
// cluster member: no acknowledged write stays behind on the stopped daemon.

import test from 'ava';
import { Command } from '../src/protocol/index.ts';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';
import { PersistentConnection } from './helpers/wire.ts';

test('SIGTERM during a write stream: every PUT the stopping daemon acknowledged reaches the other daemons', async (t) => {
  // pulls only on notification or every 10 s: what the stopping daemon does not hand over is not fetched in time
  const c = await TestCluster.start({ cluster: { pullIntervalMs: 10_000 }, supervision: { drainTimeoutMs: 1_500 } });
  t.teardown(() => c.stopAll());
  await c.leader();
  const n0 = c.running.get('n0')!;
  const acked: string[] = [];
  let stopping = false;
  const ackedWhileStopping: string[] = [];
  const writer = async (w: number) => {
    const conn = await PersistentConnection.open(c.member('n0').port);
    for (let i = 0; ; i++) {
      const key = `w${w}:${i}`;
      const r = await conn.send({ command: Command.PUT, key, value: Buffer.from('v') }).catch(() => undefined);
      if (!r || r.command === Command.ERROR) return;
      acked.push(key);
      if (stopping) ackedWhileStopping.push(key);
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  await waitFor('writes flowing', () => acked.length > 100, 20_000);
  stopping = true;
  c.running.delete('n0');
  const exit = await n0.stop();
  await Promise.all(writers);
  t.is(exit.code, 0);
  t.true(ackedWhileStopping.length > 0, 'writes were acknowledged during the drain');
  for (const id of ['n1', 'n2']) {
    await waitFor(`${id} holds every acknowledged key`, async () => {
      const conn = await PersistentConnection.open(c.member(id).port);
      try {
        const replies = await Promise.all(acked.map((key) => conn.send({ command: Command.GET, key })));
        return replies.every((r) => r.command === Command.OK);
      } finally {
        conn.close();
      }
    }, 10_000, 200);
  }
  t.pass();
});

// An idle cluster writes nothing: pulls that bring no entries and do not move
// the cursor are not committed (they used to be one fsync each, on the
// supervisor's event loop, several times a second per peer).

import test from 'ava';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';

test('idle daemons pull every 100 ms and their writers commit nothing', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  const d = c.running.get('n1')!;
  const status = async () => (await d.admin({ op: 'status' })).status;
  // the first pulls save each peer's cursor once (a commit or two); then nothing changes
  const start = (await status()).heartbeatChecks;
  await waitFor('the first pulls', async () => (await status()).heartbeatChecks >= start + 20, 20_000);
  const before = await status();
  t.true(before.groups[0].writer.commits >= 1, 'the cursors were saved');
  // 40 heartbeat checks of 50 ms: about 20 pulls of each peer
  await waitFor('two seconds of idle pulls', async () => (await status()).heartbeatChecks >= before.heartbeatChecks + 40, 20_000);
  const after = await status();
  t.is(after.groups[0].writer.commits, before.groups[0].writer.commits, 'no commit while nothing changed');
});

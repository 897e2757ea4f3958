// Bad peer input against running daemons: an authenticated peer (it has the
// secret) that sends garbage, a wrong codec version, truncated and oversized
// messages and messages of a stale term. Each is dropped with a log line; no
// daemon crashes, the leader stays, and replication goes on. A message that
// makes the core find its own state impossible stops the daemon instead.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';
import { PeerTransport, loadOrCreateSecret } from '../src/cluster/transport/index.ts';
import { encodeMessage } from '../src/cluster/core/index.ts';
import { Command } from '../src/protocol/index.ts';

test('garbage, wrong version, truncated, oversized and stale-term peer messages are dropped and logged; the cluster goes on', async (t) => {
  const c = await TestCluster.write();
  t.teardown(() => c.stopAll());
  await Promise.all(['n0', 'n1'].map((id) => c.startMember(id)));
  const before = await c.leader(['n0', 'n1']);

  // an impostor for n2, with the real secret, so its frames pass the transport
  const { secret } = loadOrCreateSecret(join(c.dataDir, 'cluster.secret'));
  const n2 = c.member('n2');
  const fake = new PeerTransport({
    selfId: 'n2',
    host: '127.0.0.1',
    port: n2.peerPort,
    peers: ['n0', 'n1'].map((id) => ({ id, host: '127.0.0.1', port: c.member(id).peerPort })),
    secret,
    maxFrameBytes: 32 * 1024 * 1024,
    log: () => {},
  });
  t.teardown(() => fake.stop());
  await fake.start();
  await waitFor('impostor connected to n0 and n1', () => fake.connected().length === 2);

  const heartbeat = encodeMessage({ type: 'heartbeat', term: 0, from: 'n2', sentAtMs: 0 });
  const sends: Array<[string, Buffer]> = [
    ['garbage', randomBytes(200)],
    ['wrong version', Buffer.concat([Buffer.from([99]), heartbeat.subarray(1)])],
    ['truncated', heartbeat.subarray(0, heartbeat.length - 5)],
    ['empty', Buffer.alloc(0)],
    ['bad field', encodeMessage({ type: 'pull', term: before.term, from: 'n2', reqId: -1, cursor: null })],
    ['from mismatch', encodeMessage({ type: 'heartbeat', term: before.term + 5, from: 'n0', sentAtMs: 0 })],
  ];
  for (const [, payload] of sends) for (const id of ['n0', 'n1']) fake.send(id, payload);
  // stale term: a "leader" heartbeat and a vote request from term 0 must not move anyone
  for (const id of ['n0', 'n1']) {
    fake.send(id, heartbeat);
    fake.send(id, encodeMessage({ type: 'vote', term: 0, from: 'n2' }));
  }
  await waitFor('malformed messages logged', () => (c.running.get('n0')!.output().match(/dropped a malformed peer message/g) ?? []).length >= 5);
  // oversized: past the daemons' maxPeerMessageBytes (8 MiB): the connection is dropped and logged
  fake.send('n0', Buffer.alloc(9 * 1024 * 1024, 0x7b));
  await waitFor('oversized frame logged', () => /peer connection dropped/.test(c.running.get('n0')!.output()));

  const after = await c.leader(['n0', 'n1']);
  t.is(after.id, before.id);
  t.is(after.term, before.term);
  for (const id of ['n0', 'n1']) t.not((await c.clusterStatus(id)).leaderId, 'n2');
  t.is((await c.put('n0', 'still-replicating', 'yes')).command, Command.NO_VAL);
  await c.waitForValue('n1', 'still-replicating', 'yes');
  const log = c.running.get('n0')!.output();
  t.regex(log, /unknown codec version 99/);
});

test('a core invariant violated by a peer message stops the daemon loudly (exit 70 for pm2 to restart it), not a log line', async (t) => {
  const c = await TestCluster.write();
  t.teardown(() => c.stopAll());
  await Promise.all(['n0', 'n1'].map((id) => c.startMember(id)));
  const leader = await c.leader(['n0', 'n1']);
  const { secret } = loadOrCreateSecret(join(c.dataDir, 'cluster.secret'));
  const fake = new PeerTransport({
    selfId: 'n2',
    host: '127.0.0.1',
    port: c.member('n2').peerPort,
    // the whole membership, or the handshake refuses it
    peers: ['n0', 'n1'].map((id) => ({ id, host: '127.0.0.1', port: c.member(id).peerPort })),
    secret,
    log: () => {},
  });
  t.teardown(() => fake.stop());
  await fake.start();
  await waitFor('impostor connected to the leader', () => fake.connected().includes(leader.id));
  // a second leader's heartbeat in the leader's own term: two leaders in one term
  fake.send(leader.id, encodeMessage({ type: 'heartbeat', term: leader.term, from: 'n2', sentAtMs: 0 }));
  const d = c.running.get(leader.id)!;
  const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  t.deepEqual(exit, { code: 70, signal: null }, `the daemon must exit; its log:\n${d.output().slice(-2000)}`);
  t.regex(d.output(), /cluster core invariant violated[^\n]*two leaders in term/);
});

// Faults a review found in KvClient, each with the test that failed before
// its fix: the attempt timeout, servers all in backoff, one timeout failing a
// whole connection, and flag bits (READ_THROUGH, consistency) not reachable.

import test from 'ava';
import { Command, Flag, consistencyOf, ConsistencyLevel } from '../src/protocol/index.ts';
import { KvClient, KvInputError, KvTimeoutError } from '../src/client/index.ts';
import { launch, writeDaemonConfig } from './helpers/daemon.ts';
import { scriptedServer } from './helpers/scripted-server.ts';
import { kv } from './helpers/kv-cli.ts';

const okReply = { command: Command.OK, value: Buffer.from('v') };

test('a server that does not answer costs one attempt, not the whole deadline: the call moves on (default attemptTimeoutMs)', async (t) => {
  const silent = await scriptedServer(() => null);
  const good = await scriptedServer(() => okReply);
  const c = new KvClient({ servers: [silent.address, good.address], deadlineMs: 4000 });
  try {
    const r = await c.get('k');
    t.true(r.found && r.value.toString() === 'v');
    t.is(good.received.length, 1);
  } finally {
    c.close();
    await Promise.all([silent.close(), good.close()]);
  }
});

test('when every server is in backoff, the call tries the one whose backoff ends first', async (t) => {
  const written = await writeDaemonConfig({ processors: 1 });
  const c = new KvClient({ servers: [`127.0.0.1:${written.ports[0]}`], backoffInitialMs: 600_000, backoffMaxMs: 600_000 });
  let daemon;
  try {
    // nothing listens yet: the only server fails and goes into a 10-minute backoff
    await t.throwsAsync(c.chk());
    daemon = await launch(written);
    t.true(await c.chk());
    t.deepEqual(await c.get('k'), { found: false });
  } finally {
    c.close();
    await daemon?.stop();
  }
});

test('one request timing out does not fail the other requests in flight on the same connection', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server = await scriptedServer((f) => {
    if (f.key === 'stuck') return null;
    if (f.key === 'late') return released.then(() => okReply);
    if (f.key === 'release') release();
    return okReply;
  });
  const c = new KvClient({ servers: [server.address], deadlineMs: 10_000 });
  try {
    const late = c.get('late');
    await t.throwsAsync(c.get('stuck', { deadlineMs: 100 }), { instanceOf: KvTimeoutError });
    t.true((await c.get('release')).found);
    const r = await late;
    t.true(r.found && r.value.toString() === 'v');
  } finally {
    c.close();
    await server.close();
  }
});

test('READ_THROUGH and the consistency level reach the wire, from the client options and per call', async (t) => {
  const server = await scriptedServer(() => okReply);
  const plain = new KvClient({ servers: [server.address] });
  const tuned = new KvClient({ servers: [server.address], consistency: 'majority', readThrough: true });
  try {
    await plain.get('a');
    await plain.get('b', { readThrough: true, consistency: 'all' });
    await plain.put('c', 'x', { consistency: 'one' });
    await tuned.get('d');
    await tuned.del('e');
    await tuned.get('f', { readThrough: false, consistency: 'default' });
    const flags = Object.fromEntries(server.received.map((f) => [f.key, { rt: (f.flag & Flag.READ_THROUGH) !== 0, level: consistencyOf(f.flag) }]));
    t.deepEqual(flags, {
      a: { rt: false, level: ConsistencyLevel.DEFAULT },
      b: { rt: true, level: ConsistencyLevel.ALL },
      c: { rt: false, level: ConsistencyLevel.ONE },
      d: { rt: true, level: ConsistencyLevel.MAJORITY },
      e: { rt: false, level: ConsistencyLevel.MAJORITY },
      f: { rt: false, level: ConsistencyLevel.DEFAULT },
    });
    t.throws(() => new KvClient({ servers: [server.address], consistency: 'quorum' as never }), { instanceOf: KvInputError });
  } finally {
    plain.close();
    tuned.close();
    await server.close();
  }
});

test('kv CLI: --consistency and --read-through set the flag bits; a bad level exits 2', async (t) => {
  const server = await scriptedServer(() => okReply);
  try {
    const got = await kv(['get', 'cli-k', '--servers', server.address, '--consistency', 'majority', '--read-through']);
    t.is(got.code, 0, got.stderr);
    const put = await kv(['put', 'cli-k', 'v', '--servers', server.address, '--consistency', 'all']);
    t.is(put.code, 0, put.stderr);
    const [g, p] = server.received;
    t.is(g!.flag & Flag.READ_THROUGH, Flag.READ_THROUGH);
    t.is(consistencyOf(g!.flag), ConsistencyLevel.MAJORITY);
    t.is(consistencyOf(p!.flag), ConsistencyLevel.ALL);
    const bad = await kv(['get', 'cli-k', '--servers', server.address, '--consistency', 'most']);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /--consistency must be one of one, majority, all/);
  } finally {
    await server.close();
  }
});

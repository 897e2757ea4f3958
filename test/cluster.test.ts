// The cluster with real processes: three supervisors on loopback talking over
// their peer ports. Replication, leader failover with kill -9, refill of a
// daemon whose data file is gone, deletes that stay deleted, key misses
// (background fetch and READ_THROUGH), a peer with the wrong secret, a degraded
// group retried on the leader's word, `kv status`, a skewed clock, and versions
// from a peer far ahead of local time refused.

import test from 'ava';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { TestCluster } from './helpers/cluster.ts';
import { fnv1a } from '../src/shared/key-hash.ts';
import { originOf } from '../src/shared/origin.ts';
import { waitFor } from './helpers/daemon.ts';
import { kv } from './helpers/kv-cli.ts';
import { Command, ConsistencyLevel, ErrorCode, Flag, withConsistency } from '../src/protocol/index.ts';

const value = (f: { value: Uint8Array }) => Buffer.from(f.value).toString();

test('a PUT on one daemon is read on the others; a delete stays deleted everywhere', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  for (let i = 0; i < 20; i++) t.is((await c.put(`n${i % 3}`, `k${i}`, `v${i}`)).command, Command.NO_VAL);
  for (const m of c.members) for (let i = 0; i < 20; i++) await c.waitForValue(m.id, `k${i}`, `v${i}`);

  const old = await c.del('n1', 'k3');
  t.is(old.command, Command.OK);
  t.is(value(old), 'v3');
  for (const m of c.members) await c.waitForValue(m.id, 'k3', undefined);
  // concurrent writes of one key on every daemon converge to one value everywhere
  await Promise.all(c.members.map((m) => c.put(m.id, 'contended', `from-${m.id}`)));
  const winner = await waitFor('one value of "contended" everywhere', async () => {
    const vs = await Promise.all(c.members.map(async (m) => value(await c.get(m.id, 'contended'))));
    return new Set(vs).size === 1 && vs[0].startsWith('from-') ? vs[0] : null;
  });
  t.log('winner', winner);
  // timestamps agree too: the same version everywhere
  const ts = await Promise.all(c.members.map(async (m) => (await c.get(m.id, 'contended')).valueTimestamp));
  t.is(new Set(ts).size, 1);
});

test('kill -9 of the leader: a new leader is elected, writes go on, the old leader returns and catches up', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  const first = await c.leader();
  await c.put(first.id, 'before', '1');
  for (const m of c.members) await c.waitForValue(m.id, 'before', '1');

  await c.kill(first.id);
  const second = await c.leader();
  t.not(second.id, first.id);
  t.true(second.term > first.term);
  const survivors = c.members.filter((m) => m.id !== first.id);
  for (let i = 0; i < 30; i++) t.is((await c.put(survivors[i % 2].id, `during${i}`, `d${i}`)).command, Command.NO_VAL);

  // `kv status` shows the new leader's view: the dead daemon unreachable, the survivors with their status
  const status = await waitFor('kv status to show the old leader unreachable', async () => {
    const r = await kv(['status', '--json', '--interval', '10', '--config', c.configFile]);
    const { cluster } = JSON.parse(r.stdout);
    return cluster?.self === second.id && cluster.daemons.find((d: any) => d.id === first.id)?.role === 'unreachable' ? { ...r, cluster } : null;
  });
  t.is(status.code, 0);
  t.is(status.cluster.leaderId, second.id);
  for (const m of survivors) t.true(status.cluster.daemons.find((d: any) => d.id === m.id).status.processorsAlive >= 1, m.id);
  const text = await kv(['status', '--interval', '10', '--config', c.configFile]);
  t.regex(text.stdout, new RegExp(`cluster: leader ${second.id}, term ${second.term}`));
  t.regex(text.stdout, new RegExp(`^  ${first.id}: unreachable, term`, "m"));

  await c.startMember(first.id);
  for (let i = 0; i < 30; i++) await c.waitForValue(first.id, `during${i}`, `d${i}`);
  await c.waitForValue(first.id, 'before', '1');
  // the returning daemon follows the new leader without an election (pre-vote: its old term cannot disrupt)
  const view = await waitFor('the old leader follows the new one', async () => {
    const v = await c.clusterStatus(first.id);
    return v?.role === 'follower' && v.leaderId === second.id ? v : null;
  });
  t.is(view.term, second.term);
  const again = await c.leader();
  t.deepEqual(again, second);
});

test('a daemon restarted with its data file deleted is refilled with every key', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  for (let i = 0; i < 200; i++) await c.put(`n${i % 2}`, `key${i}`, `value${i}`);
  for (let i = 0; i < 200; i++) await c.waitForValue('n2', `key${i}`, `value${i}`);
  await c.del('n0', 'key7');
  for (const m of c.members) await c.waitForValue(m.id, 'key7', undefined);

  await c.kill('n2');
  const { dbFile } = c.member('n2');
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
  await c.startMember('n2');
  for (let i = 0; i < 200; i++) await c.waitForValue('n2', `key${i}`, i === 7 ? undefined : `value${i}`);
  // and the refilled daemon's own new writes reach the others
  t.is((await c.put('n2', 'after-refill', 'yes')).command, Command.NO_VAL);
  await c.waitForValue('n0', 'after-refill', 'yes');
});

test('a delete on a daemon that has not seen the key yet wins over the older version that arrives later', async (t) => {
  const c = await TestCluster.start({ cluster: { antiEntropyIntervalMs: 300 } });
  t.teardown(() => c.stopAll());
  await c.leader();
  // an old version only in n1's file, outside its change stream: only anti-entropy spreads it
  const db = new Database(c.member('n1').dbFile);
  db.prepare('INSERT INTO data_store(key, value, timestamp, origin, deleted, seq, khash) VALUES (?, ?, ?, 1, 0, 0, ?)')
    .run('late', Buffer.from('old'), 1_000_000n, fnv1a('late'));
  db.close();
  t.is((await c.del('n0', 'late')).command, Command.NO_VAL, 'n0 has no old value to return');
  // anti-entropy brings the two versions together; the newer delete wins everywhere
  await waitFor('the tombstone on every daemon', () => Promise.all(c.members.map((m) => {
    const d = new Database(m.dbFile, { readonly: true });
    try {
      return (d.prepare("SELECT deleted FROM data_store WHERE key = 'late'").get() as { deleted: number } | undefined)?.deleted === 1;
    } finally {
      d.close();
    }
  })).then((all) => all.every(Boolean)), 15_000);
  for (const m of c.members) t.is((await c.get(m.id, 'late')).command, Command.NO_VAL, m.id);
});

test('a key missing locally: GET answers NO_VAL at once and the key is fetched in the background; READ_THROUGH waits for it', async (t) => {
  const c = await TestCluster.start({ cluster: { pullIntervalMs: 60_000, antiEntropyIntervalMs: 600_000, readThroughTimeoutMs: 3_000 } });
  t.teardown(() => c.stopAll());
  await c.leader();
  // Rows written straight into n1's file with seq 0 are outside its change
  // stream, so replication never sends them: only a key-miss fetch can.
  const db = new Database(c.member('n1').dbFile);
  const insert = db.prepare('INSERT INTO data_store(key, value, timestamp, origin, deleted, seq, khash) VALUES (?, ?, ?, 1, 0, 0, ?)');
  insert.run('hidden-a', Buffer.from('A'), 1_000_000n, fnv1a('hidden-a'));
  insert.run('hidden-b', Buffer.from('B'), 1_000_000n, fnv1a('hidden-b'));
  db.close();

  // level ONE reads the local store (MAJORITY would ask a peer and find the key at once)
  const one = withConsistency(0, ConsistencyLevel.ONE);
  t.is((await c.get('n0', 'hidden-a', one)).command, Command.NO_VAL);
  await c.waitForValue('n0', 'hidden-a', 'A');

  const through = await c.get('n2', 'hidden-b', withConsistency(Flag.READ_THROUGH, ConsistencyLevel.ONE));
  t.is(through.command, Command.OK);
  t.is(value(through), 'B');

  const nowhere = await c.get('n2', 'nobody-has-this', withConsistency(Flag.READ_THROUGH, ConsistencyLevel.ONE));
  t.is(nowhere.command, Command.NO_VAL);

  // at MAJORITY a key held only by a peer is read at once
  const quorum = await c.get('n2', 'hidden-a', withConsistency(0, ConsistencyLevel.MAJORITY));
  t.is(quorum.command, Command.OK);
});

test('a daemon with the wrong cluster secret is refused and gets no data', async (t) => {
  const c = await TestCluster.write();
  t.teardown(() => c.stopAll());
  await Promise.all(['n0', 'n1'].map((id) => c.startMember(id)));
  const intruder = await c.startMember('n2', { KV_CLUSTER_SECRET: 'ab'.repeat(32) });
  await c.leader(['n0', 'n1']);
  await c.put('n0', 'secret-key', 'x');
  await c.waitForValue('n1', 'secret-key', 'x');
  // the proof check itself refused it (a handshake timeout or a dropped connection would log another reason)
  await waitFor('refusal logged', () => /"msg":"peer (handshake refused|refused our handshake)"[^\n]*"reason":"bad-auth"/.test(c.running.get('n0')!.output()), 10_000);
  // n2's own store has nothing; at MAJORITY it is refused, as it reaches no peer
  t.is((await c.get('n2', 'secret-key', withConsistency(0, ConsistencyLevel.ONE))).command, Command.NO_VAL);
  t.is((await c.get('n2', 'secret-key')).param, BigInt(ErrorCode.NO_QUORUM));
  const view = await c.clusterStatus('n2');
  t.deepEqual(view.connectedPeers, []);
  t.deepEqual((await c.clusterStatus('n0')).connectedPeers, ['n1']);
  t.true(intruder.output().includes('"reason":"bad-auth"'), 'the intruder is told why');
});

test('a group whose supervisor gave up is marked degraded, and the leader has it retried', async (t) => {
  const c = await TestCluster.start({ processors: 2, faultInjection: true, supervision: { maxRestarts: 1, restartWindowMs: 60_000 } });
  t.teardown(() => c.stopAll());
  const leader = await c.leader();
  const follower = c.members.find((m) => m.id !== leader.id)!;
  const d = c.running.get(follower.id)!;
  const group = async () => (await d.admin({ op: 'status' })).status.groups[0];
  // two crashes within the window: more than maxRestarts=1, so the group gives up
  for (let i = 0; i < 2; i++) {
    await waitFor('a running processor in slot 0', async () => (await group()).processors.some((p: any) => p.slot === 0 && p.state === 'running'));
    t.deepEqual(await d.admin({ op: 'fault', port: follower.port, slot: 0, fault: 'crash' }), { ok: true });
    await waitFor('slot 0 gone', async () => !(await group()).processors.some((p: any) => p.slot === 0 && p.state === 'running'));
  }
  const degraded = await waitFor('group degraded', async () => (await group()).degraded);
  t.regex(degraded, /restarts within/);
  // the daemon stays up (slot 1 serves), and the leader sees the degraded group
  t.is((await c.put(follower.id, 'still-serving', 'yes')).command, Command.NO_VAL);
  await waitFor('leader sees the degraded group', async () => {
    const view = await c.clusterStatus(leader.id);
    return view.daemons.find((x: any) => x.id === follower.id)?.status?.degradedGroups.includes(String(follower.port));
  });
  // after its backoff the leader asks for a retry: both processors run again
  await waitFor('group retried', async () => {
    const g = await group();
    return g.degraded === null && g.processors.filter((p: any) => p.state === 'running').length === 2;
  }, 15_000);
  t.regex(d.output(), /leader asks to retry degraded groups/);
});

test('a daemon whose clock is off by more than the bound is flagged in the leader\'s view and logged', async (t) => {
  const c = await TestCluster.write({ faultInjection: true });
  t.teardown(() => c.stopAll());
  await c.startMember('n0');
  await c.startMember('n1');
  await c.leader(['n0', 'n1']);
  await c.startMember('n2', { KV_FAULT_CLOCK_OFFSET_MS: '5000' });
  const leader = await c.leader();
  t.not(leader.id, 'n2', 'n2 joined an established leader (pre-vote keeps it from disrupting)');
  const view = await waitFor('the clock skew in the leader\'s view', async () => {
    const v = await c.clusterStatus(leader.id);
    return v?.daemons.find((d: any) => d.id === 'n2')?.clockSkewed ? v : null;
  });
  const offset = view.daemons.find((d: any) => d.id === 'n2').clockOffsetMs;
  t.true(Math.abs(offset - 5000) < 1000, `offset ${offset} ms`);
  const other = leader.id === 'n0' ? 'n1' : 'n0';
  t.false(view.daemons.find((d: any) => d.id === other).clockSkewed, `${other}'s clock agrees`);
  await waitFor('the log line', () => /peer clock differs beyond the configured bound/.test(c.output()));
  t.pass();
});

test('a version from a peer far ahead of local time is refused (max-offset rule) and does not drag the clock', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  // n2's stream gets a version 60 s in the future, as a fast clock would make it
  const futureUs = BigInt(Date.now() + 60_000) * 1000n;
  const db = new Database(c.member('n2').dbFile, { timeout: 5_000 });
  db.transaction(() => {
    const seq = (db.prepare("SELECT value FROM meta WHERE name = 'seq'").get() as { value: number }).value + 1;
    db.prepare('INSERT INTO data_store(key, value, timestamp, origin, deleted, seq, khash) VALUES (?, ?, ?, ?, 0, ?, ?)')
      .run('future', Buffer.from('f'), futureUs, originOf('n2'), seq, fnv1a('future'));
    db.prepare("UPDATE meta SET value = ? WHERE name = 'seq'").run(seq);
  }).immediate();
  db.close();
  await c.put('n2', 'wake-up', '1');
  await waitFor('the refusal logged on n0 and n1', () =>
    ['n0', 'n1'].every((id) => /refused a version from a peer further ahead of local time[^\n]*"peer":"n2"[^\n]*"key":"future"/.test(c.running.get(id)!.output())));
  for (const id of ['n0', 'n1']) {
    t.is((await c.get(id, 'future', withConsistency(0, ConsistencyLevel.ONE))).command, Command.NO_VAL, `${id} did not apply it`);
    t.is((await c.get(id, 'future')).command, Command.NO_VAL, `nor does a quorum read at ${id} repair it in`);
    await c.put(id, `local-${id}`, 'x');
    const { valueTimestamp } = await c.get(id, `local-${id}`);
    t.true(valueTimestamp < futureUs - 30_000_000n, `${id}'s clock stayed at local time`);
  }
});

// The guarantees of the default consistency level (MAJORITY for writes and
// reads) on real daemons, as a kv739 user tests them: a read anywhere right
// after an acknowledgement (G1), also when the daemon that acknowledged is
// killed at once; the loss of one daemon's data directory (G2); and what each
// level does with a daemon down (G3 and the refusals). The partition case is
// in cluster-partition.test.ts; the same guarantees over thousands of
// schedules in cluster-sim.test.ts.

import test from 'ava';
import { rmSync } from 'node:fs';
import { Command, ConsistencyLevel, ErrorCode, withConsistency, type ConsistencyLevelNumber, type Frame } from '../src/protocol/index.ts';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

const text = (f: Frame) => Buffer.from(f.value).toString();
const flagOf = (level: ConsistencyLevelNumber) => withConsistency(0, level);

test.serial('G1: a GET on another daemon right after each acknowledged PUT or DEL returns it (1000 rounds, default level)', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  const conns = await Promise.all(c.members.map((m) => PersistentConnection.open(m.port)));
  t.teardown(() => conns.forEach((x) => x.close()));
  let stale = 0;
  const examples: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const key = `g1:${i % 50}`;
    const writer = conns[i % 3];
    const reader = conns[(i + 1 + (i % 2)) % 3];
    const del = i % 7 === 6;
    // flag 0, as every existing kv739 client sends it: the cluster's default level
    const ack = del ? await writer.send({ command: Command.DEL, key }) : await writer.send({ command: Command.PUT, key, value: Buffer.from(`v${i}`) });
    t.not(ack.command, Command.ERROR, `write ${i}: ${text(ack)}`);
    const got = await reader.send({ command: Command.GET, key });
    const ok = del ? got.command === Command.NO_VAL : got.command === Command.OK && text(got) === `v${i}`;
    if (!ok) {
      stale++;
      if (examples.length < 5) examples.push(`round ${i}: ${del ? 'DEL' : `PUT v${i}`} then GET → ${got.command} ${text(got)}`);
    }
  }
  t.is(stale, 0, examples.join('\n'));
});

test.serial('G1 after kill -9: the daemon that acknowledged is killed the moment the last ack arrives; the others return every write (20 rounds)', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  let missing = 0;
  const examples: string[] = [];
  for (let round = 0; round < 20; round++) {
    const victim = c.members[round % 3];
    const survivors = c.members.filter((m) => m !== victim);
    const conn = await PersistentConnection.open(victim.port);
    const keys = Array.from({ length: 12 }, (_x, k) => `kill:${round}:${k}`);
    const acks = await Promise.all(keys.map((key) => conn.send({ command: Command.PUT, key, value: Buffer.from(key) })));
    await c.kill(victim.id);
    conn.close();
    for (const a of acks) t.is(a.command, Command.NO_VAL);
    for (const s of survivors) {
      for (const key of keys) {
        const r = await requestOnce(s.port, { command: Command.GET, key });
        if (r.command !== Command.OK || text(r) !== key) {
          missing++;
          if (examples.length < 5) examples.push(`${key} on ${s.id}: ${r.command} ${r.command === Command.ERROR ? text(r) : ''}`);
        }
      }
    }
    await c.startMember(victim.id);
    await c.synced();
    await c.connected();
  }
  t.is(missing, 0, examples.join('\n'));
});

test.serial('G2: the data directory of the daemon that took a write burst is deleted; nothing acknowledged is lost, and it serves quorum reads while it copies', async (t) => {
  const c = await TestCluster.start();
  t.teardown(() => c.stopAll());
  await c.leader();
  const victim = c.members[0];
  const conn = await PersistentConnection.open(victim.port);
  const keys = Array.from({ length: 300 }, (_x, k) => `burst:${k}`);
  const acks = await Promise.all(keys.map((key) => conn.send({ command: Command.PUT, key, value: Buffer.from(key) })));
  t.true(acks.every((a) => a.command === Command.NO_VAL));
  await c.kill(victim.id);
  conn.close();
  for (const f of [victim.dbFile, `${victim.dbFile}-wal`, `${victim.dbFile}-shm`]) rmSync(f, { force: true });
  rmSync(c.configFile.replace(/kv\.config\.json$/, `${victim.id}.cluster.sqlite`), { force: true });
  await c.startMember(victim.id);
  // every daemon, the new one included, answers every acknowledged key at the default level
  let missing = 0;
  const examples: string[] = [];
  for (const m of c.members) {
    for (const key of keys) {
      const r = await requestOnce(m.port, { command: Command.GET, key });
      if (r.command !== Command.OK || text(r) !== key) {
        missing++;
        if (examples.length < 5) examples.push(`${key} on ${m.id}: ${r.command} ${text(r)}`);
      }
    }
  }
  t.is(missing, 0, examples.join('\n'));
  // and its own store gets everything back
  await c.synced();
  for (const key of keys) await c.waitForValue(victim.id, key, key);
});

test.serial('levels with one daemon down: MAJORITY reads and writes go on, ALL is refused with NO_QUORUM and applies nothing, ONE is local', async (t) => {
  const c = await TestCluster.start({ cluster: { peerReachableMs: 400 } });
  t.teardown(() => c.stopAll());
  await c.leader();
  const [a, b, down] = c.members;
  t.is((await requestOnce(a.port, { command: Command.PUT, key: 'all-up', value: Buffer.from('1'), flag: flagOf(ConsistencyLevel.ALL) })).command, Command.NO_VAL);
  await c.waitForValue(down.id, 'all-up', '1', 1_000);
  await c.kill(down.id);
  const put = (port: number, key: string, level: ConsistencyLevelNumber) => requestOnce(port, { command: Command.PUT, key, value: Buffer.from(key), flag: flagOf(level) });
  // until a has not heard `down` for peerReachableMs, a write at ALL is applied here and waits (then OUTCOME_UNKNOWN)
  let attempt = 0;
  const refused = await waitFor('PUT at ALL refused', async () => {
    const key = `at-all:${attempt++}`;
    const r = await put(a.port, key, ConsistencyLevel.ALL);
    t.is(r.command, Command.ERROR);
    return r.param === BigInt(ErrorCode.NO_QUORUM) ? { r, key } : null;
  });
  t.regex(text(refused.r), /not enough daemons/);
  // refused up front: nothing was applied, not even on a
  t.is((await requestOnce(a.port, { command: Command.GET, key: refused.key, flag: flagOf(ConsistencyLevel.ONE) })).command, Command.NO_VAL);
  t.is((await put(a.port, 'at-majority', ConsistencyLevel.MAJORITY)).command, Command.NO_VAL);
  t.is(text(await requestOnce(b.port, { command: Command.GET, key: 'at-majority' })), 'at-majority');
  t.is((await put(b.port, 'at-one', ConsistencyLevel.ONE)).command, Command.NO_VAL);
  t.is(text(await requestOnce(b.port, { command: Command.GET, key: 'at-one', flag: flagOf(ConsistencyLevel.ONE) })), 'at-one');
});

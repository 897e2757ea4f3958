// A real network partition: three daemons, each in its own network namespace
// with its own address, linked by veth pairs. The leader is cut off from the
// other two with blackhole routes; the majority elects a new leader and keeps
// serving at the default level (MAJORITY), the isolated daemon refuses reads
// and writes at MAJORITY with NO_QUORUM but acknowledges writes at level ONE,
// it is killed with kill -9 while cut off, and after the heal (and its
// restart) all three converge.
// At most one leader per term over the whole run, read from the daemons' logs.
// Needs root (`ip netns`); fails with that reason otherwise.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Command, ConsistencyLevel, ErrorCode, withConsistency, type ConsistencyLevelNumber, type Frame } from '../src/protocol/index.ts';
import { freePorts, waitFor } from './helpers/daemon.ts';
import { NetnsLab } from './helpers/netns.ts';
import { requestOnce } from './helpers/wire.ts';

const MAIN = new URL('../src/supervisor/main.ts', import.meta.url).pathname;
const text = (f: Frame) => Buffer.from(f.value).toString();

interface Member {
  id: string;
  child?: ChildProcess;
  /** every log line of every run of this member */
  log: string[];
}

test('a partitioned leader is replaced: the majority goes on at MAJORITY, the cut-off side refuses it (NO_QUORUM) but takes writes at ONE, and all converge after the heal', async (t) => {
  const lab = NetnsLab.create(3);
  const members: Member[] = lab.names.map((_n, i) => ({ id: `n${i}`, log: [] }));
  /** kill -9, resolved once the process is gone and its pipes are closed */
  const kill = (i: number) => new Promise<void>((resolve) => {
    const child = members[i].child!;
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('close', () => resolve());
    child.kill('SIGKILL');
  });
  t.teardown(async () => {
    await Promise.all(members.map((_m, i) => (members[i].child ? kill(i) : undefined)));
    lab.destroy();
  });

  const ports = await freePorts(9);
  const portOf = (i: number) => ports[i * 3];
  const dir = mkdtempSync(join(tmpdir(), 'kv-partition-'));
  const configFile = join(dir, 'kv.config.json');
  writeFileSync(configFile, JSON.stringify({
    daemons: members.map((m, i) => ({
      id: m.id,
      host: lab.addresses[i],
      peerPort: ports[i * 3 + 1],
      adminPort: ports[i * 3 + 2],
      groups: [{ port: portOf(i), dbFile: join(dir, `${m.id}.sqlite`), processors: 1 }],
    })),
    cluster: { heartbeatIntervalMs: 40, electionTimeoutMinMs: 250, electionTimeoutMaxMs: 500, pullIntervalMs: 100, antiEntropyIntervalMs: 1_000 },
  }));
  const secret = randomBytes(32).toString('hex');

  const start = (i: number) => new Promise<void>((resolve, reject) => {
    const m = members[i];
    const child = lab.spawn(i, process.execPath, [MAIN], {
      env: { ...process.env, KV_CONFIG: configFile, KV_DAEMON_ID: m.id, KV_CLUSTER_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    m.child = child;
    let partial = '';
    const keep = (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      m.log.push(...lines);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('message', (msg) => msg === 'ready' && resolve());
    child.once('exit', (code, signal) => reject(new Error(`${m.id} exited before ready (${code ?? signal}):\n${m.log.join('\n')}`)));
  });
  const put = (i: number, key: string, value: string, level: ConsistencyLevelNumber = ConsistencyLevel.DEFAULT) =>
    requestOnce(portOf(i), { command: Command.PUT, key, value: Buffer.from(value), flag: withConsistency(0, level) }, lab.addresses[i]);
  const get = (i: number, key: string) => requestOnce(portOf(i), { command: Command.GET, key }, lab.addresses[i]);

  /** The role each member last logged, with its term. */
  const roles = () => members.map((m) => {
    for (let k = m.log.length - 1; k >= 0; k--) {
      const match = /"msg":"cluster role: (\w+)".*?"term":(\d+)/.exec(m.log[k]);
      if (match) return { role: match[1], term: Number(match[2]) };
    }
    return { role: 'none', term: 0 };
  });
  const leaderAmong = (among: number[]) => waitFor(`a leader among ${among.map((i) => members[i].id).join(', ')}`, () => {
    const r = roles();
    const leaders = among.filter((i) => r[i].role === 'leader');
    if (leaders.length !== 1) return null;
    const term = r[leaders[0]].term;
    return among.every((i) => i === leaders[0] || (r[i].role === 'follower' && r[i].term === term)) ? { index: leaders[0], term } : null;
  }, 15_000);

  await Promise.all([0, 1, 2].map(start));
  const first = await leaderAmong([0, 1, 2]);
  for (let i = 0; i < 3; i++) t.is((await put(i, `before:${i}`, `b${i}`)).command, Command.NO_VAL);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) await waitFor(`before:${j} on ${members[i].id}`, async () => (await get(i, `before:${j}`)).command === Command.OK);

  // cut the leader off from the other two
  const isolated = first.index;
  const majority = [0, 1, 2].filter((i) => i !== isolated);
  for (const i of majority) lab.cut(isolated, i);
  const second = await leaderAmong(majority);
  t.true(second.term > first.term, `the majority elected a leader of a newer term (${first.term} → ${second.term})`);
  await waitFor('the isolated leader to step down (check-quorum)', () => roles()[isolated].role !== 'leader' || roles()[isolated].term !== first.term, 10_000);

  // the minority refuses what needs a majority, with NO_QUORUM (nothing applied), once it has not heard its peers for peerReachableMs
  await waitFor('the isolated daemon refuses a PUT at MAJORITY', async () => {
    const r = await put(isolated, 'refused', 'x');
    t.true(r.command === Command.ERROR && (r.param === BigInt(ErrorCode.NO_QUORUM) || r.param === BigInt(ErrorCode.OUTCOME_UNKNOWN)), `PUT on the cut-off side: ${r.command}/${r.param}`);
    return r.param === BigInt(ErrorCode.NO_QUORUM);
  }, 10_000);
  const refusedGet = await get(isolated, 'before:0');
  t.is(refusedGet.command, Command.ERROR, 'a GET at MAJORITY on the cut-off side is refused, not answered with possibly stale data');
  t.is(refusedGet.param, BigInt(ErrorCode.NO_QUORUM));
  // the majority serves at MAJORITY; the minority acknowledges at level ONE (one disk); one key is written on both sides
  for (let k = 0; k < 10; k++) {
    t.is((await put(isolated, `cut:iso:${k}`, `i${k}`, ConsistencyLevel.ONE)).command, Command.NO_VAL);
    t.is((await put(majority[k % 2], `cut:maj:${k}`, `m${k}`)).command, Command.NO_VAL);
  }
  t.not((await put(isolated, 'contended', 'isolated side', ConsistencyLevel.ONE)).command, Command.ERROR);
  t.not((await put(majority[0], 'contended', 'majority side')).command, Command.ERROR);
  t.is((await get(majority[1], 'cut:iso:0')).command, Command.NO_VAL, 'the majority has not seen the isolated side\'s writes');
  t.is((await get(majority[1], 'cut:maj:0')).command, Command.OK, 'a MAJORITY read on the majority side sees the majority side\'s writes');

  // the isolated daemon dies while cut off; its acknowledged writes are on its disk
  await kill(isolated);
  for (const i of majority) lab.heal(isolated, i);
  await start(isolated);

  const keys = [
    ...[0, 1, 2].map((i) => `before:${i}`),
    ...Array.from({ length: 10 }, (_x, k) => `cut:iso:${k}`),
    ...Array.from({ length: 10 }, (_x, k) => `cut:maj:${k}`),
  ];
  for (const key of keys) {
    const want = key.startsWith('before:') ? `b${key.slice(7)}` : key.startsWith('cut:iso:') ? `i${key.slice(8)}` : `m${key.slice(8)}`;
    for (let i = 0; i < 3; i++) await waitFor(`${key}=${want} on ${members[i].id}`, async () => {
      const r = await get(i, key);
      return r.command === Command.OK && text(r) === want;
    }, 15_000);
  }
  const contended = await waitFor('one version of "contended" everywhere', async () => {
    const rs = await Promise.all([0, 1, 2].map((i) => get(i, 'contended')));
    const versions = new Set(rs.map((r) => `${r.command}:${text(r)}:${r.valueTimestamp}`));
    return versions.size === 1 && rs[0].command === Command.OK ? text(rs[0]) : null;
  }, 15_000);
  t.log(`contended key settled on "${contended}" (last writer wins by version)`);
  await leaderAmong([0, 1, 2]);

  // at most one leader per term over the whole run
  const leadersByTerm = new Map<number, Set<string>>();
  for (const m of members) {
    for (const line of m.log) {
      const match = /"msg":"cluster role: leader".*?"term":(\d+)/.exec(line);
      if (match) leadersByTerm.set(Number(match[1]), (leadersByTerm.get(Number(match[1])) ?? new Set()).add(m.id));
    }
  }
  for (const [term, ids] of leadersByTerm) t.is(ids.size, 1, `term ${term} had leaders ${[...ids].join(', ')}`);
  t.true(leadersByTerm.size >= 2, 'there were at least two leaderships');
});

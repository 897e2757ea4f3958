// Backups: `kv backup` of a running daemon under write load, `kv restore` of
// it into a cluster without bringing back keys deleted after the snapshot,
// refusal of a backup older than the tombstone grace (by kv restore and by
// the daemon when the file is put in place by hand), and the grace itself in
// the tombstone purge.
import test from 'ava';
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from '../src/protocol/index.ts';
import { Store } from '../src/store/store.ts';
import { SharedClock } from '../src/store/clock.ts';
import { inlineWriter } from './helpers/inline-writer.ts';
import { SqliteReplica } from '../src/cluster/sqlite-replica.ts';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';
import { kv } from './helpers/kv-cli.ts';
import { PersistentConnection } from './helpers/wire.ts';

const HOUR_MS = 3_600_000;

test('a purge keeps tombstones younger than the grace period even when every peer has them', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-grace-'));
  const store = Store.open(join(dir, 's.sqlite'), { durability: 'normal' });
  t.teardown(() => store.close());
  const nowMs = Date.now();
  const atMs = (ms: number) => () => BigInt(ms) * 1000n;
  store.writeBatch(() => {
    store.put('old', Buffer.from('a'), atMs(nowMs - 3 * HOUR_MS));
    store.put('young', Buffer.from('b'), atMs(nowMs - 3 * HOUR_MS));
    store.del('old', atMs(nowMs - 2 * HOUR_MS));
    store.del('young', atMs(nowMs - 1000));
  });
  // the purge goes to the file's writer; here it is carried out on the spot
  const clock = new SharedClock();
  const replica = new SqliteReplica(store, clock, inlineWriter(store, clock), {
    antiEntropyIntervalMs: 1000,
    tombstoneGraceMs: HOUR_MS,
    now: () => nowMs,
    onApplied: () => {},
    onFailed: (what, error) => t.fail(`${what}: ${error}`),
  });
  const everyoneHasAll = `${replica.streamId}:${store.headSeq()}`;
  replica.purgeTombstones([everyoneHasAll, everyoneHasAll]);
  t.is(store.change('old'), undefined, 'the tombstone older than the grace is purged');
  t.is(store.change('young')?.value, null, 'the young tombstone stays');
});

test('kv backup under write load; kv restore into the cluster brings back no deleted key; too-old backups are refused', async (t) => {
  const c = await TestCluster.start({ processors: 2 });
  t.teardown(() => c.stopAll());
  await c.leader();
  const n1 = c.member('n1');
  const cli = (args: string[], env: Record<string, string> = {}) => kv([...args, '--config', c.configFile], undefined, env);

  for (let i = 0; i < 10; i++) t.is((await c.put('n1', `doomed-${i}`, 'x')).command, Command.NO_VAL);
  // writes keep coming while the backup is taken
  const load = await PersistentConnection.open(n1.port);
  let acked = 0;
  let loading = true;
  const writer = (async () => {
    while (loading) {
      await load.send({ command: Command.PUT, key: `load-${acked}`, value: Buffer.alloc(512, 1) });
      acked++;
    }
  })();
  await waitFor('some load', () => acked > 200);
  const ackedBefore = acked;
  const file = join(c.dataDir, 'n1.backup.sqlite');
  const taken = await cli(['backup', '--daemon', 'n1', file, '--json']);
  const ackedAfter = acked;
  loading = false;
  await writer;
  load.close();
  t.is(taken.code, 0, taken.stderr);
  t.true(ackedAfter > ackedBefore, 'writes went on during the backup');
  const copy = new Database(file, { readonly: true });
  const inCopy = copy.prepare("SELECT count(*) AS n FROM data_store WHERE key LIKE 'load-%'").get() as { n: number };
  t.is(copy.pragma('integrity_check', { simple: true }), 'ok');
  copy.close();
  t.true(inCopy.n >= ackedBefore, 'every write acknowledged before the backup started is in it');
  t.true(inCopy.n <= ackedAfter + 1);
  t.is((await cli(['backup', '--daemon', 'n1', file])).code, 2, 'never overwrites');

  // after the snapshot: deletes and new writes
  for (let i = 0; i < 10; i++) t.is((await c.del('n0', `doomed-${i}`)).command, Command.OK);
  await c.put('n0', 'after-backup', 'new');
  for (const id of ['n1', 'n2']) {
    await c.waitForValue(id, 'doomed-9', undefined);
    await c.waitForValue(id, 'after-backup', 'new');
  }

  t.regex((await cli(['restore', '--daemon', 'n1', file])).stderr, /is running/, 'refused while the daemon runs');
  await c.kill('n1');

  // a backup older than the grace period: refused by kv restore, and by the daemon if copied in by hand
  const stale = join(c.dataDir, 'stale.sqlite');
  copyFileSync(file, stale);
  const db = new Database(stale);
  db.prepare("UPDATE meta SET value = ? WHERE name = 'backupTakenAtMs'").run(Date.now() - 8 * 24 * HOUR_MS);
  db.close();
  const refused = await cli(['restore', '--daemon', 'n1', stale]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /older than the tombstone grace period/);
  // by hand, as the operations guide says: the file in place, the old WAL and shared-memory files gone
  copyFileSync(stale, n1.dbFile);
  for (const f of [`${n1.dbFile}-wal`, `${n1.dbFile}-shm`]) rmSync(f, { force: true });
  const started = await c.startMember('n1').catch((e: Error) => e);
  t.true(started instanceof Error);
  t.regex((started as Error).message, /older than the tombstone grace period/);

  const restored = await cli(['restore', '--daemon', 'n1', file]);
  t.is(restored.code, 0, restored.stderr);
  t.regex(restored.stdout, /new change stream/);
  await c.startMember('n1');
  await c.waitForValue('n1', 'after-backup', 'new', 15_000);
  for (let i = 0; i < 10; i++) await c.waitForValue('n1', `doomed-${i}`, undefined);
  // the restored daemon's new writes reach the others (its stream starts afresh)
  await c.put('n1', 'written-after-restore', 'yes');
  await c.waitForValue('n0', 'written-after-restore', 'yes');
  await c.waitForValue('n2', 'written-after-restore', 'yes');
  for (const id of ['n0', 'n2']) t.is((await c.get(id, 'doomed-0')).command, Command.NO_VAL, `no deleted key came back on ${id}`);
});

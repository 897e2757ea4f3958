// The SQLite store on its own: kv739 semantics, atomic batches, several
// threads writing one file, and clear errors naming the file for a missing
// directory, a corrupt or read-only file, and a full disk — with nothing
// committed lost.

import test from 'ava';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Store, StoreError } from '../src/store/store.ts';
import { SharedClock } from '../src/store/clock.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'kv-store-'));
const text = (v: { value: Uint8Array } | undefined) => (v ? Buffer.from(v.value).toString() : undefined);
const WRITER = new URL('./fixtures/store-writer.ts', import.meta.url);

test('put returns the old value, del leaves nothing readable, timestamps rise and first/last follow live keys', (t) => {
  const store = Store.open(join(dir(), 's.sqlite'), { durability: 'full' });
  t.teardown(() => store.close());
  const clock = new SharedClock();
  const stamp = (old: bigint) => clock.next(old);
  t.is(store.writeBatch(() => store.put('a', Buffer.from('1'), stamp)), undefined);
  const old = store.writeBatch(() => store.put('a', Buffer.from('2'), stamp));
  t.is(text(old), '1');
  t.is(text(store.get('a')), '2');
  t.true(store.get('a')!.timestamp > old!.timestamp);
  store.writeBatch(() => store.put('b', Buffer.from('3'), stamp));
  t.is(store.firstTimestamp(), store.getTimestamp('a'));
  t.is(store.lastTimestamp(), store.getTimestamp('b'));

  t.is(text(store.writeBatch(() => store.del('a', stamp))), '2');
  t.is(store.get('a'), undefined);
  t.is(store.getTimestamp('a'), undefined);
  t.is(store.firstTimestamp(), store.getTimestamp('b'), 'a tombstone is not a live key');
  t.true(store.maxTimestamp() > store.getTimestamp('b')!, 'but the clock floor counts it');
});

test('without keepTombstones (a lone daemon) a DEL removes the row: deletes never pile up', (t) => {
  const file = join(dir(), 's.sqlite');
  const store = Store.open(file, { durability: 'normal', keepTombstones: false });
  t.teardown(() => store.close());
  let ts = 1n;
  const stamp = () => ++ts;
  for (let i = 0; i < 100; i++) {
    store.writeBatch(() => store.put(`k${i}`, Buffer.from('v'), stamp));
    t.is(text(store.writeBatch(() => store.del(`k${i}`, stamp))), 'v');
  }
  t.is(store.writeBatch(() => store.del('never', stamp)), undefined);
  t.is(store.get('k5'), undefined);
  t.is([...store.allChanges()].length, 0, 'no rows left, tombstones included');

  const clustered = Store.open(join(dir(), 'c.sqlite'), { durability: 'normal' });
  t.teardown(() => clustered.close());
  clustered.writeBatch(() => clustered.del('never', stamp));
  t.is([...clustered.allChanges()].length, 1, 'by default a DEL leaves a tombstone, even for an unseen key');
});

test('a batch that throws applies nothing', (t) => {
  const store = Store.open(join(dir(), 's.sqlite'), { durability: 'full' });
  t.teardown(() => store.close());
  let ts = 10n;
  const stamp = () => ++ts;
  store.writeBatch(() => store.put('kept', Buffer.from('v'), stamp));
  const e = t.throws(() => store.writeBatch(() => {
    store.put('x', Buffer.from('1'), stamp);
    store.del('kept', stamp);
    throw new Error('boom');
  }), { instanceOf: StoreError });
  t.regex(e!.message, /rolled back/);
  t.is(store.get('x'), undefined);
  t.is(text(store.get('kept')), 'v');
});

// One daemon has one writer per file; other processes writing the same file are left to SQLite's lock and busy timeout.
test('four threads writing one file on SQLite\'s lock alone (as other processes would): no SQLITE_BUSY, every row present', async (t) => {
  const file = join(dir(), 'shared.sqlite');
  Store.open(file, { durability: 'normal' }).close();
  const errors = await Promise.all(['a', 'b', 'c', 'd'].map((prefix) => new Promise<string[]>((resolve, reject) => {
    const w = new Worker(WRITER, { workerData: { file, prefix: `${prefix}:`, count: 300 } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  t.deepEqual(errors.flat(), []);
  const store = Store.open(file, { durability: 'normal' });
  t.teardown(() => store.close());
  t.is(store.keyCount(), 1200);
});

test('a missing directory, a corrupt file and a read-only file each give a StoreError naming the file', (t) => {
  const missing = join(dir(), 'no', 'such', 'dir', 's.sqlite');
  const e1 = t.throws(() => Store.open(missing, { durability: 'full' }), { instanceOf: StoreError });
  t.true(e1!.message.includes(missing));
  t.regex(e1!.message, /does not exist/);

  const corrupt = join(dir(), 'corrupt.sqlite');
  writeFileSync(corrupt, Buffer.alloc(8192, 0x5a));
  const e2 = t.throws(() => Store.open(corrupt, { durability: 'full' }), { instanceOf: StoreError });
  t.true(e2!.message.includes(corrupt));
  t.regex(e2!.message, /not a valid SQLite database/);

  // a file the process may not write: by mode for a normal user; root ignores modes, so it gets the immutable attribute
  const readonly = join(dir(), 'ro.sqlite');
  Store.open(readonly, { durability: 'full' }).close();
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', readonly]);
    t.teardown(() => execFileSync('chattr', ['-i', readonly]));
  } else {
    chmodSync(readonly, 0o444);
  }
  const e3 = t.throws(() => Store.open(readonly, { durability: 'full' }), { instanceOf: StoreError });
  t.true(e3!.message.includes(readonly), e3!.message);
});

test('a full disk (the size cap) fails the write with a StoreError and loses nothing committed before', (t) => {
  const file = join(dir(), 'full.sqlite');
  const store = Store.open(file, { durability: 'full', maxStoreBytes: 256 * 1024 });
  let ts = 1n;
  const stamp = () => ++ts;
  const committed: string[] = [];
  let failure: StoreError | undefined;
  for (let i = 0; i < 10_000 && !failure; i++) {
    try {
      store.writeBatch(() => store.put(`k${i}`, Buffer.alloc(2048, i & 0xff), stamp));
      committed.push(`k${i}`);
    } catch (e) {
      failure = e as StoreError;
    }
  }
  t.true(failure instanceof StoreError, 'the store filled up');
  t.true(failure!.message.includes(file));
  t.true(failure!.sqliteCode === 'SQLITE_FULL' || /store is full/.test(failure!.message), failure!.message);
  t.true(committed.length > 10);
  store.close();
  const again = Store.open(file, { durability: 'full' });
  t.teardown(() => again.close());
  const missing = committed.filter((k) => again.get(k) === undefined);
  t.deepEqual(missing, [], 'every committed key is there after reopening');
});

test('the size cap counts the WAL: overwriting a few keys keeps file + WAL under the cap; a reader pinning the WAL makes writes fail instead of growing it', (t) => {
  const file = join(dir(), 'wal-cap.sqlite');
  const capBytes = 256 * 1024;
  const store = Store.open(file, { durability: 'normal', maxStoreBytes: capBytes });
  t.teardown(() => store.close());
  let ts = 1n;
  const stamp = () => ++ts;
  // one transaction adds at most a few pages to the WAL
  const marginBytes = 8 * 4096;
  let largest = 0;
  for (let i = 0; i < 3000; i++) {
    store.writeBatch(() => store.put(`k${i % 10}`, Buffer.alloc(2048, i & 0xff), stamp));
    largest = Math.max(largest, store.sizeBytes());
  }
  t.true(largest <= capBytes + marginBytes, `file + WAL reached ${largest} bytes with a cap of ${capBytes}`);

  // a read transaction held open keeps the WAL from being reset: the cap must then refuse writes
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM data_store').get();
  let refused: StoreError | undefined;
  for (let i = 0; i < 3000 && !refused; i++) {
    try {
      store.writeBatch(() => store.put(`k${i % 10}`, Buffer.alloc(2048, i & 0xff), stamp));
    } catch (e) {
      refused = e as StoreError;
    }
    largest = Math.max(largest, store.sizeBytes());
  }
  reader.exec('COMMIT');
  t.truthy(refused, 'writes are refused once file + WAL reach the cap');
  t.regex(refused!.message, /store is full/);
  t.true(largest <= capBytes + marginBytes, `file + WAL reached ${largest} bytes with a cap of ${capBytes}`);
  t.notThrows(() => store.writeBatch(() => store.put('after', Buffer.from('v'), stamp)), 'writes succeed again once the reader is gone');
});

// Anti-entropy buckets as contiguous key-hash ranges, and the store's index
// listing of one range: every row of a bucket exactly once, page by page,
// without a full scan; an older file gets the hash column on open.

import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bucketOf } from '../src/cluster/core/index.ts';
import { SqliteReplica } from '../src/cluster/sqlite-replica.ts';
import { WriterLink } from '../src/writer/link.ts';
import { SharedClock } from '../src/store/clock.ts';
import { bucketOfHash, fnv1a, hashRange } from '../src/shared/key-hash.ts';
import { Store } from '../src/store/store.ts';

const file = () => join(mkdtempSync(join(tmpdir(), 'kv-khash-')), 's.sqlite');
let ts = 1_000_000n;
const stamp = (old: bigint) => (ts = (ts > old ? ts : old) + 1n);

test('bucket ranges tile the hash space and agree with bucketOfHash at every edge', (t) => {
  for (const buckets of [1, 2, 3, 7, 256, 1000, 65536]) {
    let expectedLo = 0;
    for (let b = 0; b < buckets; b++) {
      const { lo, hi } = hashRange(b, buckets);
      if (lo !== expectedLo) return t.fail(`${buckets} buckets: bucket ${b} starts at ${lo}, not ${expectedLo}`);
      if (hi <= lo) return t.fail(`${buckets} buckets: bucket ${b} is empty`);
      if (bucketOfHash(lo, buckets) !== b || bucketOfHash(hi - 1, buckets) !== b) return t.fail(`${buckets} buckets: edges of ${b} map elsewhere`);
      expectedLo = hi;
    }
    t.is(expectedLo, 2 ** 32, `${buckets} buckets cover every 32-bit hash`);
  }
});

test('a bucket is listed page by page from the index: every row of the bucket once, tombstones included', (t) => {
  const store = Store.open(file(), { durability: 'normal' });
  t.teardown(() => store.close());
  const keys = Array.from({ length: 3000 }, (_, i) => `key:${i}`);
  store.writeBatch(() => {
    for (const k of keys) store.put(k, Buffer.from(k), stamp);
    for (const k of keys.slice(0, 300)) store.del(k, stamp);
  });
  // listing is a read: the writer link is never used here
  const link = new WriterLink(1000);
  t.teardown(() => link.close());
  const replica = new SqliteReplica(store, new SharedClock(), link, { antiEntropyIntervalMs: 1000, onApplied: () => {}, onFailed: () => {} });
  const buckets = 16;
  const seen = new Set<string>();
  for (let b = 0; b < buckets; b++) {
    const listed: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = replica.entriesInBucket(b, buckets, after, 37);
      listed.push(...page.entries.map((e) => e.key));
      if (!page.more) break;
      after = page.entries[page.entries.length - 1].key;
    }
    const expected = keys.filter((k) => bucketOf(k, buckets) === b);
    t.deepEqual([...listed].sort(), [...expected].sort(), `bucket ${b}`);
    for (const k of listed) seen.add(k);
  }
  t.is(seen.size, keys.length, 'all buckets together hold every key once');
  t.is(replica.entriesInBucket(0, buckets, null, 5000).entries.filter((e) => e.value === null).length,
    keys.slice(0, 300).filter((k) => bucketOf(k, buckets) === 0).length, 'tombstones are listed');
});

test('a range listing starts exactly at the range: a row hashed just below it is not included', (t) => {
  const f = file();
  Store.open(f, { durability: 'normal' }).close();
  const { lo, hi } = hashRange(1, 2);
  const db = new Database(f);
  const insert = db.prepare('INSERT INTO data_store(key, value, timestamp, seq, khash) VALUES (?, ?, 1, 1, ?)');
  insert.run('below', Buffer.from('x'), lo - 1);
  insert.run('first', Buffer.from('x'), lo);
  insert.run('last', Buffer.from('x'), hi - 1);
  db.close();
  const store = Store.open(f, { durability: 'normal' });
  t.teardown(() => store.close());
  t.deepEqual(store.changesInHashRange(lo, hi, null, 10).map((c) => c.key), ['first', 'last']);
  t.deepEqual(store.changesInHashRange(0, lo, null, 10).map((c) => c.key), ['below']);
});

test('a store file from before the key-hash column gets it on open, filled for every row', (t) => {
  const f = file();
  const old = new Database(f);
  old.exec(`CREATE TABLE data_store (key TEXT PRIMARY KEY, value BLOB, timestamp INTEGER NOT NULL,
              origin INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0);`);
  const insert = old.prepare('INSERT INTO data_store(key, value, timestamp, seq) VALUES (?, ?, ?, ?)');
  for (let i = 0; i < 100; i++) insert.run(`old:${i}`, Buffer.from('v'), 1000 + i, i + 1);
  old.close();

  const store = Store.open(f, { durability: 'normal' });
  t.teardown(() => store.close());
  const check = new Database(f, { readonly: true });
  const rows = check.prepare('SELECT key, khash FROM data_store').all() as { key: string; khash: number }[];
  check.close();
  t.is(rows.length, 100);
  t.true(rows.every((r) => r.khash === fnv1a(r.key)), 'every row has its hash');
  t.is(text(store.get('old:7')), 'v', 'and the data is intact');
});

const text = (v: { value: Uint8Array } | undefined) => (v ? Buffer.from(v.value).toString() : undefined);

// Durability normal does not fsync each commit, so what a power loss takes
// back must never be what peers already counted on: a cursor answered to a
// purge round is durable first, and a stream's head never goes back below a
// seq it served (a rolled-back head would reuse seqs its readers have passed).
// A power loss is played by keeping only what is on disk: the database file
// without its WAL (what a checkpoint has written and synced).

import test from 'ava';
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterNode, type Entry } from '../src/cluster/core/index.ts';
import { SqliteReplica } from '../src/cluster/sqlite-replica.ts';
import { SharedClock } from '../src/store/clock.ts';
import { Store } from '../src/store/store.ts';
import { inlineWriter } from './helpers/inline-writer.ts';

const entry = (key: string, ts: bigint): Entry => ({ key, value: Buffer.from('v'), ts, origin: 1 });

function open(file: string, onStreamRewound?: (cursor: string) => void) {
  const store = Store.open(file, { durability: 'normal', origin: 2 });
  const clock = new SharedClock();
  const replica = new SqliteReplica(store, clock, inlineWriter(store, clock), { antiEntropyIntervalMs: 1_000, onStreamRewound, onApplied: () => {}, onFailed: (what, error) => { throw new Error(`${what}: ${error}`); } });
  return { store, replica };
}

/** The database file alone, as after a power loss that took the unsynced WAL. */
function onDiskOnly(file: string): Database.Database {
  const copy = join(mkdtempSync(join(tmpdir(), 'kv-powerloss-')), 'copy.sqlite');
  copyFileSync(file, copy);
  return new Database(copy, { readonly: true });
}

test('durability normal: the cursor answered to a purge round, and the changes read up to it, are on disk', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kv-purge-')), 'a.sqlite');
  const { store, replica } = open(file);
  t.teardown(() => store.close());
  const node = new ClusterNode({ self: 'a', members: ['a', 'b'], hardState: { term: 1, votedFor: null }, replica, random: () => 0.5, wallClockMs: () => Date.now(), nowMs: 0 });
  replica.apply([entry('deleted-on-b', 2_000_000n)], { peer: 'b', cursor: 'bstream:41' }, 0);
  replica.apply([{ ...entry('deleted-on-b', 3_000_000n), value: null }], { peer: 'b', cursor: 'bstream:42' }, 0);
  const out = node.receive('b', { type: 'cursorRequest', reqId: 7, term: 1, from: 'b' }, 0);
  const reply = out.messages.find((m) => m.msg.type === 'cursorReply')?.msg;
  t.deepEqual(reply && 'cursor' in reply ? reply.cursor : undefined, 'bstream:42');
  const disk = onDiskOnly(file);
  t.teardown(() => disk.close());
  t.is((disk.prepare('SELECT cursor FROM peer_cursor WHERE peer = ?').get('b') as { cursor: string } | undefined)?.cursor, 'bstream:42', 'the cursor b purges on survives a power loss');
  t.is((disk.prepare('SELECT deleted FROM data_store WHERE key = ?').get('deleted-on-b') as { deleted: number } | undefined)?.deleted, 1, 'so does the tombstone it covers');
});

test('durability normal: after a power loss rolled back served changes, new writes are numbered past what readers have, so they are pulled', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kv-rewind-')), 'a.sqlite');
  let { store, replica } = open(file);
  const write = (key: string) => store.writeBatch(() => store.put(key, Buffer.from('v'), (old) => old + 1_000_000n));
  for (let i = 0; i < 5; i++) write(`early${i}`);
  const first = replica.changesSince(null, 100);
  t.is(first.entries.length, 5);
  // more writes, served without a new sync (below the floor raised by the first page)
  for (let i = 0; i < 3; i++) write(`late${i}`);
  const second = replica.changesSince(first.cursor, 100);
  t.is(second.entries.length, 3);
  const readerCursor = second.cursor;
  store.close();
  // the power loss: the last three commits (never synced) are gone, the head with them
  const db = new Database(file);
  db.prepare("DELETE FROM data_store WHERE key LIKE 'late%'").run();
  db.prepare("UPDATE meta SET value = value - 3 WHERE name = 'seq'").run();
  db.close();
  ({ store, replica } = open(file));
  t.teardown(() => store.close());
  write('after-restart');
  const page = replica.changesSince(readerCursor, 100);
  t.deepEqual(page.entries.map((e) => e.key), ['after-restart'], 'the reader gets the new write');
});

test('a cursor past the stream head (the file lost served changes beyond the floor) is detected and the reader reads the whole stream again', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kv-rewind-')), 'a.sqlite');
  const rewound: string[] = [];
  const { store, replica } = open(file, (cursor) => rewound.push(cursor));
  t.teardown(() => store.close());
  store.writeBatch(() => store.put('k', Buffer.from('v'), (old) => old + 1n));
  const ahead = `${replica.streamId}:${store.headSeq() + 50n}`;
  const page = replica.changesSince(ahead, 100);
  t.deepEqual(rewound, [ahead]);
  t.deepEqual(page.entries.map((e) => e.key), ['k']);
});

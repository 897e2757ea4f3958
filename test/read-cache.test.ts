// The processors' read cache: a read never returns a value older than a write
// acknowledged before it was sent, whichever thread or connection wrote it.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from '../src/protocol/index.ts';
import { Store } from '../src/store/store.ts';
import { adminRequest, startDaemon, waitFor } from './helpers/daemon.ts';
import { PersistentConnection } from './helpers/wire.ts';

const stamp = (() => {
  let ts = 1_000_000n;
  return (old: bigint) => (ts = (ts > old ? ts : old) + 1n);
})();
const text = (v: { value: Uint8Array } | undefined) => (v ? Buffer.from(v.value).toString() : undefined);

test('store: a cached key is served until invalidated, then read again; clearCache drops all; rolled-back reads are dropped', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'kv-cache-')), 'c.sqlite');
  const cached = Store.open(file, { durability: 'normal', readCacheEntries: 2 });
  const writer = Store.open(file, { durability: 'normal' });
  t.teardown(() => (cached.close(), writer.close()));

  t.is(cached.get('a'), undefined, 'absent, and cached as absent');
  writer.writeBatch(() => writer.put('a', Buffer.from('1'), stamp));
  t.is(cached.get('a'), undefined, 'the cached absence is served until the key is invalidated');
  cached.invalidate(['a']);
  t.is(text(cached.get('a')), '1', 'an invalidated key is read again');

  writer.writeBatch(() => writer.put('a', Buffer.from('2'), stamp));
  cached.invalidate(['other']);
  t.is(text(cached.get('a')), '1', 'only the named keys go');
  cached.clearCache();
  t.is(text(cached.get('a')), '2', 'clearCache drops everything');

  t.throws(() => cached.writeBatch(() => {
    cached.put('a', Buffer.from('rolled back'), stamp);
    t.is(text(cached.get('a')), 'rolled back', 'read inside the transaction');
    throw new Error('fail the batch');
  }));
  t.is(text(cached.get('a')), '2', 'the rolled-back value is not served from the cache');
});

test('daemon: a value acknowledged on one processor is read on every connection of every processor', async (t) => {
  const daemon = await startDaemon({ processors: 2 });
  t.teardown(() => daemon.stop());
  const conns: PersistentConnection[] = [];
  // enough connections that both processors (the kernel spreads them) have some
  await waitFor('connections on both processors', async () => {
    conns.push(await PersistentConnection.open(daemon.ports[0]));
    const status = await adminRequest(daemon.adminPort, { op: 'status' });
    const perProcessor = status.status.groups[0].processors.map((p: { connections: number }) => p.connections);
    return perProcessor.length === 2 && perProcessor.every((n: number) => n > 0);
  }, 10_000, 1);
  t.teardown(() => conns.forEach((c) => c.close()));

  for (let i = 0; i < 100; i++) {
    const writer = conns[i % conns.length];
    // every connection reads the key first, so every processor has it cached
    await Promise.all(conns.map((c) => c.send({ command: Command.GET, key: 'shared' })));
    const put = await writer.send({ command: Command.PUT, key: 'shared', value: Buffer.from(`v${i}`) });
    t.not(put.command, Command.ERROR);
    const reads = await Promise.all(conns.map((c) => c.send({ command: Command.GET, key: 'shared' })));
    const stale = reads.filter((r) => text(r) !== `v${i}`);
    if (stale.length > 0) return t.fail(`after v${i} was acknowledged, ${stale.length} of ${conns.length} connections read ${stale.map(text).join(', ')}`);
  }
  t.pass();
});

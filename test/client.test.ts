import test from 'ava';
import { createServer } from 'node:net';
import { freePorts, launch, startDaemon, waitFor } from './helpers/daemon.ts';
import { KvClient, KvInputError, KvTimeoutError, KvUnavailableError, contractCode } from '../src/client/index.ts';

test('all methods against a real daemon, and the kv739 contract codes', async (t) => {
  const d = await startDaemon({ processors: 1 });
  const c = new KvClient({ servers: [`127.0.0.1:${d.ports[0]}`] });
  try {
    t.true(await c.chk());
    const miss = await c.get('a');
    t.deepEqual(miss, { found: false });
    t.is(contractCode(miss), 1);
    t.deepEqual(await c.put('a', 'one'), { found: false });
    const old = await c.put('a', Buffer.from('two'));
    t.true(old.found && old.value.toString() === 'one');
    const got = await c.get('a');
    t.true(got.found && got.value.toString() === 'two' && got.timestamp > 0n);
    t.is(contractCode(got), 0);
    const ts = await c.getTimestamp('a');
    t.true(ts.found && got.found && ts.timestamp === got.timestamp);
    t.true((await c.lastTimestamp()).found);
    t.true((await c.firstTimestamp()).found);
    const deleted = await c.del('a');
    t.true(deleted.found && deleted.value.toString() === 'two');
    t.deepEqual(await c.get('a'), { found: false });
    // pipelining: many requests in flight on one connection, each answered by id
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => c.put(k, `v-${k}`)));
    const values = await Promise.all(keys.map((k) => c.get(k)));
    t.true(values.every((v, i) => v.found && v.value.toString() === `v-k${i}`));
  } finally {
    c.close();
    await d.stop();
  }
});

test('bad input throws KvInputError without touching the network', async (t) => {
  // nothing listens on this port: a network attempt would give KvUnavailableError
  const [port] = await freePorts(1);
  const c = new KvClient({ servers: [`127.0.0.1:${port}`] });
  await t.throwsAsync(c.get(''), { instanceOf: KvInputError });
  await t.throwsAsync(c.get('a[b]'), { instanceOf: KvInputError });
  await t.throwsAsync(c.put('x'.repeat(129), 'v'), { instanceOf: KvInputError });
  await t.throwsAsync(c.put('k', Buffer.alloc(2049)), { instanceOf: KvInputError });
  t.is(contractCode(new KvInputError(4, 'x')), -1);
  c.close();
});

test('no reachable server and close() fail fast with KvUnavailableError naming the servers', async (t) => {
  const [p1, p2] = await freePorts(2);
  const c = new KvClient({ servers: [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`] });
  const e = await t.throwsAsync(c.get('k'), { instanceOf: KvUnavailableError });
  t.true(e!.message.includes(`127.0.0.1:${p1}`) && e!.message.includes(`127.0.0.1:${p2}`));
  c.close();
  await t.throwsAsync(c.chk(), { instanceOf: KvUnavailableError, message: /closed/ });
});

test('a server that never answers hits the deadline', async (t) => {
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  const c = new KvClient({ servers: [`127.0.0.1:${port}`], deadlineMs: 200 });
  await t.throwsAsync(c.get('k'), { instanceOf: KvTimeoutError });
  c.close();
  silent.close();
});

test('fails over when one of three daemons is killed, and reconnects after it restarts', async (t) => {
  const daemons = await Promise.all([0, 1, 2].map(() => startDaemon({ processors: 1 })));
  const c = new KvClient({ servers: daemons.map((d) => `127.0.0.1:${d.ports[0]}`), deadlineMs: 3000, backoffInitialMs: 20, backoffMaxMs: 100 });
  try {
    await c.chk(); // preferred server is the first
    const first = daemons[0]!;
    const only = new KvClient({ servers: [`127.0.0.1:${first.ports[0]}`], deadlineMs: 1000, backoffInitialMs: 20, backoffMaxMs: 50 });
    t.true(await only.chk());
    let ok = 0;
    // four concurrent writers, so requests are in flight on the killed connection
    const writer = async (w: number) => {
      for (let i = 0; i < 100; i++) {
        await c.put(`f${w}-${i}`, 'v');
        ok++;
        if (w === 0 && i === 30) void first.kill('SIGKILL');
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    t.is(ok, 400);
    await first.exited;
    // restart the killed daemon on the same ports; the client goes back to it once its backoff passes
    await t.throwsAsync(only.chk(), { instanceOf: KvUnavailableError });
    daemons[0] = await launch(first);
    // the same client reconnects once its backoff passes
    t.true(await waitFor('reconnect', () => only.chk().catch(() => false)));
    only.close();
  } finally {
    c.close();
    await Promise.all(daemons.map((d) => d.stop()));
  }
});

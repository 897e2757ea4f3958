// The supervisor keeps a daemon serving: crashed and hung processors are
// replaced while the others serve, a crash loop backs off and then gives up,
// resize and graceful stop lose no request.
import test from 'ava';
import { rmSync } from 'node:fs';
import { Command, ErrorCode } from '../src/protocol/index.ts';
import { startDaemon, waitFor, type RunningDaemon } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

type Status = { groups: Array<{ port: number; restarts: number; processorsTarget: number; processors: Array<{ slot: number; state: string; threadId: number; requests: number }> }> };
const status = async (d: RunningDaemon): Promise<Status> => (await d.admin({ op: 'status' })).status;

/** Runs GET/PUT traffic in both client styles until stopped; counts replies and failures. */
function trafficOn(port: number) {
  let running = true;
  const counts = { ok: 0, failed: 0, retried: 0, failures: [] as string[] };
  const fail = (what: string) => {
    counts.failed++;
    if (counts.failures.length < 5) counts.failures.push(what);
  };
  async function oneShotLoop(n: number) {
    for (let i = 0; running; i++) {
      try {
        const r = await requestOnce(port, { command: Command.PUT, key: `oneshot-${n}-${i % 50}`, value: Buffer.from(`v${i}`) });
        if (r.command === Command.ERROR) fail(`one-shot ERROR ${r.param}`);
        else counts.ok++;
      } catch (e) {
        fail(`one-shot ${(e as Error).message}`);
      }
    }
  }
  async function persistentLoop(n: number) {
    let conn = await PersistentConnection.open(port);
    for (let i = 0; running; i++) {
      const req = { command: i % 2 ? Command.GET : Command.PUT, key: `persist-${n}-${i % 50}`, value: Buffer.from(`v${i}`) };
      for (;;) {
        try {
          const r = await conn.send(req);
          if (r.command === Command.ERROR) fail(`persistent ERROR ${r.param}`);
          else counts.ok++;
          break;
        } catch {
          // the server closed an idle or draining connection before reading this request: resend on a new one
          counts.retried++;
          conn = await PersistentConnection.open(port);
        }
      }
    }
    conn.close();
  }
  const loops = [0, 1, 2, 3].map(oneShotLoop).concat([0, 1, 2, 3].map(persistentLoop));
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

test('a crashed processor is replaced while the other keeps serving', async (t) => {
  const d = await startDaemon({ faultInjection: true, processors: 2 });
  t.teardown(() => d.kill());
  const port = d.ports[0];
  const before = await status(d);
  const traffic = trafficOn(port);
  await waitFor('traffic', () => traffic.counts.ok > 50);
  t.deepEqual(await d.admin({ op: 'fault', port, slot: 0, fault: 'crash' }), { ok: true });
  const after = await waitFor('replacement', async () => {
    const s = await status(d);
    const g = s.groups[0];
    return g.restarts === 1 && g.processors.length === 2 && g.processors.every((p) => p.state === 'running') ? s : undefined;
  });
  const okAtReplacement = traffic.counts.ok;
  await waitFor('more traffic', () => traffic.counts.ok > okAtReplacement + 50);
  await traffic.stop();
  t.not(after.groups[0].processors[0].threadId, before.groups[0].processors[0].threadId);
  t.regex(d.output(), /processor threw.*injected crash/);
  // one-shot requests in flight on the crashed thread may fail; everything else is served
  t.true(traffic.counts.ok > okAtReplacement);
  t.is((await requestOnce(port, { command: Command.CHK })).command, Command.OK);
});

test('a hung processor is detected by its heartbeat and replaced', async (t) => {
  const d = await startDaemon({ faultInjection: true, processors: 2, supervision: { heartbeatIntervalMs: 50, heartbeatMissLimit: 6 } });
  t.teardown(() => d.kill());
  const port = d.ports[0];
  t.deepEqual(await d.admin({ op: 'fault', port, slot: 1, fault: 'hang' }), { ok: true });
  await waitFor('hung processor replaced', async () => {
    const g = (await status(d)).groups[0];
    return g.restarts === 1 && g.processors.length === 2 && g.processors.every((p) => p.state === 'running');
  });
  t.regex(d.output(), /missed its heartbeats/);
  // the other processor served throughout, and the group serves now
  for (let i = 0; i < 20; i++) t.is((await requestOnce(port, { command: Command.CHK })).command, Command.OK);
});

test('a crash loop backs off exponentially, then the supervisor gives up and exits non-zero', async (t) => {
  const d = await startDaemon({
    faultInjection: true,
    processors: 1,
    supervision: { restartBackoffInitialMs: 20, restartBackoffMaxMs: 1000, maxRestarts: 4, restartWindowMs: 60_000 },
  });
  t.teardown(() => d.kill());
  // the data directory disappears: every replacement fails to open its store
  rmSync(d.dataDir, { recursive: true, force: true });
  await d.admin({ op: 'fault', port: d.ports[0], slot: 0, fault: 'crash' });
  const { code } = await d.exited;
  t.is(code, 70);
  const delays = [...d.output().matchAll(/"restartInMs":(\d+)/g)].map((m) => Number(m[1]));
  t.deepEqual(delays, [20, 40, 80, 160]);
  t.regex(d.output(), /directory .* does not exist/);
  t.regex(d.output(), /supervisor gives up.*more than 4 processor restarts/);
});

test('resize up and down under load fails no request', async (t) => {
  const d = await startDaemon({ processors: 2 });
  t.teardown(() => d.kill());
  const port = d.ports[0];
  const traffic = trafficOn(port);
  await waitFor('traffic', () => traffic.counts.ok > 100);
  t.like(await d.admin({ op: 'resize', port, processors: 4 }), { ok: true, processors: 4 });
  t.is((await status(d)).groups[0].processors.filter((p) => p.state === 'running').length, 4);
  let mark = traffic.counts.ok;
  await waitFor('traffic after growing', () => traffic.counts.ok > mark + 100);
  t.like(await d.admin({ op: 'resize', port, processors: 1 }), { ok: true, processors: 1 });
  mark = traffic.counts.ok;
  await waitFor('traffic after shrinking', () => traffic.counts.ok > mark + 100);
  t.like(await d.admin({ op: 'restart', port }), { ok: true });
  mark = traffic.counts.ok;
  await waitFor('traffic after rolling restart', () => traffic.counts.ok > mark + 100);
  const counts = await traffic.stop();
  t.log(`ok ${counts.ok}, retried on a closed idle connection ${counts.retried}`);
  t.deepEqual(counts.failures, []);
  t.is(counts.failed, 0);
  const g = (await status(d)).groups[0];
  t.is(g.processorsTarget, 1);
  t.is(g.processors.length, 1);
  t.is(g.restarts, 0, 'resize and rolling restart are not failures');
  t.like(await d.admin({ op: 'resize', port, processors: 0 }), { ok: false });
  t.like(await d.admin({ op: 'resize', port: 1, processors: 2 }), { ok: false });
});

test('SIGTERM finishes the requests in flight, then exits 0', async (t) => {
  const d = await startDaemon({ processors: 2 });
  const conn = await PersistentConnection.open(d.ports[0]);
  const replies = Array.from({ length: 300 }, (_v, i) =>
    conn.send({ command: Command.PUT, key: `inflight-${i}`, value: Buffer.from(`v${i}`) }),
  );
  process.kill(d.pid, 'SIGTERM');
  const settled = await Promise.allSettled(replies);
  const answered = settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<{ command: number }>).value);
  t.is(answered.length, 300, 'every request written before the stop is answered');
  t.true(answered.every((f) => f.command === Command.NO_VAL));
  t.deepEqual(await d.exited, { code: 0, signal: null });
  t.regex(d.output(), /daemon stopped/);
});

test('fault injection is refused unless the config enables it', async (t) => {
  const d = await startDaemon({ processors: 1 });
  t.teardown(() => d.kill());
  t.deepEqual(await d.admin({ op: 'fault', port: d.ports[0], slot: 0, fault: 'crash' }), {
    ok: false,
    error: 'fault injection is disabled in the config',
  });
  t.like(await d.admin({ op: 'nope' }), { ok: false });
  t.is((await requestOnce(d.ports[0], { command: Command.CHK })).command, Command.OK);
  t.is((await requestOnce(d.ports[0], { command: 12345 })).param, BigInt(ErrorCode.UNKNOWN_COMMAND));
});

// Hang detection judges beats missed while the supervisor was running, on a
// monotonic clock: a wall-clock step or a pause of the whole daemon (SIGSTOP,
// a VM pause) does not make healthy threads look hung.

import test from 'ava';
import { fileURLToPath } from 'node:url';
import { HeartbeatWatch } from '../src/supervisor/heartbeat.ts';
import { Command } from '../src/protocol/index.ts';
import { launch, waitFor, writeDaemonConfig, type RunningDaemon } from './helpers/daemon.ts';
import { requestOnce } from './helpers/wire.ts';

const CLOCK_STEP = fileURLToPath(new URL('./fixtures/clock-step.ts', import.meta.url));
type Status = { heartbeatChecks: number; groups: Array<{ restarts: number; writer: { restarts: number } }> };
const status = async (d: RunningDaemon): Promise<Status> => (await d.admin({ op: 'status' })).status;
// the daemons of these tests: heartbeat every 50 ms, hung after 10 missed
const MISS_LIMIT = 10;

test('HeartbeatWatch: a silent thread is hung after the limit of supervisor running time; a frozen supervisor credits one interval; a busy thread gets the busy limit', (t) => {
  const w = new HeartbeatWatch(50, 0, 0);
  let now = 0;
  let hung = false;
  for (let i = 1; i <= 10; i++) hung = w.check((now += 50), 0, 500);
  t.false(hung, '500 ms silent is not past the limit');
  t.true(w.check((now += 50), 0, 500), '550 ms silent is');

  const frozen = new HeartbeatWatch(50, 0, 0);
  t.false(frozen.check(130_000, 0, 500), 'a check 130 s late (the supervisor was stopped too) counts as one interval');
  t.is(frozen.silentForMs, 50);
  t.false(frozen.check(130_050, 1, 500), 'and the thread beats once it runs again');
  t.is(frozen.silentForMs, 0);

  const busy = new HeartbeatWatch(50, 0, 0);
  for (let i = 1; i <= 20; i++) t.false(busy.check(i * 50, 0, 500, true, 5_000), 'inside a transaction the busy limit applies');
  t.true(busy.check(21 * 50, 0, 500, false, 5_000), 'out of it, the normal limit');
});

async function daemonWith(env: Record<string, string> = {}, processors = 2): Promise<RunningDaemon> {
  const written = await writeDaemonConfig({ processors });
  return launch(written, 'test', env);
}

async function afterChecks(d: RunningDaemon, checks: number): Promise<Status> {
  const from = (await status(d)).heartbeatChecks;
  return waitFor(`${checks} more heartbeat checks`, async () => {
    const s = await status(d);
    return s.heartbeatChecks >= from + checks ? s : undefined;
  }, 30_000);
}

test('a step of the wall clock by ten minutes terminates no thread', async (t) => {
  const d = await daemonWith({ NODE_OPTIONS: `--import ${CLOCK_STEP}`, KV_TEST_CLOCK_STEP_AFTER_MS: '500', KV_TEST_CLOCK_STEP_MS: '600000' });
  t.teardown(() => d.kill());
  await waitFor('the clock step', () => d.output().includes('test clock stepped'));
  const s = await afterChecks(d, 3 * MISS_LIMIT);
  t.is(s.groups[0].restarts, 0, d.output());
  t.notRegex(d.output(), /missed its heartbeats/);
  t.is((await requestOnce(d.ports[0], { command: Command.PUT, key: 'k', value: Buffer.from('v') })).command, Command.NO_VAL);
});

test('after the whole daemon was stopped (SIGSTOP) for longer than the hang limit and continued, no healthy thread is terminated', async (t) => {
  // more threads than cores: after SIGCONT some processors run only after the supervisor's first check
  const d = await daemonWith({}, 6);
  t.teardown(() => d.kill());
  await afterChecks(d, 2);
  process.kill(d.pid, 'SIGSTOP');
  // well past heartbeatIntervalMs × heartbeatMissLimit (500 ms)
  await new Promise((r) => setTimeout(r, 2_000));
  process.kill(d.pid, 'SIGCONT');
  const s = await afterChecks(d, 3 * MISS_LIMIT);
  t.is(s.groups[0].restarts, 0, d.output());
  t.notRegex(d.output(), /missed its heartbeats/);
  t.is((await requestOnce(d.ports[0], { command: Command.PUT, key: 'k', value: Buffer.from('v') })).command, Command.NO_VAL);
});

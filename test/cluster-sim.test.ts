// Seeded schedules of the cluster core in the deterministic simulator
// (test/sim), on the daemon's real store, replica and request handler (SQLite
// in memory): 3 daemons for even seeds, 5 for odd ones. Client writes are
// acknowledged at MAJORITY and quorum reads are checked against them (G1),
// and no data-file loss of one daemon may lose an acknowledged write (G2).
// Replay one:
//   SIM_SEED=<n> npx ava test/cluster-sim.test.ts
// Run more: SIM_SEEDS=<count> npx ava test/cluster-sim.test.ts
// Trace a replay (messages, row changes, events) on stderr: SIM_TRACE=1
import test from 'ava';
import { Simulation, SimViolation, type SimOptions } from './sim/simulator.ts';

// On SQLite a schedule costs about 0.3 CPU-s (the in-memory model it replaced: ~6x less); more with SIM_SEEDS
const DEFAULT_SEEDS = 400;
const SEEDS_PER_TEST = 25;

const optionsFor = (seed: number): SimOptions => ({
  nodes: seed % 2 === 0 ? 3 : 5,
  stepMs: 5,
  chaosSteps: 700,
  maxHealSteps: 4000,
  keys: 6,
});

function runSeed(seed: number, overrides: Partial<SimOptions> = {}): string | null {
  try {
    new Simulation(seed, { ...optionsFor(seed), ...overrides }).run();
    return null;
  } catch (e) {
    const kind = e instanceof SimViolation ? 'invariant violated' : 'crashed';
    return `seed ${seed} ${kind}: ${(e as Error).stack ?? e}\nreplay: SIM_SEED=${seed} npx ava test/cluster-sim.test.ts`;
  }
}

const only = process.env.SIM_SEED;
const count = Number(process.env.SIM_SEEDS ?? DEFAULT_SEEDS);

if (only !== undefined) {
  test(`replays seed ${only}`, (t) => {
    const trace = process.env.SIM_TRACE ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    const failure = runSeed(Number(only), { trace });
    t.is(failure, null, failure ?? '');
  });
} else {
  // Chunks keep each test short (AVA's timeout counts from the last finished test).
  for (let first = 1; first <= count; first += SEEDS_PER_TEST) {
    const last = Math.min(count, first + SEEDS_PER_TEST - 1);
    test(`seeds ${first}-${last} (3 and 5 daemons) keep every invariant and converge`, (t) => {
      for (let seed = first; seed <= last; seed++) {
        const failure = runSeed(seed);
        if (failure) return t.fail(failure);
      }
      t.pass();
    });
  }

  test('a seed replays exactly: the same trace twice', (t) => {
    const traceOf = (seed: number) => {
      const lines: string[] = [];
      new Simulation(seed, { ...optionsFor(seed), trace: (l) => lines.push(l) }).run();
      return lines;
    };
    const first = traceOf(12);
    t.true(first.length > 1000);
    t.deepEqual(traceOf(12), first);
    t.notDeepEqual(traceOf(14), first);
  });

  test('the simulator finds a write acknowledged one step early (when sent to a majority, before they applied it)', (t) => {
    let found: string | null = null;
    for (let seed = 1; seed <= 400 && !found; seed++) found = runSeed(seed, { fault: 'ackOnSend' });
    t.truthy(found, 'no seed found a stale read or a lost write');
    t.regex(found ?? '', /G1|G2/);
  });

  test('the simulator finds read leases held longer than their grantors promise', (t) => {
    let found: string | null = null;
    for (let seed = 1; seed <= 300 && !found; seed++) found = runSeed(seed, { fault: 'longLeases' });
    t.truthy(found, 'no seed found a stale read');
    t.regex(found ?? '', /G1/);
  });

  test('schedules acknowledge writes at MAJORITY and answer quorum reads', (t) => {
    const r = new Simulation(4, optionsFor(4)).run();
    t.true(r.acknowledged > 50, `acknowledged ${r.acknowledged}`);
    t.true(r.reads > 20, `reads ${r.reads}`);
  });

  test('the simulator finds a vote that is not persisted before it is sent', (t) => {
    let found: string | null = null;
    for (let seed = 1; seed <= 400 && !found; seed++) found = runSeed(seed, { fault: 'skipVotePersistence' });
    t.truthy(found, 'no seed found two leaders in one term');
    t.regex(found ?? '', /two leaders|leads term/);
  });
}

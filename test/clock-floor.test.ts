// The clock floor in the cluster state file: a daemon that lost its data file
// (and whose wall clock is now behind) still issues versions above every one
// it issued before.

import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClockFloor, floorTimingFor } from '../src/cluster/clock-floor.ts';
import { HardStateFile } from '../src/cluster/hard-state.ts';
import { SharedClock, wallClockUs } from '../src/store/clock.ts';

const failOnSave = () => { throw new Error('no save failure expected'); };

function stateFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'kv-floor-')), 'state.sqlite');
}

test('the floor is saved ahead of the clock and a restarted clock starts above it, even with a slow wall clock', (t) => {
  const file = stateFile();
  const first = HardStateFile.open(file);
  const clock = new SharedClock();
  const floor = new ClockFloor(first, clock, { onSaveFailed: failOnSave });
  const issued = [clock.next(), clock.next(), clock.next()];
  t.true(floor.floor > issued[2], 'saved ahead of every issued timestamp');
  t.true(floor.floor >= wallClockUs() + 5_000_000n, 'at least the margin ahead of now');
  floor.stop();
  first.close();

  // restart: no data file, and a wall clock an hour behind
  const second = HardStateFile.open(file);
  const slow = new SharedClock(new SharedArrayBuffer(8), () => wallClockUs() - 3_600_000_000n);
  const again = new ClockFloor(second, slow, { onSaveFailed: failOnSave });
  const next = slow.next();
  t.true(next > issued[2], `${next} is above the last timestamp issued before the restart (${issued[2]})`);
  t.true(again.floor > next, 'and the floor moved ahead again');
  again.stop();
  second.close();
});

test('the floor is raised when the clock comes near it, and a failed save is reported', async (t) => {
  const file = stateFile();
  const state = HardStateFile.open(file);
  const clock = new SharedClock();
  let failure: Error | undefined;
  const floor = new ClockFloor(state, clock, { leadUs: 1_000_000n, marginUs: 900_000n, checkIntervalMs: 10, onSaveFailed: (e) => { failure = e; } });
  const before = floor.floor;
  clock.observe(before); // a peer's timestamp at the floor
  await waitUntil(() => floor.floor > before);
  t.true(floor.floor > clock.peek(), 'raised above the observed timestamp');
  const reader = HardStateFile.open(file);
  t.is(reader.clockFloor(), floor.floor, 'durable in the file');
  reader.close();

  state.close(); // the next save fails
  clock.observe(floor.floor);
  await waitUntil(() => failure !== undefined);
  t.regex(failure!.message, /clock floor/);
  t.true(failure!.message.includes(file), 'names the file');
  floor.stop();
});

test('a state file from before the clock floor is upgraded in place, keeping term and vote', (t) => {
  const file = stateFile();
  const old = new Database(file);
  old.exec(`CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, voted_for TEXT);
            INSERT INTO hard_state VALUES (0, 7, 'n2');`);
  old.close();
  const state = HardStateFile.open(file);
  t.deepEqual(state.load(), { term: 7, votedFor: 'n2' });
  t.is(state.clockFloor(), 0n);
  state.close();
});

async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error('condition not reached within 5 s');
}

test('with the daemon\'s timing a restarted clock starts within the clock-skew bound, so peers accept its versions', (t) => {
  const maxClockSkewMs = 500;
  const file = stateFile();
  const first = HardStateFile.open(file);
  const floor = new ClockFloor(first, new SharedClock(), { ...floorTimingFor(maxClockSkewMs), onSaveFailed: failOnSave });
  floor.stop();
  first.close();
  const second = HardStateFile.open(file);
  const clock = new SharedClock();
  const again = new ClockFloor(second, clock, { ...floorTimingFor(maxClockSkewMs), onSaveFailed: failOnSave });
  const aheadUs = clock.next() - wallClockUs();
  t.true(aheadUs < BigInt(maxClockSkewMs) * 1000n, `the first timestamp after the restart is ${aheadUs} µs ahead of the wall clock`);
  again.stop();
  second.close();
});

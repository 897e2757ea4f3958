// Smoke test of the gateway benchmark (bench/gateway.ts): a tiny run of one
// case direct and through the gateway; checks the JSON rows. Never asserts a
// timing or a ratio.

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GatewayRow } from '../bench/gateway.ts';

const run = promisify(execFile);
const BENCH = new URL('../bench/gateway.ts', import.meta.url).pathname;

test('the gateway benchmark measures a case direct and through the gateway', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-bench-gw-smoke-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'gateway.json');
  const { stdout } = await run(process.execPath, [BENCH, '--duration', '0.3', '--runs', '1', '--only', 'PUT hot128 persistent', '--processors', '1', '--out', out], { timeout: 60_000 });
  const { rows } = JSON.parse(readFileSync(out, 'utf8')) as { rows: GatewayRow[] };
  t.deepEqual(rows.map((r) => r.name), ['gateway PUT hot128 persistent']);
  const [row] = rows;
  t.true(row!.directOpsPerSec > 0 && row!.gatewayOpsPerSec > 0);
  t.is(row!.errors, 0);
  t.is(row!.ratio, row!.gatewayOpsPerSec / row!.directOpsPerSec);
  t.regex(stdout, /ratio gateway\/direct/);
});

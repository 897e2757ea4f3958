// Free loopback ports for tests and the benchmark.
//
// Ports are picked at random *below* the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port taken from the ephemeral range with
// listen(0) can be handed to some outgoing connection's local end after we
// release it, and a daemon restarted on "its" port (kill -9, then start again)
// would then fail with EADDRINUSE.
//
// A port handed out is also reserved for RESERVE_MS with a marker file in the
// temp directory, created exclusively, so that concurrent test processes (ava
// runs files in parallel) never hand out the same port, even while the daemon
// that owns it is down between a kill and a restart. Each candidate is bound
// once to check that it is free right now.

import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOWEST = 10_000;
const RESERVE_MS = 15 * 60_000;
const RESERVED = join(tmpdir(), 'kv-test-ports');

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > LOWEST + 1000) return low;
  } catch { /* not Linux: fall back to the IANA dynamic range's start */ }
  return 49_152;
}

/** Takes the reservation of `port` (false if another process holds a fresh one). */
function reserve(port: number): boolean {
  mkdirSync(RESERVED, { recursive: true });
  const marker = join(RESERVED, String(port));
  try {
    closeSync(openSync(marker, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(marker).mtimeMs < RESERVE_MS) return false;
      unlinkSync(marker); // stale: its run is long over
      closeSync(openSync(marker, 'wx'));
      return true;
    } catch {
      return false;
    }
  }
}

/** Drops reservations older than RESERVE_MS, so the directory does not grow without end. */
function sweep(): void {
  try {
    for (const name of readdirSync(RESERVED)) {
      const marker = join(RESERVED, name);
      try {
        if (Date.now() - statSync(marker).mtimeMs >= RESERVE_MS) unlinkSync(marker);
      } catch { /* taken or removed by another process */ }
    }
  } catch { /* no directory yet */ }
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** n distinct ports, free on `host` now, outside the ephemeral range, and handed to no other test process recently. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  if (Math.random() < 0.05) sweep();
  const high = ephemeralLow() - 1;
  const ports = new Set<number>();
  for (let attempts = 0; ports.size < n; attempts++) {
    if (attempts > 1000) throw new Error(`no ${n} free ports found between ${LOWEST} and ${high}`);
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST + 1));
    if (ports.has(port) || !(await bindable(port, host)) || !reserve(port)) continue;
    ports.add(port);
  }
  return [...ports];
}

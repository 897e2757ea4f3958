// Free loopback ports for tests and the benchmark.
//
// Ports are picked at random *below* the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port taken from the ephemeral range with
// listen(0) can be handed to some outgoing connection's local end after we
// release it, and a daemon restarted on "its" port (kill -9, then start again)
// would then fail with EADDRINUSE. Each candidate is bound once to check that
// it is free right now.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > LOWEST + 1000) return low;
  } catch { /* not Linux: fall back to the IANA dynamic range's start */ }
  return 49_152;
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** n distinct ports that are free on `host` now and outside the ephemeral range. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const high = ephemeralLow() - 1;
  const ports = new Set<number>();
  for (let attempts = 0; ports.size < n; attempts++) {
    if (attempts > 1000) throw new Error(`no ${n} free ports found between ${LOWEST} and ${high}`);
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST + 1));
    if (!ports.has(port) && await bindable(port, host)) ports.add(port);
  }
  return [...ports];
}

// Starts and stops what the benchmark measures: the real daemon
// (src/supervisor/main.ts on a temporary config) and the echo baseline, each
// in its own process on a free loopback port. Every process started here is
// remembered and stopped by PID, also on Ctrl-C and on errors.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { freePorts } from '../test/helpers/ports.ts';
import { join } from 'node:path';

const DAEMON_MAIN = new URL('../src/supervisor/main.ts', import.meta.url).pathname;
const ECHO_MAIN = new URL('./echo-server.ts', import.meta.url).pathname;
const PLAIN_ECHO_MAIN = new URL('./plain-echo.ts', import.meta.url).pathname;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export const HOST = '127.0.0.1';

export interface Server {
  pid: number;
  port: number;
  stop(): Promise<void>;
  /** kill -9, resolved when the process is gone */
  kill(): Promise<void>;
}

const started = new Map<number, ChildProcess>();


/** SIGTERM, then SIGKILL if the process has not exited within the grace time. */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      started.delete(child.pid!);
      return resolve();
    }
    const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      started.delete(child.pid!);
      resolve();
    });
    process.kill(child.pid!, 'SIGTERM');
  });
}

/** Stops everything this module started (for Ctrl-C and error paths). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started.values()].map(stopChild));
}

/** Synchronous last resort for process 'exit': SIGKILL whatever is still running. */
export function killAllNow(): void {
  for (const pid of started.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  started.clear();
}

export function launch(main: string, args: string[], env: NodeJS.ProcessEnv, execArgv: string[], what: string, port: number): Promise<Server> {
  const child = fork(main, args, { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  started.set(child.pid!, child);
  let output = '';
  const keep = (d: Buffer) => {
    // keep the tail only: enough to explain a failed start
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const server = serverOf(child, port);
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopChild(child).then(() => reject(new Error(`${what} ${why}:\n${output}`)));
    };
    const timer = setTimeout(() => fail(`did not become ready in ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    child.on('message', (m) => {
      if (m === 'ready') {
        clearTimeout(timer);
        resolve(server);
      }
    });
    child.once('exit', (code, signal) => fail(`exited before ready (code ${code}, signal ${signal})`));
  });
}

export interface DaemonOptions {
  processors: number;
  dbFile: string;
  /** where the config file is written */
  dataDir: string;
  /** write V8 CPU profiles of the daemon's threads here (--cpu-prof) */
  cpuProfDir?: string;
  /** serve Prometheus /metrics on this port */
  metricsPort?: number;
}

/** Starts the daemon with one group (one port, one SQLite file) and durability full. */
export async function startDaemon(o: DaemonOptions): Promise<Server> {
  const [port, peerPort, adminPort] = await freePorts(3);
  const config = {
    daemons: [{ id: 'bench', host: HOST, peerPort, adminPort, ...(o.metricsPort ? { metricsPort: o.metricsPort } : {}), groups: [{ port, dbFile: o.dbFile, processors: o.processors }] }],
    durability: 'full',
    allowShutdown: false,
    faultInjection: false,
    // the benchmark must not change the machine's sysctls
    setTcpMigrateReq: false,
  };
  const configFile = join(o.dataDir, `bench-p${o.processors}.config.json`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const execArgv = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  return launch(DAEMON_MAIN, [], { KV_CONFIG: configFile, KV_DAEMON_ID: 'bench' }, execArgv, `daemon (${o.processors} processors)`, port);
}

/** Starts member `id` of a cluster config (the config says durability, ports and cluster settings). */
export function startMember(configFile: string, id: string, port: number, env: NodeJS.ProcessEnv = {}): Promise<Server> {
  return launch(DAEMON_MAIN, [], { KV_CONFIG: configFile, KV_DAEMON_ID: id, ...env }, [], `daemon ${id}`, port);
}

/** Starts the echo baseline with `threads` worker threads on one port. */
export async function startEcho(threads: number): Promise<Server> {
  const [port] = await freePorts(1);
  return launch(ECHO_MAIN, [String(port), String(threads)], {}, [], `echo server (${threads} threads)`, port);
}

/** Resident memory of a process (all its threads), from /proc; 0 where /proc is not available. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Kernel clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on Linux builds). */
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU time (µs, user + system, all threads) the process has used so far,
 * from /proc/PID/stat; undefined where /proc is not available. Its growth over
 * a window is the server's own CPU cost, whoever else shares the cores.
 */
export function cpuTimeUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesized command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Starts the plain Node echo (one thread, one write per frame). */
export async function startPlainEcho(): Promise<Server> {
  const [port] = await freePorts(1);
  return launch(PLAIN_ECHO_MAIN, [String(port)], {}, [], 'plain Node echo', port);
}

/** Resolves once something accepts TCP connections on the port. */
async function listening(port: number, deadlineMs: number): Promise<boolean> {
  while (performance.now() < deadlineMs) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, HOST, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Starts a program that is not Node (the C echo, redis-server) and waits until it listens on `port`. */
export async function startProgram(command: string, args: string[], what: string, port: number): Promise<Server> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.set(child.pid!, child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(false)));
  const up = await Promise.race([listening(port, performance.now() + READY_TIMEOUT_MS), exited]);
  if (!up) {
    await stopChild(child);
    throw new Error(`${what} did not start:\n${output}`);
  }
  return serverOf(child, port);
}

/** The handle of a started server process: graceful stop, or kill -9 (resolved once it is gone). */
function serverOf(child: ChildProcess, port: number): Server {
  return {
    pid: child.pid!,
    port,
    stop: () => stopChild(child),
    kill: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      process.kill(child.pid!, 'SIGKILL');
    }),
  };
}

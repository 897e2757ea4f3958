// Starts a real daemon (supervisor process + processor threads) for a test:
// free loopback ports, a temporary data directory, readiness over the IPC
// channel, and stop/kill by PID.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { adminRequest } from '../../src/shared/admin-client.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = new URL('../../src/supervisor/main.ts', import.meta.url).pathname;

import { freePorts } from './ports.ts';

export { freePorts };

export interface DaemonOptions {
  processors?: number;
  /** number of (port, dbFile) groups */
  groups?: number;
  durability?: 'full' | 'normal';
  faultInjection?: boolean;
  allowShutdown?: boolean;
  limits?: Record<string, number>;
  supervision?: Record<string, number>;
  dataDir?: string;
  /** serve Prometheus metrics on a free port (RunningDaemon.metricsPort) */
  metrics?: boolean;
}

export interface RunningDaemon {
  pid: number;
  ports: number[];
  adminPort: number;
  metricsPort?: number;
  dataDir: string;
  configFile: string;
  dbFiles: string[];
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  admin(req: object): Promise<any>;
  /** SIGTERM and wait for the exit */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function writeDaemonConfig(options: DaemonOptions = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kv-test-'));
  mkdirSync(dataDir, { recursive: true });
  const groups = options.groups ?? 1;
  const [peerPort, adminPort, ...ports] = await freePorts(2 + groups);
  const metricsPort = options.metrics ? (await freePorts(1))[0] : undefined;
  const dbFiles = ports.map((_p, i) => join(dataDir, `g${i}.sqlite`));
  const config = {
    daemons: [
      {
        id: 'test',
        host: '127.0.0.1',
        peerPort,
        adminPort,
        ...(metricsPort ? { metricsPort } : {}),
        groups: ports.map((port, i) => ({ port, dbFile: dbFiles[i], processors: options.processors ?? 2 })),
      },
    ],
    durability: options.durability ?? 'full',
    allowShutdown: options.allowShutdown ?? true,
    faultInjection: options.faultInjection ?? false,
    limits: options.limits ?? {},
    supervision: { heartbeatIntervalMs: 50, heartbeatMissLimit: 10, restartBackoffInitialMs: 20, ...options.supervision },
  };
  const configFile = join(dataDir, 'kv.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { dataDir, configFile, ports, adminPort, dbFiles, metricsPort };
}

export async function startDaemon(options: DaemonOptions = {}): Promise<RunningDaemon> {
  const written = await writeDaemonConfig(options);
  return launch(written);
}

/** Starts a daemon process on an existing config (e.g. to restart one after kill -9). */
export function launch(
  w: { dataDir: string; configFile: string; ports: number[]; adminPort: number; dbFiles: string[]; metricsPort?: number },
  daemonId = 'test',
  env: Record<string, string> = {},
): Promise<RunningDaemon> {
  const { child, exited, output } = forkProcess(MAIN, { KV_CONFIG: w.configFile, KV_DAEMON_ID: daemonId, ...env });
  const daemon: RunningDaemon = {
    ...w,
    pid: child.pid!,
    child,
    exited,
    output,
    admin: (req) => adminRequest(w.adminPort, req),
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill(signal = 'SIGKILL') {
      child.kill(signal);
      return exited;
    },
  };
  return whenReady({ child, exited, output }, daemon, 20_000, 'daemon did not become ready in 20 s', 'daemon exited before ready');
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** Forks a Node script with an IPC channel, collecting what it prints. */
export function forkProcess(script: string, env: Record<string, string>): { child: ChildProcess; exited: Promise<Exit>; output: () => string } {
  const child = fork(script, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<Exit>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return { child, exited, output: () => out };
}

/** Resolves with `handle` when the process sends 'ready'; rejects (with its output) if it exits first or takes longer than `timeoutMs` (then it is killed). */
export function whenReady<T>(p: { child: ChildProcess; exited: Promise<Exit>; output: () => string }, handle: T, timeoutMs: number, tooLate: string, exitedFirst: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${tooLate}:\n${p.output()}`));
    }, timeoutMs);
    p.child.on('message', (m) => {
      if (m === 'ready') {
        clearTimeout(timer);
        resolve(handle);
      }
    });
    void p.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${exitedFirst} (code ${code}, signal ${signal}):\n${p.output()}`));
    });
  });
}

export { adminRequest };

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

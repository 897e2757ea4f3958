// Starts the gateway for a test: in this process on scripted or real
// daemons (the Gateway class), or as its own process on a cluster's config
// file (src/gateway/main.ts, as pm2 runs it), stopped or killed by PID.

import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { defaultGateway, type GatewayConfig } from '../../src/config/config.ts';
import { Gateway, type Backend } from '../../src/gateway/gateway.ts';
import type { Logger } from '../../src/shared/log.ts';
import { forkProcess, whenReady } from './daemon.ts';
import { freePorts } from './ports.ts';

const MAIN = new URL('../../src/gateway/main.ts', import.meta.url).pathname;

export function gatewaySettings(port: number, overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...defaultGateway, port, probeIntervalMs: 20, probeTimeoutMs: 500, reconnectBackoffMaxMs: 100, clusterViewIntervalMs: 0, ...overrides };
}

/** A Gateway in this process; `logs` collects what it logs. */
export async function inProcessGateway(backends: Backend[], overrides: Partial<GatewayConfig> = {}) {
  const [port] = await freePorts(1);
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = (level, msg, fields) => void logs.push({ level, msg, fields });
  const gateway = new Gateway(gatewaySettings(port!, overrides), backends, log);
  await gateway.start();
  return { gateway, port: port!, logs };
}

/** Adds a gateway section on a free port to a config file; returns the port. */
export async function addGatewayToConfig(configFile: string, overrides: Partial<GatewayConfig> = {}): Promise<number> {
  const [port] = await freePorts(1);
  const raw = JSON.parse(readFileSync(configFile, 'utf8'));
  raw.gateway = { port, probeIntervalMs: 20, probeTimeoutMs: 500, reconnectBackoffMaxMs: 100, clusterViewIntervalMs: 200, ...overrides };
  writeFileSync(configFile, JSON.stringify(raw, null, 2));
  return port!;
}

export interface GatewayProcess {
  pid: number;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs src/gateway/main.ts on a config file; resolves when it listens. */
export function launchGateway(configFile: string): Promise<GatewayProcess> {
  const started = forkProcess(MAIN, { KV_CONFIG: configFile });
  const { child, exited } = started;
  const proc: GatewayProcess = {
    pid: child.pid!,
    child,
    exited,
    output: started.output,
    stop: () => (child.kill('SIGTERM'), exited),
    kill: () => (child.kill('SIGKILL'), exited),
  };
  return whenReady(started, proc, 10_000, 'gateway did not listen within 10 s', 'gateway exited before listening');
}

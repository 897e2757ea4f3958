// Entry point of one daemon (one pm2 app): loads and validates the config,
// starts the supervisor, tells pm2 when ready, registers pm2 actions, and
// handles signals. Exit codes: 0 stopped on request (signal or SHUT_DOWN),
// 1 start-up failure (config or store), 70 gave up after too many restarts.

import { ConfigError, daemonById, loadConfig, localAddresses, localDaemons } from '../config/config.ts';
import { StoreError } from '../store/store.ts';
import { BackupError } from '../store/backup.ts';
import { jsonLogger, jsonReplacer } from '../shared/log.ts';
import { Supervisor } from './supervisor.ts';

/**
 * SHUT_DOWN has its own code because pm2 reports a process killed by a signal
 * (kill -9) as exit code 0: only a code of our own in stop_exit_codes tells
 * "stopped on purpose, leave it down" from "killed, bring it back".
 */
export const ExitCode = { STOPPED: 0, START_FAILED: 1, SHUT_DOWN: 10, GAVE_UP: 70 } as const;

if (process.argv.includes('--check')) {
  // `npm start` runs this first so a bad config is reported before pm2 starts anything.
  try {
    const config = loadConfig();
    console.log(`config ${config.source} is valid: ${config.daemons.map((d) => d.id).join(', ')}`);
    const here = localDaemons(config);
    if (here.length === 0) {
      console.error(`kv: no daemon of ${config.source} has a host that is an address of this machine (${localAddresses().join(', ')}); nothing to start here`);
      process.exit(ExitCode.START_FAILED);
    }
    const elsewhere = config.daemons.filter((d) => !here.includes(d));
    console.log(`this host runs ${here.map((d) => `${d.id} (${d.host})`).join(', ')}` +
      (elsewhere.length ? `; started on their own hosts: ${elsewhere.map((d) => `${d.id} (${d.host})`).join(', ')}` : ''));
    process.exit(0);
  } catch (e) {
    console.error(`kv: ${(e as Error).message}`);
    process.exit(ExitCode.START_FAILED);
  }
}

const daemonId = process.env.KV_DAEMON_ID ?? process.env.name ?? '';
const log = jsonLogger(daemonId || 'kv');

let supervisor: Supervisor;
try {
  const config = loadConfig();
  supervisor = new Supervisor(config, daemonById(config, daemonId), log, {
    onGiveUp(reason) {
      log('error', 'supervisor gives up; exiting so that pm2 restarts the daemon', { reason });
      void supervisor.stop().finally(() => process.exit(ExitCode.GAVE_UP));
    },
    onShutdownRequested(from) {
      log('info', 'SHUT_DOWN accepted; stopping the daemon', { from });
      void stopAndExit(ExitCode.SHUT_DOWN);
    },
  });
  await supervisor.start();
} catch (e) {
  const known = e instanceof ConfigError || e instanceof StoreError || e instanceof BackupError;
  log('error', `daemon cannot start: ${(e as Error).message}`, known ? {} : { stack: (e as Error).stack });
  process.exit(ExitCode.START_FAILED);
}

let stopping: Promise<void> | undefined;
function stopAndExit(code: number = ExitCode.STOPPED): Promise<void> {
  stopping ??= supervisor.stop().then(() => process.exit(code));
  return stopping;
}
process.on('SIGINT', () => void stopAndExit());
process.on('SIGTERM', () => void stopAndExit());

// pm2: ready for wait_ready, custom metrics for `pm2 monit` / `pm2 show`, and
// custom actions for `pm2 trigger <app> <action> [param]`.
if (process.send) {
  process.send('ready');
  // pm2 sets pm_id; a test or script that forks the daemon gets no pm2 traffic (nor loads @pm2/io)
  if (process.env.pm_id !== undefined) {
    const { startPm2Metrics } = await import('./pm2-metrics.ts');
    startPm2Metrics(supervisor.figures());
  }
  for (const action_name of ['status', 'resize', 'restart-processors']) {
    process.send({ type: 'axm:action', data: { action_name, arity: action_name === 'status' ? 0 : 1 } });
  }
  process.on('message', (m: unknown) => {
    const action = typeof m === 'string' ? m : (m as { msg?: string }).msg;
    const param = typeof m === 'object' && m !== null ? String((m as { opts?: unknown }).opts ?? '') : '';
    if (!action || !['status', 'resize', 'restart-processors'].includes(action)) return;
    void pm2Action(action, param).then((ret) => process.send?.({ type: 'axm:reply', data: { return: ret, action_name: action } }));
  });
}

/** `resize` takes "PORT:COUNT"; `restart-processors` takes "PORT". */
async function pm2Action(action: string, param: string): Promise<unknown> {
  try {
    if (action === 'status') return JSON.parse(JSON.stringify(supervisor.status(), jsonReplacer));
    if (action === 'resize') {
      const m = /^(\d+):(\d+)$/.exec(param.trim());
      if (!m) return { ok: false, error: 'resize takes PORT:COUNT, e.g. pm2 trigger kv-0 resize 7390:4' };
      return await supervisor.handleAdmin({ op: 'resize', port: Number(m[1]), processors: Number(m[2]) });
    }
    return await supervisor.handleAdmin({ op: 'restart', port: Number(param) });
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

// Entry point of the gateway process (pm2 app kv-gw): loads and validates the
// config, forwards to every daemon it lists (each daemon's client port; a
// cluster member has exactly one), tells pm2 when it listens, answers the pm2
// action `status`, and stops gracefully on SIGTERM/SIGINT. Exit codes: 0
// stopped, 1 start-up failure.

import { ConfigError, loadConfig } from '../config/config.ts';
import { jsonLogger } from '../shared/log.ts';
import { Gateway, type Backend } from './gateway.ts';

const log = jsonLogger('kv-gw');

let gateway: Gateway;
try {
  const config = loadConfig();
  const backends = config.daemons.map((d): Backend => ({ id: d.id, host: d.host, port: d.groups[0]!.port, adminPort: d.adminPort }));
  gateway = new Gateway(config.gateway, backends, log);
  await gateway.start();
} catch (e) {
  log('error', `gateway cannot start: ${(e as Error).message}`, e instanceof ConfigError ? {} : { stack: (e as Error).stack });
  process.exit(1);
}

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  log('info', 'gateway stopping');
  void gateway.stop().then(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

// pm2: ready for wait_ready, and `npx pm2 trigger kv-gw status` (daemons up or down, load, clients).
if (process.send) {
  process.send('ready');
  process.send({ type: 'axm:action', data: { action_name: 'status', arity: 0 } });
  process.on('message', (m: unknown) => {
    const action = typeof m === 'string' ? m : (m as { msg?: string }).msg;
    if (action === 'status') process.send?.({ type: 'axm:reply', data: { return: gateway.status(), action_name: 'status' } });
  });
}

// pm2 apps: one daemon (one supervisor process) per entry of kv.config.json
// (or the file named by KV_CONFIG). pm2 loads this file as an ES module
// because package.json says "type": "module". Full validation of the config
// happens in the daemon at start-up (and in `npm start` before pm2 runs).

import { mkdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const configFile = resolve(root, process.env.KV_CONFIG ?? 'kv.config.json');
const config = JSON.parse(readFileSync(configFile, 'utf8'));

// The default deployment keeps its SQLite files under ./data; create the
// directories the config names so a fresh clone starts.
for (const d of config.daemons ?? []) {
  for (const g of d.groups ?? []) mkdirSync(dirname(resolve(dirname(configFile), g.dbFile)), { recursive: true });
}

// A config can list the daemons of several hosts: this machine starts those
// whose host is one of its addresses (the rule of localDaemons in
// src/config/config.ts, which `npm start` prints; written out here because pm2
// may load this file with a Node that cannot import TypeScript).
const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
const isLocal = (host = '127.0.0.1') =>
  host.startsWith('127.') || host === '::1' || host === 'localhost' || host === '0.0.0.0' || host === '::' || addresses.includes(host);

// pm2 require()s this ES module and reads `apps` off its namespace, so `apps`
// is a named export (the default export serves tools that import it).
export const apps = (config.daemons ?? []).filter((d) => isLocal(d.host)).map((d) => ({
  name: d.id,
  script: join(root, 'src/supervisor/main.ts'),
  cwd: root,
  // Node 24 from the `node` npm package: type stripping and reusePort
  interpreter: join(root, 'node_modules/.bin/node'),
  exec_mode: 'fork',
  instances: 1,
  env: { KV_CONFIG: configFile, KV_DAEMON_ID: d.id },
  // the supervisor sends 'ready' once its processors listen
  wait_ready: true,
  listen_timeout: 20000,
  // SIGTERM → drain in-flight requests and close the stores; keep above drainTimeoutMs
  kill_timeout: 5000,
  // exit 10 = stopped by a SHUT_DOWN request: do not restart. Not 0: pm2 reports a
  // process killed by a signal (kill -9) as code 0, and that one must come back.
  stop_exit_codes: [10],
  exp_backoff_restart_delay: 200,
  min_uptime: 5000,
  max_restarts: 15,
  autorestart: true,
  merge_logs: true,
}));

export default { apps };

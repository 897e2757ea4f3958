#!/usr/bin/env node
// `kv`: the store from a shell. Data commands go through src/client; status
// and workers talk to each daemon's admin port (NDJSON, src/supervisor/admin.ts).

import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { adminRequest } from '../shared/admin-client.ts';
import { ConfigError, hasRemoteAdmin, loadConfig, type Config, type DaemonConfig } from '../config/config.ts';
import { parseSecret } from '../cluster/transport/index.ts';
import { BackupError, backupStore, restoreStore } from '../store/backup.ts';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KvClient, KvInputError, KvServerError, KvUnavailableError, type ValueResult } from '../client/index.ts';
import { ExitCode, exitCodeHelp } from './exit-codes.ts';

const DEFAULT_SERVERS = ['127.0.0.1:7390', '127.0.0.1:7391', '127.0.0.1:7392'];
const DEFAULT_ADMIN_PORTS = [7590, 7591, 7592];

const help = `Usage: kv <command> [options]

Commands:
  get KEY                  print the value of KEY
  put KEY [VALUE|-]        store VALUE (read from stdin when omitted or -); prints the old value
  del KEY                  delete KEY; prints the old value
  chk                      check that a server answers
  status                   per daemon and port: processors, heartbeat age, restarts, requests/s, connections, store size
  workers --port P --count N [--daemon ID]   resize the processor group on port P (of daemon ID when several serve P)
  backup --daemon ID FILE  consistent online copy of daemon ID's store to FILE (run on that daemon's host)
  restore --daemon ID FILE put backup FILE in place as daemon ID's store (the daemon must be stopped;
                           a backup older than cluster.tombstoneGraceMs is refused)
  bench [ARGS...]          run the benchmark (node bench/run.ts ARGS)

Options:
  --servers H:P,H:P        servers to use (else KV_SERVERS, else the ports in the config, else ${DEFAULT_SERVERS.join(',')})
  --config FILE            daemon config for admin ports and servers (else KV_CONFIG, else ./kv.config.json);
                           daemons whose host is not 127.0.0.1 are asked at host:adminPort with the cluster
                           secret (KV_CLUSTER_SECRET, else cluster.secretFile)
  --deadline MS            per-request deadline (default 3000)
  --interval MS            status: time between the two samples for requests/s (default 1000)
  --json                   machine-readable output
  -h, --help               this help

${exitCodeHelp}
`;

class UsageError extends Error {}

/** The daemons' config through src/config (validated as the daemons see it); undefined when there is none. */
function loadCliConfig(file: string | undefined): Config | undefined {
  const path = file ?? process.env.KV_CONFIG ?? (existsSync('kv.config.json') ? 'kv.config.json' : undefined);
  if (!path) return undefined;
  try {
    return loadConfig({ ...process.env, KV_CONFIG: path });
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`${e.message}; pass --config FILE`);
    throw e;
  }
}

interface AdminTarget {
  id: string;
  host: string;
  port: number;
  /** the daemon listens at an address other machines reach: requests are authenticated with the cluster secret */
  secret?: () => Buffer;
}

/** KV_CLUSTER_SECRET, else the config's secret file (read only: kv never creates one). */
function cliSecret(config: Config): Buffer {
  if (process.env.KV_CLUSTER_SECRET) return parseSecret(process.env.KV_CLUSTER_SECRET, 'KV_CLUSTER_SECRET');
  let text: string;
  try {
    text = readFileSync(config.cluster.secretFile, 'utf8');
  } catch (e) {
    throw new Error(`admin requests to other hosts need the cluster secret: cannot read ${config.cluster.secretFile} (${(e as Error).message}); copy it from a daemon's host or set KV_CLUSTER_SECRET`);
  }
  return parseSecret(text, config.cluster.secretFile);
}

function adminTarget(config: Config, d: DaemonConfig): AdminTarget {
  if (!hasRemoteAdmin(d.host)) return { id: d.id, host: '127.0.0.1', port: d.adminPort };
  let secret: Buffer | undefined;
  return { id: d.id, host: d.host, port: d.adminPort, secret: () => (secret ??= cliSecret(config)) };
}

function ask(t: AdminTarget, req: object, timeoutMs = 5000): Promise<any> {
  let secret: Buffer | undefined;
  try {
    secret = t.secret?.();
  } catch (e) {
    return Promise.reject(e);
  }
  return adminRequest(t.port, req, t.host, timeoutMs, secret);
}

function serverList(flag: string | undefined, configFile: string | undefined): string[] {
  const list = flag ?? process.env.KV_SERVERS;
  if (list) return list.split(',').map((s) => s.trim()).filter(Boolean);
  const config = loadCliConfig(configFile);
  if (config) return config.daemons.flatMap((d) => d.groups.map((g) => `${d.host}:${g.port}`));
  return DEFAULT_SERVERS;
}


const out = (s: string) => process.stdout.write(s + '\n');
const json = (v: unknown) => out(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));

function printValue(r: ValueResult, asJson: boolean, what: string): number {
  if (asJson) {
    json(r.found ? { found: true, value: r.value.toString('utf8'), timestamp: r.timestamp } : { found: false });
  } else if (r.found) {
    process.stdout.write(r.value);
    process.stdout.write('\n');
  } else {
    process.stderr.write(`${what}\n`);
  }
  return r.found ? ExitCode.OK : ExitCode.NOT_FOUND;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function needArgs(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new UsageError(`missing argument: kv ${usage}`);
}

async function status(values: Opts): Promise<number> {
  const config = loadCliConfig(values.config);
  const targets: AdminTarget[] = config
    ? config.daemons.map((d) => adminTarget(config, d))
    : DEFAULT_ADMIN_PORTS.map((port) => ({ id: `admin:${port}`, host: '127.0.0.1', port }));
  const intervalMs = Number(values.interval ?? 1000);
  const sample = () => Promise.all(targets.map((t) => ask(t, { op: 'status' }).catch((e: Error) => e)));
  const first = await sample();
  await new Promise((r) => setTimeout(r, intervalMs));
  const second = await sample();
  const rows: Record<string, unknown>[] = [];
  let reachable = 0;
  targets.forEach((t, i) => {
    const a = first[i], b = second[i];
    if (b instanceof Error || !b.ok) {
      rows.push({ daemon: t.id, error: b instanceof Error ? b.message : b.error });
      return;
    }
    reachable++;
    for (const g of b.status.groups) {
      const before = a instanceof Error ? undefined : a.status.groups.find((x: any) => x.port === g.port);
      const reqs = (gs: any) => gs.processors.reduce((n: number, p: any) => n + p.requests, 0);
      rows.push({
        daemon: b.status.daemon,
        port: g.port,
        processorsAlive: g.processors.filter((p: any) => p.state === 'running').length,
        processorsTarget: g.processorsTarget,
        heartbeatAgeMs: Math.max(0, ...g.processors.map((p: any) => p.heartbeatAgeMs)),
        restarts: g.restarts,
        requestsPerSecond: before ? Math.max(0, Math.round(((reqs(g) - reqs(before)) * 1000) / intervalMs)) : null,
        connections: g.processors.reduce((n: number, p: any) => n + p.connections, 0),
        storeBytes: g.storeBytes,
      });
    }
  });
  const cluster = clusterView(second.filter((r) => !(r instanceof Error) && r.ok).map((r) => r.status.cluster));
  if (values.json) json({ ports: rows, cluster });
  else {
    for (const r of rows) {
      if ('error' in r) out(`${r.daemon}: unreachable (${r.error})`);
      else {
        out(`${r.daemon} port ${r.port}: processors ${r.processorsAlive}/${r.processorsTarget}, heartbeat age ${r.heartbeatAgeMs} ms, ` +
          `restarts ${r.restarts}, ${r.requestsPerSecond ?? '?'} req/s, ${r.connections} connections, store ${((r.storeBytes as number) / 1048576).toFixed(1)} MiB`);
      }
    }
    if (cluster) printCluster(cluster);
  }
  return reachable === 0 ? ExitCode.UNREACHABLE : ExitCode.OK;
}

/** The leader's view when a reachable daemon is the leader (it has every daemon's status), else any daemon's own view. */
function clusterView(views: any[]): any | null {
  const present = views.filter(Boolean);
  return present.find((v) => v.role === 'leader') ?? present[0] ?? null;
}

function printCluster(view: any): void {
  out(`cluster: leader ${view.leaderId ?? 'none known'}, term ${view.term} (view of ${view.self}, a ${view.role}; connected peers: ${view.connectedPeers.join(', ') || 'none'})`);
  for (const d of view.daemons) {
    const s = d.status;
    const parts = [
      d.role,
      `term ${d.term ?? '?'}`,
      `seen ${d.lastSeenAgoMs === null ? 'never' : `${Math.round(d.lastSeenAgoMs)} ms ago`}`,
      s ? `processors ${s.processorsAlive}, restarts ${s.restarts}, keys ${s.keyCount}` : 'no status yet',
      s?.degradedGroups.length ? `DEGRADED ports ${s.degradedGroups.join(', ')}` : '',
      d.unpulledChanges === null ? '' : `unpulled changes ${d.unpulledChanges}`,
      d.clockOffsetMs === null ? '' : `clock offset ${Math.round(d.clockOffsetMs)} ms${d.clockSkewed ? ' (SKEWED)' : ''}`,
    ];
    out(`  ${d.id}: ${parts.filter(Boolean).join(', ')}`);
  }
}

/** The store file of --daemon ID (and --port P when the daemon has several groups). */
function storeOf(values: Opts, command: string): { config: Config; daemon: DaemonConfig; dbFile: string } {
  const config = loadCliConfig(values.config);
  if (!config) throw new UsageError(`${command} needs the daemons' config: --config FILE, KV_CONFIG or ./kv.config.json`);
  if (!values.daemon) throw new UsageError(`${command} needs --daemon ID (one of ${config.daemons.map((d) => d.id).join(', ')})`);
  const daemon = config.daemons.find((d) => d.id === values.daemon);
  if (!daemon) throw new UsageError(`no daemon ${values.daemon} in ${config.source} (known: ${config.daemons.map((d) => d.id).join(', ')})`);
  const groups = values.port ? daemon.groups.filter((g) => g.port === Number(values.port)) : daemon.groups;
  if (groups.length !== 1) throw new UsageError(`daemon ${daemon.id} has groups on ports ${daemon.groups.map((g) => g.port).join(', ')}: pick one with --port P`);
  return { config, daemon, dbFile: groups[0].dbFile };
}

async function backup(values: Opts, args: string[]): Promise<number> {
  needArgs(args, 1, 'backup --daemon ID FILE');
  const { daemon, dbFile } = storeOf(values, 'backup');
  const r = await backupStore(dbFile, args[0]!);
  if (values.json) json({ ok: true, daemon: daemon.id, file: args[0], takenAt: new Date(r.takenAtMs).toISOString(), bytes: r.bytes });
  else out(`backup of ${daemon.id} (${dbFile}) in ${args[0]}: ${(r.bytes / 1048576).toFixed(1)} MiB, snapshot of ${new Date(r.takenAtMs).toISOString()}`);
  return ExitCode.OK;
}

async function restore(values: Opts, args: string[]): Promise<number> {
  needArgs(args, 1, 'restore --daemon ID FILE');
  const { config, daemon, dbFile } = storeOf(values, 'restore');
  const running = await adminRequest(daemon.adminPort, { op: 'status' }, '127.0.0.1', 1000).catch(() => null);
  if (running?.ok) throw new UsageError(`daemon ${daemon.id} is running (pid ${running.status.pid}): stop it first (npx pm2 stop ${daemon.id})`);
  const clustered = config.daemons.length > 1;
  const r = await restoreStore(args[0]!, dbFile, clustered ? config.cluster.tombstoneGraceMs : null);
  const msg = `restored ${args[0]} (snapshot of ${new Date(r.takenAtMs).toISOString()}) as ${dbFile}; start ${daemon.id}` +
    (clustered ? ': it gets a new change stream and pulls from its peers what changed since' : '');
  if (values.json) json({ ok: true, daemon: daemon.id, dbFile, takenAt: new Date(r.takenAtMs).toISOString() });
  else out(msg);
  return ExitCode.OK;
}

async function workers(values: Opts): Promise<number> {
  const port = Number(values.port), count = Number(values.count);
  if (!Number.isInteger(port) || !Number.isInteger(count) || count < 1) {
    throw new UsageError('workers needs --port P (a group port) and --count N (processors, >= 1)');
  }
  const config = loadCliConfig(values.config);
  const serving = config?.daemons.filter((x) => x.groups.some((g) => g.port === port) && (!values.daemon || x.id === values.daemon)) ?? [];
  if (config && serving.length === 0) throw new UsageError(`no daemon${values.daemon ? ` ${values.daemon}` : ''} in the config serves port ${port}`);
  if (serving.length > 1) throw new UsageError(`port ${port} is served by ${serving.map((x) => x.id).join(', ')}: say which with --daemon ID`);
  const d = serving[0];
  const adminPort = d?.adminPort ?? DEFAULT_ADMIN_PORTS[DEFAULT_SERVERS.findIndex((s) => s.endsWith(`:${port}`))];
  if (adminPort === undefined) throw new UsageError(`cannot tell which admin port serves ${port}; pass --config FILE`);
  const target = config && d ? adminTarget(config, d) : { id: `admin:${adminPort}`, host: '127.0.0.1', port: adminPort };
  const reply = await ask(target, { op: 'resize', port, processors: count }, 60_000);
  if (values.json) json(reply);
  else if (reply.ok) out(`port ${port}: ${count} processors`);
  if (!reply.ok) {
    process.stderr.write(`resize refused: ${reply.error}\n`);
    return ExitCode.SERVER_ERROR;
  }
  return ExitCode.OK;
}

type Opts = { daemon?: string; servers?: string; config?: string; deadline?: string; interval?: string; port?: string; count?: string; json?: boolean; help?: boolean };

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'bench') {
    const run = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
    return spawnSync(process.execPath, [run, ...argv.slice(1)], { stdio: 'inherit' }).status ?? ExitCode.SERVER_ERROR;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        servers: { type: 'string' },
        daemon: { type: 'string' },
        config: { type: 'string' },
        deadline: { type: 'string' },
        interval: { type: 'string' },
        port: { type: 'string' },
        count: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}; see kv --help`);
  }
  const values = parsed.values as Opts;
  const [command, ...args] = parsed.positionals;
  if (values.help || !command) {
    process.stdout.write(help);
    return command || values.help ? ExitCode.OK : ExitCode.BAD_INPUT;
  }
  if (command === 'status') return status(values);
  if (command === 'workers') return workers(values);
  if (command === 'backup') return backup(values, args);
  if (command === 'restore') return restore(values, args);
  if (!['get', 'put', 'del', 'chk'].includes(command)) throw new UsageError(`unknown command "${command}"; see kv --help`);
  const deadlineMs = Number(values.deadline ?? 3000);
  if (!(deadlineMs > 0)) throw new UsageError('--deadline must be a positive number of milliseconds');
  const client = new KvClient({ servers: serverList(values.servers, values.config), deadlineMs, connectTimeoutMs: Math.min(1000, deadlineMs) });
  try {
    switch (command) {
      case 'get':
        needArgs(args, 1, 'get KEY');
        return printValue(await client.get(args[0]!), !!values.json, `not found: ${args[0]}`);
      case 'put': {
        needArgs(args, 1, 'put KEY [VALUE|-]');
        const value = args[1] === undefined || args[1] === '-' ? await readStdin() : args[1];
        const old = await client.put(args[0]!, value);
        if (values.json) json(old.found ? { ok: true, old: { value: old.value.toString('utf8'), timestamp: old.timestamp } } : { ok: true, old: null });
        else if (old.found) printValue(old, false, '');
        return ExitCode.OK;
      }
      case 'del':
        needArgs(args, 1, 'del KEY');
        return printValue(await client.del(args[0]!), !!values.json, `not found: ${args[0]}`);
      default:
        await client.chk();
        if (values.json) json({ ok: true });
        else out('ok');
        return ExitCode.OK;
    }
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    if (e instanceof UsageError || e instanceof KvInputError || e instanceof BackupError) {
      process.stderr.write(`kv: ${e.message}\n`);
      process.exitCode = ExitCode.BAD_INPUT;
    } else if (e instanceof KvUnavailableError) {
      process.stderr.write(`kv: ${e.message}\nStart the daemons (npm start) or point kv at them with --servers host:port,...\n`);
      process.exitCode = ExitCode.UNREACHABLE;
    } else if (e instanceof KvServerError) {
      process.stderr.write(`kv: ${e.message}\n`);
      process.exitCode = ExitCode.SERVER_ERROR;
    } else if (/admin port/.test(e.message)) {
      process.stderr.write(`kv: ${e.message}\nIs the daemon running? Check --config.\n`);
      process.exitCode = ExitCode.UNREACHABLE;
    } else {
      process.stderr.write(`kv: unexpected error: ${e.stack}\n`);
      process.exitCode = ExitCode.SERVER_ERROR;
    }
  },
);

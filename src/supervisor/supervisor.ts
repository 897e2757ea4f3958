// The daemon's main thread: owns the processor groups of one daemon, the
// shared clock, the heartbeat watch and the admin interface, and stops
// everything gracefully.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { hasRemoteAdmin, type Config, type DaemonConfig } from '../config/config.ts';
import { Store } from '../store/store.ts';
import { SharedClock } from '../store/clock.ts';
import { ClockFloor, floorTimingFor } from '../cluster/clock-floor.ts';
import { HardStateFile } from '../cluster/hard-state.ts';
import { ProcessorGroup, type GroupEvents, type GroupStatus } from './group.ts';
import { ClusterMember } from '../cluster/member.ts';
import { startAdminServer, type AdminReply, type AdminRequest } from './admin.ts';
import type { Logger } from '../shared/log.ts';
import type { DaemonFigures } from '../metrics/exporter.ts';
import type { MetricsSnapshot } from '../metrics/counters.ts';
import { BackgroundJobs } from '../cluster/jobs/pool.ts';
import { adoptRestoredStore } from '../store/backup.ts';
import { loadOrCreateSecret, parseSecret } from '../cluster/transport/index.ts';

/** A new data file gets this long at start-up to copy its peers before the daemon says it is ready (pm2's wait_ready). */
const STARTUP_SYNC_WAIT_MS = 3_000;

export interface DaemonStatus {
  daemon: string;
  pid: number;
  uptimeMs: number;
  /** heartbeat checks the supervisor has made (each judges every thread's beats) */
  heartbeatChecks: number;
  groups: Array<GroupStatus & { storeBytes: number }>;
  /** this daemon's view of the cluster (the leader's view has every daemon); absent for a lone daemon */
  cluster?: ReturnType<ClusterMember['view']>;
}

export interface SupervisorEvents {
  /** the supervisor gave up (restart intensity exceeded); the process should exit non-zero */
  onGiveUp(reason: string): void;
  /** a client sent an accepted SHUT_DOWN */
  onShutdownRequested(from: string): void;
}

export class Supervisor {
  readonly config: Config;
  readonly daemon: DaemonConfig;
  private readonly log: Logger;
  private readonly events: SupervisorEvents;
  private readonly clock = new SharedClock();
  private readonly groups: ProcessorGroup[] = [];
  private readonly storeBytes = new Map<number, () => number>();
  private admin: Server | undefined;
  /** the admin listener at the daemon's host address (authenticated), when that is not 127.0.0.1 */
  private remoteAdmin: Server | undefined;
  private watch: NodeJS.Timeout | undefined;
  private heartbeatChecks = 0;
  private readonly startedAtMs = performance.now();
  private stopped: Promise<void> | undefined;
  private member: ClusterMember | undefined;
  /** cluster mode: the election state file, which also holds the clock floor */
  private hardState: HardStateFile | undefined;
  private clockFloor: ClockFloor | undefined;
  private metricsServer: HttpServer | undefined;
  /** lone daemon with a metrics endpoint: counts its keys in the background (a cluster member does it itself) */
  private keyCounter: { jobs: BackgroundJobs; timer: NodeJS.Timeout; keys: number | null } | undefined;

  constructor(config: Config, daemon: DaemonConfig, log: Logger, events: SupervisorEvents) {
    this.config = config;
    this.daemon = daemon;
    this.log = log;
    this.events = events;
  }

  async start(): Promise<void> {
    ensureTcpMigrateReq(this.config.setTcpMigrateReq, this.log);
    const clustered = this.config.daemons.length > 1;
    // a backup put in place (kv restore): refused if older than the tombstone grace, else given a new stream id
    for (const g of this.daemon.groups) {
      const takenAtMs = adoptRestoredStore(g.dbFile, clustered ? this.config.cluster.tombstoneGraceMs : null);
      if (takenAtMs !== null) this.log('info', 'starting from a restored backup; peers will send what changed since', { dbFile: g.dbFile, takenAt: new Date(takenAtMs).toISOString() });
    }
    // Open every store once here: a bad file fails start-up with its name, and
    // the clock starts above every timestamp on disk (never backwards across restarts).
    for (const g of this.daemon.groups) {
      const store = Store.open(g.dbFile, { durability: this.config.durability, maxStoreBytes: this.config.limits.maxStoreBytes });
      try {
        this.clock.observe(store.maxTimestamp());
      } finally {
        store.close();
      }
    }
    if (clustered) {
      // before any processor issues a timestamp: above every version issued before, even if the data file was lost
      this.hardState = HardStateFile.open(this.daemon.stateFile);
      try {
        this.clockFloor = new ClockFloor(this.hardState, this.clock, {
          ...floorTimingFor(this.config.cluster.maxClockSkewMs),
          onSaveFailed: (e) => this.events.onGiveUp(`cannot raise the clock floor: ${e.message}`),
        });
      } catch (e) {
        this.hardState.close();
        throw e;
      }
    }
    const groupEvents: GroupEvents = {
      onShutdownRequested: (from) => this.events.onShutdownRequested(from),
      // a lone daemon exits so pm2 restarts it; a cluster member stays up, degraded, and the leader asks it to retry
      onGiveUp: clustered
        ? (reason) => this.log('error', 'group degraded: restart intensity exceeded; waiting for the leader to ask for a retry', { reason })
        : (reason) => this.events.onGiveUp(reason),
      onKeyMiss: clustered ? (key) => this.member?.keyMiss(key) ?? Promise.resolve() : undefined,
      onCommitted: clustered ? () => this.member?.localWrite() : undefined,
      onQuorumRead: clustered ? (keys) => this.member?.quorumRead(keys) ?? Promise.resolve({ ok: false, entries: [] }) : undefined,
    };
    for (const g of this.daemon.groups) {
      const group = new ProcessorGroup(this.config, this.daemon, g, this.clock.buffer, this.log, groupEvents);
      this.groups.push(group);
      this.storeBytes.set(g.port, () => fileBytes(g.dbFile));
    }
    try {
      await Promise.all(this.groups.map((g) => g.start()));
      if (clustered) {
        this.member = await ClusterMember.start(this.config, this.daemon, this.clock, this.groups[0].memberLink, this.hardState!, this.log, {
          health: () => ({
            processorsAlive: this.groups.reduce((n, g) => n + g.alive, 0),
            restarts: this.groups.reduce((n, g) => n + g.status(performance.now()).restarts, 0),
            degradedGroups: this.groups.filter((g) => g.degraded).map((g) => String(g.group.port)),
          }),
          retryGroups: (ports) => {
            for (const g of this.groups) if (g.degraded && ports.includes(String(g.group.port))) void g.retry();
          },
          fatal: (reason) => this.events.onGiveUp(reason),
          acknowledged: (majority, all) => this.groups[0].setAcknowledged(majority, all),
          reachablePeers: (n) => this.groups[0].setReachablePeers(n),
          localReadsUntil: (us) => this.groups[0].setLocalReadsUntil(us),
        });
      }
      this.admin = await startAdminServer(this.daemon.adminPort, (req) => this.handleAdmin(req), this.log);
      if (hasRemoteAdmin(this.daemon.host)) {
        const secret = clusterSecret(this.config, this.log);
        this.remoteAdmin = await startAdminServer(this.daemon.adminPort, (req) => this.handleAdmin(req), this.log, { host: this.daemon.host, secret });
      }
      if (this.daemon.metricsPort !== null) {
        if (!clustered) this.startKeyCounter();
        // prom-client is loaded only by daemons that serve metrics
        const { metricsRegistry, startMetricsServer } = await import('../metrics/exporter.ts');
        this.metricsServer = await startMetricsServer(this.daemon.metricsHost, this.daemon.metricsPort, metricsRegistry(this.daemon.id, this.figures()));
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    const { heartbeatIntervalMs } = this.config.supervision;
    this.watch = setInterval(() => {
      // monotonic: a step of the wall clock must not make every thread look hung
      const now = performance.now();
      for (const g of this.groups) g.checkHeartbeats(now);
      this.heartbeatChecks++;
    }, heartbeatIntervalMs);
    if (this.member && !(await this.member.whenSynced(STARTUP_SYNC_WAIT_MS))) {
      // a new data file copies its peers before it counts for MAJORITY reads; with peers down that waits for them
      this.log('warn', 'not synced yet: MAJORITY reads here wait until this daemon has copied its peers', { waitedMs: STARTUP_SYNC_WAIT_MS });
    }
    this.log('info', 'daemon ready', {
      ports: this.daemon.groups.map((g) => g.port),
      adminPort: this.daemon.adminPort,
      durability: this.config.durability,
      ...(this.daemon.metricsPort !== null ? { metrics: `http://${this.daemon.metricsHost}:${this.daemon.metricsPort}/metrics` } : {}),
    });
  }

  /** Live figures for the metrics endpoint and pm2, read on demand. */
  figures(): DaemonFigures & { role(): string } {
    return {
      addRequestMetrics: (into: MetricsSnapshot) => {
        for (const g of this.groups) g.addMetrics(into);
      },
      connections: () => this.groups.reduce((n, g) => n + g.status(Date.now()).processors.reduce((m, p) => m + p.connections, 0), 0),
      processorsAlive: () => this.groups.reduce((n, g) => n + g.alive, 0),
      processorRestarts: () => this.groups.reduce((n, g) => n + g.status(Date.now()).restarts, 0),
      storeBytes: () => [...this.storeBytes.values()].reduce((n, bytes) => n + bytes(), 0),
      keys: () => (this.member ? this.member.metrics().keyCount : (this.keyCounter?.keys ?? null)),
      cluster: () => this.member?.metrics() ?? null,
      role: () => this.member?.metrics().role ?? 'lone',
    };
  }

  private startKeyCounter(): void {
    const jobs = new BackgroundJobs({ threads: 1, maxPending: this.daemon.groups.length });
    const counter = { jobs, timer: undefined as unknown as NodeJS.Timeout, keys: null as number | null };
    const count = () => {
      if (!jobs.hasRoom) return;
      Promise.all(this.daemon.groups.map((g) => jobs.keyCount({ file: g.dbFile, durability: this.config.durability })))
        .then((ns) => (counter.keys = ns.reduce((a, b) => a + b, 0)))
        .catch((e: Error) => this.log('warn', 'key count job failed', { error: e.message }));
    };
    counter.timer = setInterval(count, KEY_COUNT_EVERY_MS);
    count();
    this.keyCounter = counter;
  }

  private group(port: number): ProcessorGroup {
    const g = this.groups.find((x) => x.group.port === port);
    if (!g) throw new Error(`this daemon has no group on port ${port} (ports: ${this.groups.map((x) => x.group.port).join(', ')})`);
    return g;
  }

  async handleAdmin(req: AdminRequest): Promise<AdminReply> {
    switch (req.op) {
      case 'status':
        return { ok: true, status: this.status() };
      case 'resize':
        await this.group(req.port).resize(req.processors);
        return { ok: true, port: req.port, processors: req.processors };
      case 'restart':
        await this.group(req.port).rollingRestart();
        return { ok: true, port: req.port };
      case 'fault':
        if (!this.config.faultInjection) return { ok: false, error: 'fault injection is disabled in the config' };
        if (req.slot === 'writer') return this.group(req.port).injectWriter(req.fault) ? { ok: true } : { ok: false, error: 'no running writer' };
        if (req.fault !== 'crash' && req.fault !== 'hang') return { ok: false, error: `${req.fault} is a writer fault` };
        return this.group(req.port).inject(req.slot, req.fault)
          ? { ok: true }
          : { ok: false, error: `no running processor in slot ${req.slot}` };
    }
  }

  status(): DaemonStatus {
    const now = performance.now();
    return {
      daemon: this.daemon.id,
      pid: process.pid,
      uptimeMs: Math.round(now - this.startedAtMs),
      heartbeatChecks: this.heartbeatChecks,
      groups: this.groups.map((g) => ({ ...g.status(now), storeBytes: this.storeBytes.get(g.group.port)!() })),
      ...(this.member ? { cluster: this.member.view() } : {}),
    };
  }

  /**
   * Stops accepting, lets processors finish in-flight requests, lets the
   * peers pull what was acknowledged meanwhile, then stops the cluster member
   * and last the writers. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      clearInterval(this.watch);
      this.admin?.close();
      await Promise.all(this.groups.map((g) => g.stopProcessors()));
      this.remoteAdmin?.close();
      this.metricsServer?.close();
      this.metricsServer?.closeAllConnections();
      if (this.keyCounter) {
        clearInterval(this.keyCounter.timer);
        await this.keyCounter.jobs.close().catch(() => {});
      }
      await this.member?.handOver(this.config.supervision.drainTimeoutMs);
      await this.member?.stop();
      await Promise.all(this.groups.map((g) => g.stopWriter()));
      this.clockFloor?.stop();
      this.hardState?.close();
      this.log('info', 'daemon stopped');
    })();
    return this.stopped;
  }
}

/** KV_CLUSTER_SECRET (hex) if set, else the secret file (created with a random secret when missing). */
function clusterSecret(config: Config, log: Logger): Buffer {
  if (process.env.KV_CLUSTER_SECRET) return parseSecret(process.env.KV_CLUSTER_SECRET, 'KV_CLUSTER_SECRET');
  const { secret, created } = loadOrCreateSecret(config.cluster.secretFile);
  if (created) log('info', 'created a new cluster secret; copy this file to every host of the cluster', { file: config.cluster.secretFile });
  return secret;
}

/** A lone daemon's key count for the metrics is refreshed this often (a full count on a pool thread). */
const KEY_COUNT_EVERY_MS = 10_000;

function fileBytes(file: string): number {
  let n = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      n += statSync(f).size;
    } catch {
      // no WAL yet
    }
  }
  return n;
}

const TCP_MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Processors share a port with SO_REUSEPORT. When one closes its listener
 * (resize down, rolling restart, drain), Linux resets the connections still in
 * that listener's accept queue unless net.ipv4.tcp_migrate_req is 1, which
 * moves them to the siblings. Set it when allowed; otherwise say what to do.
 */
function ensureTcpMigrateReq(allowedToSet: boolean, log: Logger): void {
  let value: string;
  try {
    value = readFileSync(TCP_MIGRATE_REQ, 'utf8').trim();
  } catch {
    return; // not Linux, or a kernel before 5.14: nothing to tune
  }
  if (value === '1') return;
  if (allowedToSet) {
    try {
      writeFileSync(TCP_MIGRATE_REQ, '1');
      log('info', 'set net.ipv4.tcp_migrate_req=1 so a retiring processor hands its queued connections to its siblings');
      return;
    } catch {
      // not permitted: fall through to the warning
    }
  }
  log('warn', 'net.ipv4.tcp_migrate_req is 0: resizing down or restarting processors may reset connections queued on the retiring listener; run `sysctl -w net.ipv4.tcp_migrate_req=1`');
}

// Parses and validates everything a user can set, at start-up: the cluster
// config file (JSON) plus environment overrides. Returns a typed, frozen
// config or throws ConfigError naming the field and the allowed values.

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { originOf } from '../shared/origin.ts';

export type Durability = 'full' | 'normal';

export interface GroupConfig {
  /** client TCP port shared by this group's processors (SO_REUSEPORT) */
  port: number;
  /** SQLite file, absolute after parsing */
  dbFile: string;
  processors: number;
}

export interface DaemonConfig {
  id: string;
  /** written with this daemon's versions (tie-break of equal timestamps): originOf(id), unique in the config */
  origin: number;
  /** address the client and peer ports listen on */
  host: string;
  peerPort: number;
  /** local admin interface (loopback only): status, resize, fault injection */
  adminPort: number;
  groups: GroupConfig[];
  /** SQLite file of this daemon's cluster hard state (term, vote); absolute */
  stateFile: string;
  /** Prometheus /metrics over HTTP on metricsHost:metricsPort; null = no metrics endpoint */
  metricsPort: number | null;
  metricsHost: string;
}

export interface Limits {
  maxConnectionsPerProcessor: number;
  maxInFlightPerConnection: number;
  idleTimeoutMs: number;
  /** a connection whose unread replies exceed this stops being read until the client catches up */
  maxPendingReplyBytesPerConnection: number;
  /** cap on the SQLite file and its WAL together (0 = none); a write past it fails with STORE_FAILED */
  maxStoreBytes: number;
  /** keys each processor keeps in memory after reading them (0 = none); a key is dropped when the writer says a commit changed it */
  readCacheEntries: number;
}

export interface Supervision {
  heartbeatIntervalMs: number;
  /** a processor or writer that misses heartbeatIntervalMs * heartbeatMissLimit of beats while the supervisor runs is hung */
  heartbeatMissLimit: number;
  restartBackoffInitialMs: number;
  restartBackoffMaxMs: number;
  /** more than maxRestarts restarts within restartWindowMs (per group) and the supervisor gives up */
  maxRestarts: number;
  restartWindowMs: number;
  /** time a stopping processor gets to finish in-flight requests */
  drainTimeoutMs: number;
  /** time a new processor gets to open its store and listen */
  startTimeoutMs: number;
  /**
   * The writer inside one SQLite transaction (its commit's fsync on a slow or
   * stalled disk) cannot beat; it is judged hung only when one transaction
   * lasts this long. Outside a transaction the heartbeat limit applies.
   */
  writerStallLimitMs: number;
}

/** The peer side: election, replication and repair timing, and the shared secret. */
export interface ClusterSettings {
  /** file with the shared cluster secret (hex); created with a random one on first start */
  secretFile: string;
  heartbeatIntervalMs: number;
  /** a follower that hears no leader for a random time in [min, max] starts an election */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  /** a puller asks each peer for changes at least this often (and at once when told of new writes) */
  pullIntervalMs: number;
  /** the leader compares digests with each daemon this often */
  antiEntropyIntervalMs: number;
  /** a peer whose clock differs by more than this is reported */
  maxClockSkewMs: number;
  /** how long a READ_THROUGH GET waits for a missing key to be fetched */
  readThroughTimeoutMs: number;
  /** most key-miss fetches waiting at once; more are dropped (the GET already answered NO_VAL) */
  maxPendingKeyFetches: number;
  /** largest peer message, in bytes */
  maxPeerMessageBytes: number;
  /** level of a PUT/DEL whose flag bits 1-2 are 0 */
  defaultWriteConsistency: WriteConsistency;
  /** level of a GET whose flag bits 1-2 are 0 */
  defaultReadConsistency: ReadConsistency;
  /** a PUT/DEL at MAJORITY/ALL that is not held by enough daemons by then is answered OUTCOME_UNKNOWN (it stays applied here) */
  writeQuorumTimeoutMs: number;
  /** a GET at MAJORITY without enough answers by then is answered NO_QUORUM */
  quorumReadTimeoutMs: number;
  /** a peer heard from within this long counts as reachable; with too few reachable, MAJORITY/ALL writes are refused with NO_QUORUM at once */
  peerReachableMs: number;
  /** read leases (MAJORITY reads answered locally) last this long; a daemon that stops answering holds MAJORITY writes up to this long */
  readLeaseMs: number;
  /** the assumed bound on how fast two daemons' monotonic clocks drift apart (ppm); leases are shortened by twice it */
  maxClockDriftPpm: number;
  /**
   * A tombstone is kept at least this long after its delete, even when every
   * daemon has it, and a backup older than this is refused at restore: a
   * restored file must not bring back a key deleted after it was taken.
   */
  tombstoneGraceMs: number;
}

export type WriteConsistency = 'one' | 'majority' | 'all';
export type ReadConsistency = 'one' | 'majority';

/** The gateway (pm2 app kv-gw): one client address in front of every daemon of this config. */
export interface GatewayConfig {
  /** false: `npm start` runs no gateway */
  enabled: boolean;
  host: string;
  port: number;
  /** persistent pipelined connections to each daemon */
  connectionsPerDaemon: number;
  /** requests written and unanswered per daemon connection; more wait in the gateway (at most the daemons' maxInFlightPerConnection) */
  maxInFlightPerDaemonConnection: number;
  maxClientConnections: number;
  /** a client connection's requests not yet answered; past it, ERROR TOO_MANY_IN_FLIGHT */
  maxInFlightPerClientConnection: number;
  /** a client connection idle this long is closed */
  idleTimeoutMs: number;
  /** one attempt at one daemon; then a read goes to another daemon and a written write gets OUTCOME_UNKNOWN */
  requestTimeoutMs: number;
  /** daemons tried per request at most (reads, and requests certainly not delivered) */
  maxAttempts: number;
  /** a CHK to each daemon this often */
  probeIntervalMs: number;
  /** a CHK unanswered this long takes the daemon out and closes its connections */
  probeTimeoutMs: number;
  connectTimeoutMs: number;
  /** reconnects to a daemon wait this long, doubling per failure up to reconnectBackoffMaxMs */
  reconnectBackoffInitialMs: number;
  reconnectBackoffMaxMs: number;
  /** a daemon that came back gets its keys back after it has been up this long (it catches up meanwhile) */
  rejoinAfterMs: number;
  /** a GET goes to the least loaded daemon instead of its key's daemon when that one has this many requests outstanding */
  readSpillOutstanding: number;
  /** a key written this recently goes to the daemon that took the write while it is up (longer than the replication lag) */
  recentWriteMs: number;
  /** most keys remembered for recentWriteMs */
  maxRecentWrites: number;
  /** the leader's cluster view is read this often from a loopback admin port (0 = never) */
  clusterViewIntervalMs: number;
  /** on SIGTERM, time the open client connections get for the replies to what they sent */
  drainTimeoutMs: number;
}

export interface Config {
  /** where the config was read from, for messages */
  source: string;
  daemons: DaemonConfig[];
  limits: Limits;
  supervision: Supervision;
  durability: Durability;
  /** SHUT_DOWN from loopback stops the daemon; when false it gets ERROR NOT_ALLOWED */
  allowShutdown: boolean;
  /** enables the admin 'fault' op (crash/hang a processor); for tests only */
  faultInjection: boolean;
  /**
   * At start-up, set net.ipv4.tcp_migrate_req to 1 when it is 0 and the
   * process may write it, so connections queued on a retiring processor's
   * listener move to its siblings instead of being reset.
   */
  setTcpMigrateReq: boolean;
  cluster: ClusterSettings;
  gateway: GatewayConfig;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const defaultLimits: Limits = {
  maxConnectionsPerProcessor: 4096,
  maxInFlightPerConnection: 1024,
  idleTimeoutMs: 60_000,
  maxPendingReplyBytesPerConnection: 4 * 1024 * 1024,
  maxStoreBytes: 0,
  readCacheEntries: 4096,
};

export const defaultSupervision: Supervision = {
  heartbeatIntervalMs: 200,
  heartbeatMissLimit: 10,
  restartBackoffInitialMs: 100,
  restartBackoffMaxMs: 5_000,
  maxRestarts: 10,
  restartWindowMs: 30_000,
  drainTimeoutMs: 1_000,
  startTimeoutMs: 10_000,
  writerStallLimitMs: 30_000,
};

export const defaultCluster: Omit<ClusterSettings, 'secretFile'> = {
  heartbeatIntervalMs: 50,
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  pullIntervalMs: 250,
  antiEntropyIntervalMs: 10_000,
  maxClockSkewMs: 500,
  readThroughTimeoutMs: 500,
  maxPendingKeyFetches: 1024,
  maxPeerMessageBytes: 8 * 1024 * 1024,
  defaultWriteConsistency: 'majority',
  defaultReadConsistency: 'majority',
  writeQuorumTimeoutMs: 2_000,
  quorumReadTimeoutMs: 1_000,
  peerReachableMs: 1_000,
  readLeaseMs: 500,
  maxClockDriftPpm: 1_000,
  tombstoneGraceMs: 7 * 24 * 3_600_000,
};

export const defaultGateway: GatewayConfig = {
  enabled: true,
  host: '127.0.0.1',
  port: 7389,
  connectionsPerDaemon: 2,
  maxInFlightPerDaemonConnection: 512,
  maxClientConnections: 10_000,
  maxInFlightPerClientConnection: 1024,
  idleTimeoutMs: 60_000,
  requestTimeoutMs: 3_000,
  maxAttempts: 3,
  probeIntervalMs: 200,
  probeTimeoutMs: 1_000,
  connectTimeoutMs: 1_000,
  reconnectBackoffInitialMs: 20,
  reconnectBackoffMaxMs: 1_000,
  rejoinAfterMs: 1_000,
  readSpillOutstanding: 256,
  recentWriteMs: 2_000,
  maxRecentWrites: 100_000,
  clusterViewIntervalMs: 1_000,
  drainTimeoutMs: 2_000,
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(obj: Json, key: string, path: string, min: number, max: number, fallback?: number): number {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${path}.${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(obj: Json, key: string, path: string, fallback?: string): string {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || v.length === 0) {
    throw new ConfigError(`${path}.${key} must be a non-empty string, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(obj: Json, key: string, path: string, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${path}.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(obj: Json, key: string, path: string, allowed: readonly T[], fallback: T): T {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(`${path}.${key} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function checkKeys(obj: Json, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ConfigError(`${path}.${k} is not a known setting (known: ${allowed.join(', ')})`);
  }
}

function section(raw: Json, key: string): Json {
  const v = raw[key] ?? {};
  if (!isObject(v)) throw new ConfigError(`config.${key} must be an object`);
  return v;
}

/** Validates a parsed config object; relative dbFile paths resolve against baseDir. */
export function parseConfig(raw: unknown, baseDir: string, source = 'config'): Config {
  if (!isObject(raw)) throw new ConfigError('config must be a JSON object');
  checkKeys(raw, 'config', ['daemons', 'limits', 'supervision', 'durability', 'allowShutdown', 'faultInjection', 'setTcpMigrateReq', 'cluster', 'gateway']);
  if (!Array.isArray(raw.daemons) || raw.daemons.length === 0) {
    throw new ConfigError('config.daemons must be a non-empty array of {id, host, peerPort, adminPort, groups}');
  }
  const usedPorts = new Map<string, string>();
  const claim = (host: string, port: number, what: string) => {
    const k = `${host}:${port}`;
    const prior = usedPorts.get(k);
    if (prior) throw new ConfigError(`${what} uses port ${port}, already used by ${prior}`);
    usedPorts.set(k, what);
  };
  const ids = new Set<string>();
  const dbFiles = new Set<string>();
  const daemons = raw.daemons.map((d, i): DaemonConfig => {
    const path = `config.daemons[${i}]`;
    if (!isObject(d)) throw new ConfigError(`${path} must be an object`);
    checkKeys(d, path, ['id', 'host', 'peerPort', 'adminPort', 'metricsPort', 'metricsHost', 'groups', 'stateFile']);
    const id = str(d, 'id', path);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new ConfigError(`${path}.id must be 1-64 of [A-Za-z0-9_.-], got ${JSON.stringify(id)}`);
    if (ids.has(id)) throw new ConfigError(`${path}.id ${JSON.stringify(id)} is used twice`);
    ids.add(id);
    const host = str(d, 'host', path, '127.0.0.1');
    const peerPort = int(d, 'peerPort', path, 1, 65535);
    const adminPort = int(d, 'adminPort', path, 1, 65535);
    claim(host, peerPort, `${path}.peerPort`);
    // loopback listeners of daemons on other machines do not collide with this machine's
    const onMachine = (listenHost: string) => (isLoopbackHost(listenHost) && !isLoopbackHost(host) ? `${listenHost}@${host}` : listenHost);
    claim(onMachine('127.0.0.1'), adminPort, `${path}.adminPort`);
    if (hasRemoteAdmin(host)) claim(host, adminPort, `${path}.adminPort`);
    const metricsHost = str(d, 'metricsHost', path, '127.0.0.1');
    const metricsPort = d.metricsPort === undefined ? null : int(d, 'metricsPort', path, 1, 65535);
    if (metricsPort !== null) claim(onMachine(metricsHost), metricsPort, `${path}.metricsPort`);
    if (!Array.isArray(d.groups) || d.groups.length === 0) {
      throw new ConfigError(`${path}.groups must be a non-empty array of {port, dbFile, processors}`);
    }
    const groups = d.groups.map((g, j): GroupConfig => {
      const gpath = `${path}.groups[${j}]`;
      if (!isObject(g)) throw new ConfigError(`${gpath} must be an object`);
      checkKeys(g, gpath, ['port', 'dbFile', 'processors']);
      const port = int(g, 'port', gpath, 1, 65535);
      claim(host, port, `${gpath}.port`);
      const dbFile = resolve(baseDir, str(g, 'dbFile', gpath));
      if (dbFiles.has(dbFile)) throw new ConfigError(`${gpath}.dbFile ${dbFile} is used by another group`);
      dbFiles.add(dbFile);
      return { port, dbFile, processors: int(g, 'processors', gpath, 1, 64) };
    });
    const stateFile = resolve(baseDir, str(d, 'stateFile', path, resolve(dirname(groups[0].dbFile), `${id}.cluster.sqlite`)));
    if (dbFiles.has(stateFile)) throw new ConfigError(`${path}.stateFile ${stateFile} is used by another daemon or group`);
    dbFiles.add(stateFile);
    return { id, host, peerPort, adminPort, metricsPort, metricsHost, groups, stateFile, origin: originOf(id) };
  });
  const byOrigin = new Map<number, string>();
  for (const d of daemons) {
    const other = byOrigin.get(d.origin);
    if (other !== undefined) {
      throw new ConfigError(`config.daemons: ids ${JSON.stringify(other)} and ${JSON.stringify(d.id)} hash to one origin (${d.origin}), the tie-break of concurrent writes; rename one`);
    }
    byOrigin.set(d.origin, d.id);
  }

  const l = section(raw, 'limits');
  checkKeys(l, 'config.limits', Object.keys(defaultLimits));
  const limits: Limits = {
    maxConnectionsPerProcessor: int(l, 'maxConnectionsPerProcessor', 'config.limits', 1, 1_000_000, defaultLimits.maxConnectionsPerProcessor),
    maxInFlightPerConnection: int(l, 'maxInFlightPerConnection', 'config.limits', 1, 65_536, defaultLimits.maxInFlightPerConnection),
    readCacheEntries: int(l, 'readCacheEntries', 'config.limits', 0, 1_000_000, defaultLimits.readCacheEntries),
    idleTimeoutMs: int(l, 'idleTimeoutMs', 'config.limits', 100, 86_400_000, defaultLimits.idleTimeoutMs),
    maxPendingReplyBytesPerConnection: int(l, 'maxPendingReplyBytesPerConnection', 'config.limits', 4096, 1 << 30, defaultLimits.maxPendingReplyBytesPerConnection),
    maxStoreBytes: int(l, 'maxStoreBytes', 'config.limits', 0, Number.MAX_SAFE_INTEGER, defaultLimits.maxStoreBytes),
  };

  const s = section(raw, 'supervision');
  checkKeys(s, 'config.supervision', Object.keys(defaultSupervision));
  const sp = 'config.supervision';
  const ds = defaultSupervision;
  const supervision: Supervision = {
    heartbeatIntervalMs: int(s, 'heartbeatIntervalMs', sp, 10, 60_000, ds.heartbeatIntervalMs),
    heartbeatMissLimit: int(s, 'heartbeatMissLimit', sp, 2, 1000, ds.heartbeatMissLimit),
    restartBackoffInitialMs: int(s, 'restartBackoffInitialMs', sp, 0, 60_000, ds.restartBackoffInitialMs),
    restartBackoffMaxMs: int(s, 'restartBackoffMaxMs', sp, 0, 600_000, ds.restartBackoffMaxMs),
    maxRestarts: int(s, 'maxRestarts', sp, 0, 10_000, ds.maxRestarts),
    restartWindowMs: int(s, 'restartWindowMs', sp, 100, 86_400_000, ds.restartWindowMs),
    drainTimeoutMs: int(s, 'drainTimeoutMs', sp, 0, 600_000, ds.drainTimeoutMs),
    startTimeoutMs: int(s, 'startTimeoutMs', sp, 100, 600_000, ds.startTimeoutMs),
    writerStallLimitMs: int(s, 'writerStallLimitMs', sp, 100, 3_600_000, ds.writerStallLimitMs),
  };

  if (daemons.length > 1) {
    const multi = daemons.find((d) => d.groups.length !== 1);
    if (multi) {
      throw new ConfigError(
        `config.daemons[${daemons.indexOf(multi)}].groups must hold exactly one group in a cluster (one replicated store per daemon); give it more processors instead`,
      );
    }
  }

  const c = section(raw, 'cluster');
  const cp = 'config.cluster';
  const dc = defaultCluster;
  checkKeys(c, cp, ['secretFile', ...Object.keys(dc)]);
  const cluster: ClusterSettings = {
    secretFile: resolve(baseDir, str(c, 'secretFile', cp, resolve(dirname(daemons[0].groups[0].dbFile), 'cluster.secret'))),
    heartbeatIntervalMs: int(c, 'heartbeatIntervalMs', cp, 5, 10_000, dc.heartbeatIntervalMs),
    electionTimeoutMinMs: int(c, 'electionTimeoutMinMs', cp, 20, 60_000, dc.electionTimeoutMinMs),
    electionTimeoutMaxMs: int(c, 'electionTimeoutMaxMs', cp, 20, 120_000, dc.electionTimeoutMaxMs),
    pullIntervalMs: int(c, 'pullIntervalMs', cp, 5, 60_000, dc.pullIntervalMs),
    antiEntropyIntervalMs: int(c, 'antiEntropyIntervalMs', cp, 100, 86_400_000, dc.antiEntropyIntervalMs),
    maxClockSkewMs: int(c, 'maxClockSkewMs', cp, 1, 3_600_000, dc.maxClockSkewMs),
    readThroughTimeoutMs: int(c, 'readThroughTimeoutMs', cp, 1, 60_000, dc.readThroughTimeoutMs),
    maxPendingKeyFetches: int(c, 'maxPendingKeyFetches', cp, 1, 1_000_000, dc.maxPendingKeyFetches),
    maxPeerMessageBytes: int(c, 'maxPeerMessageBytes', cp, 64 * 1024, 256 * 1024 * 1024, dc.maxPeerMessageBytes),
    defaultWriteConsistency: oneOf(c, 'defaultWriteConsistency', cp, ['one', 'majority', 'all'] as const, dc.defaultWriteConsistency),
    defaultReadConsistency: oneOf(c, 'defaultReadConsistency', cp, ['one', 'majority'] as const, dc.defaultReadConsistency),
    writeQuorumTimeoutMs: int(c, 'writeQuorumTimeoutMs', cp, 10, 600_000, dc.writeQuorumTimeoutMs),
    quorumReadTimeoutMs: int(c, 'quorumReadTimeoutMs', cp, 10, 600_000, dc.quorumReadTimeoutMs),
    peerReachableMs: int(c, 'peerReachableMs', cp, 10, 600_000, dc.peerReachableMs),
    readLeaseMs: int(c, 'readLeaseMs', cp, 10, 60_000, dc.readLeaseMs),
    maxClockDriftPpm: int(c, 'maxClockDriftPpm', cp, 0, 100_000, dc.maxClockDriftPpm),
    tombstoneGraceMs: int(c, 'tombstoneGraceMs', cp, 0, 365 * 24 * 3_600_000, dc.tombstoneGraceMs),
  };
  if (cluster.electionTimeoutMaxMs <= cluster.electionTimeoutMinMs) {
    throw new ConfigError(`${cp}.electionTimeoutMaxMs (${cluster.electionTimeoutMaxMs}) must be above electionTimeoutMinMs (${cluster.electionTimeoutMinMs})`);
  }
  if (cluster.heartbeatIntervalMs * 3 > cluster.electionTimeoutMinMs) {
    throw new ConfigError(`${cp}.heartbeatIntervalMs (${cluster.heartbeatIntervalMs}) must be at most a third of electionTimeoutMinMs (${cluster.electionTimeoutMinMs})`);
  }

  const gateway = parseGateway(section(raw, 'gateway'), limits, claim);

  const durability = raw.durability ?? 'full';
  if (durability !== 'full' && durability !== 'normal') {
    throw new ConfigError(`config.durability must be "full" or "normal", got ${JSON.stringify(durability)}`);
  }
  return deepFreeze({
    source,
    daemons,
    limits,
    supervision,
    durability,
    allowShutdown: bool(raw, 'allowShutdown', 'config', true),
    faultInjection: bool(raw, 'faultInjection', 'config', false),
    setTcpMigrateReq: bool(raw, 'setTcpMigrateReq', 'config', true),
    cluster,
    gateway,
  });
}

function parseGateway(g: Json, limits: Limits, claim: (host: string, port: number, what: string) => void): GatewayConfig {
  const gp = 'config.gateway';
  const dg = defaultGateway;
  checkKeys(g, gp, Object.keys(dg));
  const gateway: GatewayConfig = {
    enabled: bool(g, 'enabled', gp, dg.enabled),
    host: str(g, 'host', gp, dg.host),
    port: int(g, 'port', gp, 1, 65535, dg.port),
    connectionsPerDaemon: int(g, 'connectionsPerDaemon', gp, 1, 64, dg.connectionsPerDaemon),
    maxInFlightPerDaemonConnection: int(g, 'maxInFlightPerDaemonConnection', gp, 1, limits.maxInFlightPerConnection, Math.min(dg.maxInFlightPerDaemonConnection, limits.maxInFlightPerConnection)),
    maxClientConnections: int(g, 'maxClientConnections', gp, 1, 1_000_000, dg.maxClientConnections),
    maxInFlightPerClientConnection: int(g, 'maxInFlightPerClientConnection', gp, 1, 65_536, dg.maxInFlightPerClientConnection),
    idleTimeoutMs: int(g, 'idleTimeoutMs', gp, 100, 86_400_000, dg.idleTimeoutMs),
    requestTimeoutMs: int(g, 'requestTimeoutMs', gp, 10, 600_000, dg.requestTimeoutMs),
    maxAttempts: int(g, 'maxAttempts', gp, 1, 100, dg.maxAttempts),
    probeIntervalMs: int(g, 'probeIntervalMs', gp, 5, 60_000, dg.probeIntervalMs),
    probeTimeoutMs: int(g, 'probeTimeoutMs', gp, 5, 600_000, dg.probeTimeoutMs),
    connectTimeoutMs: int(g, 'connectTimeoutMs', gp, 10, 600_000, dg.connectTimeoutMs),
    reconnectBackoffInitialMs: int(g, 'reconnectBackoffInitialMs', gp, 0, 60_000, dg.reconnectBackoffInitialMs),
    reconnectBackoffMaxMs: int(g, 'reconnectBackoffMaxMs', gp, 0, 600_000, dg.reconnectBackoffMaxMs),
    rejoinAfterMs: int(g, 'rejoinAfterMs', gp, 0, 600_000, dg.rejoinAfterMs),
    readSpillOutstanding: int(g, 'readSpillOutstanding', gp, 1, 1_000_000, dg.readSpillOutstanding),
    recentWriteMs: int(g, 'recentWriteMs', gp, 0, 600_000, dg.recentWriteMs),
    maxRecentWrites: int(g, 'maxRecentWrites', gp, 0, 10_000_000, dg.maxRecentWrites),
    clusterViewIntervalMs: int(g, 'clusterViewIntervalMs', gp, 0, 3_600_000, dg.clusterViewIntervalMs),
    drainTimeoutMs: int(g, 'drainTimeoutMs', gp, 0, 600_000, dg.drainTimeoutMs),
  };
  if (gateway.reconnectBackoffMaxMs < gateway.reconnectBackoffInitialMs) {
    throw new ConfigError(`${gp}.reconnectBackoffMaxMs (${gateway.reconnectBackoffMaxMs}) must be at least reconnectBackoffInitialMs (${gateway.reconnectBackoffInitialMs})`);
  }
  if (gateway.enabled) claim(gateway.host, gateway.port, `${gp}.port`);
  return gateway;
}

/** Reads the config file (KV_CONFIG or ./kv.config.json) and applies env overrides. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = resolve(env.KV_CONFIG ?? 'kv.config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message} (set KV_CONFIG to its path)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (isObject(raw) && env.KV_DURABILITY !== undefined) raw.durability = env.KV_DURABILITY;
  return parseConfig(raw, dirname(file), file);
}

export function daemonById(config: Config, id: string | undefined): DaemonConfig {
  if (!id) throw new ConfigError(`KV_DAEMON_ID must name one of: ${config.daemons.map((d) => d.id).join(', ')}`);
  const d = config.daemons.find((x) => x.id === id);
  if (!d) throw new ConfigError(`KV_DAEMON_ID ${JSON.stringify(id)} is not in ${config.source} (known: ${config.daemons.map((x) => x.id).join(', ')})`);
  return d;
}

/** 127.0.0.0/8, ::1 and localhost: addresses that only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost';
}

/**
 * Whether the admin interface also listens at the daemon's host (with the
 * cluster secret): not for 127.0.0.1, nor for a wildcard host, whose
 * listener would take the loopback one's port.
 */
export function hasRemoteAdmin(host: string): boolean {
  return !['127.0.0.1', 'localhost', '0.0.0.0', '::'].includes(host);
}

/** The addresses of this machine's network interfaces. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

/**
 * The daemons this machine runs: those whose host is one of its addresses
 * (loopback included; a wildcard host counts everywhere). `npm start` starts
 * these; ecosystem.config.js applies the same rule.
 */
export function localDaemons(config: Config, addresses: readonly string[] = localAddresses()): DaemonConfig[] {
  return config.daemons.filter((d) => isLoopbackHost(d.host) || d.host === '0.0.0.0' || d.host === '::' || addresses.includes(d.host));
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

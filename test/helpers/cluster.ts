// Starts a real cluster for a test: N daemons (one supervisor process each) on
// loopback with free ports, a temporary data directory and a shared secret
// file, with fast election timing. Members are started, killed and restarted
// by id; every process is stopped by PID at the end.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, launch, waitFor, type RunningDaemon } from './daemon.ts';
import { requestOnce } from './wire.ts';
import { Command, ConsistencyLevel, withConsistency } from '../../src/protocol/index.ts';

export interface MemberConfig {
  id: string;
  port: number;
  peerPort: number;
  adminPort: number;
  dbFile: string;
  host: string;
  metricsPort?: number;
}

export interface ClusterOptions {
  size?: number;
  processors?: number;
  cluster?: Record<string, number | string>;
  supervision?: Record<string, number>;
  faultInjection?: boolean;
  /** per member, the address it listens on (default 127.0.0.1) */
  hosts?: string[];
  /** serve Prometheus metrics (on 127.0.0.1, a free port each) */
  metrics?: boolean;
}

export class TestCluster {
  readonly dataDir: string;
  readonly configFile: string;
  readonly members: MemberConfig[];
  readonly running = new Map<string, RunningDaemon>();

  private constructor(dataDir: string, configFile: string, members: MemberConfig[]) {
    this.dataDir = dataDir;
    this.configFile = configFile;
    this.members = members;
  }

  static async write(options: ClusterOptions = {}): Promise<TestCluster> {
    const size = options.size ?? 3;
    const dataDir = mkdtempSync(join(tmpdir(), 'kv-cluster-'));
    const ports = await freePorts(size * 4);
    const members = Array.from({ length: size }, (_x, i): MemberConfig => ({
      id: `n${i}`,
      port: ports[i * 4],
      peerPort: ports[i * 4 + 1],
      adminPort: ports[i * 4 + 2],
      dbFile: join(dataDir, `n${i}.sqlite`),
      host: options.hosts?.[i] ?? '127.0.0.1',
      ...(options.metrics ? { metricsPort: ports[i * 4 + 3] } : {}),
    }));
    const config = {
      daemons: members.map((m) => ({
        id: m.id,
        host: m.host,
        peerPort: m.peerPort,
        adminPort: m.adminPort,
        ...(m.metricsPort ? { metricsPort: m.metricsPort } : {}),
        groups: [{ port: m.port, dbFile: m.dbFile, processors: options.processors ?? 1 }],
      })),
      supervision: { heartbeatIntervalMs: 50, restartBackoffInitialMs: 20, ...options.supervision },
      faultInjection: options.faultInjection ?? false,
      cluster: {
        heartbeatIntervalMs: 40,
        electionTimeoutMinMs: 250,
        electionTimeoutMaxMs: 500,
        pullIntervalMs: 100,
        antiEntropyIntervalMs: 1_000,
        ...options.cluster,
      },
    };
    const configFile = join(dataDir, 'kv.config.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    return new TestCluster(dataDir, configFile, members);
  }

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const c = await TestCluster.write(options);
    await Promise.all(c.members.map((m) => c.startMember(m.id)));
    await c.synced();
    return c;
  }

  /** Waits until every running member is connected to every other running member. */
  async connected(timeoutMs = 15_000): Promise<void> {
    const ids = [...this.running.keys()];
    await waitFor(
      `${ids.join(', ')} connected to each other`,
      async () => (await Promise.all(ids.map((id) => this.clusterStatus(id).catch(() => null)))).every((v, i) => v && ids.every((o) => o === ids[i] || v.connectedPeers.includes(o))),
      timeoutMs,
      20,
    );
  }

  /** Waits until every running member (or those of `among`) is synced: it counts for quorum reads (new files copy their peers first). */
  async synced(among = [...this.running.keys()], timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `${among.join(', ')} synced`,
      async () => (await Promise.all(among.map((id) => this.clusterStatus(id).catch(() => null)))).every((v) => v?.synced === true),
      timeoutMs,
      20,
    );
  }

  member(id: string): MemberConfig {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  async startMember(id: string, env: Record<string, string> = {}): Promise<RunningDaemon> {
    const m = this.member(id);
    const d = await launch({ dataDir: this.dataDir, configFile: this.configFile, ports: [m.port], adminPort: m.adminPort, dbFiles: [m.dbFile] }, id, env);
    this.running.set(id, d);
    return d;
  }

  async kill(id: string): Promise<void> {
    const d = this.running.get(id);
    this.running.delete(id);
    await d?.kill('SIGKILL');
  }

  /** The cluster section of a member's status. */
  async clusterStatus(id: string): Promise<any> {
    const r = await this.running.get(id)!.admin({ op: 'status' });
    return r.status.cluster;
  }

  /** Waits until every running member (or those of `among`) names the same leader, itself running. */
  async leader(among = [...this.running.keys()], timeoutMs = 15_000): Promise<{ id: string; term: number }> {
    return waitFor(
      `one leader known to ${among.join(', ')}`,
      async () => {
        const views = await Promise.all(among.map((id) => this.clusterStatus(id).catch(() => null)));
        const leaders = new Set(views.map((v) => v?.leaderId));
        const [leaderId] = leaders;
        if (leaders.size !== 1 || !leaderId || !this.running.has(leaderId)) return null;
        const lv = views.find((v) => v.self === leaderId);
        return lv?.role === 'leader' ? { id: leaderId as string, term: lv.term as number } : null;
      },
      timeoutMs,
      50,
    );
  }

  async put(id: string, key: string, value: string) {
    return requestOnce(this.member(id).port, { id: 1n, command: Command.PUT, key, value: Buffer.from(value) }, this.member(id).host);
  }

  async get(id: string, key: string, flag = 0) {
    return requestOnce(this.member(id).port, { id: 1n, command: Command.GET, key, flag }, this.member(id).host);
  }

  async del(id: string, key: string) {
    return requestOnce(this.member(id).port, { id: 1n, command: Command.DEL, key }, this.member(id).host);
  }

  /** Waits until GET of key on member id, at level ONE (its own store), returns `value` (undefined: NO_VAL). */
  async waitForValue(id: string, key: string, value: string | undefined, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      `${key}=${value ?? '(none)'} on ${id}`,
      async () => {
        const r = await this.get(id, key, withConsistency(0, ConsistencyLevel.ONE));
        return value === undefined ? r.command === Command.NO_VAL : r.command === Command.OK && Buffer.from(r.value).toString() === value;
      },
      timeoutMs,
      10,
    );
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.kill(id)));
  }

  output(): string {
    return [...this.running.entries()].map(([id, d]) => `--- ${id}\n${d.output()}`).join('\n');
  }
}

// Network namespaces for partition tests (needs root and `ip`): one namespace
// per daemon, each with a service address on its loopback, a veth link
// between every pair (so a pair can be cut with blackhole routes on both
// sides and healed), and a veth from the test's own namespace to each, so the
// test keeps talking to every daemon whatever the partition. Traffic stays
// inside namespaces this module creates; `destroy()` removes them all.

import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class NetnsLab {
  readonly names: string[];
  /** the service address of each namespace (on its lo): daemons listen here */
  readonly addresses: string[];
  private readonly net: number;
  private readonly rootLinks: string[] = [];

  private constructor(names: string[], net: number) {
    this.names = names;
    this.net = net;
    this.addresses = names.map((_n, i) => `10.${net}.0.${i + 1}`);
  }

  /** Creates `count` namespaces, fully linked. Throws with the reason when not root or `ip netns` fails. */
  static create(count: number): NetnsLab {
    if (process.getuid?.() !== 0) throw new Error('partition tests need root (ip netns, veth pairs); run the suite as root');
    const tag = `${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
    const net = 200 + Math.floor(Math.random() * 50); // 10.200.x.x – 10.249.x.x: private, unlikely to clash
    const lab = new NetnsLab(Array.from({ length: count }, (_n, i) => `kvt${tag}n${i}`), net);
    try {
      lab.build();
    } catch (e) {
      lab.destroy();
      throw new Error(`cannot build the namespaces: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
    }
    return lab;
  }

  /** Address of namespace i's end of its link to namespace j (10.net.(10+pair).(1|2)). */
  private linkAddress(i: number, j: number): string {
    const [a, b] = i < j ? [i, j] : [j, i];
    const pair = a * this.names.length + b;
    return `10.${this.net}.${10 + pair}.${i === a ? 1 : 2}`;
  }

  private build(): void {
    const n = this.names.length;
    for (const [i, ns] of this.names.entries()) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${this.addresses[i]}/32`, 'dev', 'lo');
    }
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const [vi, vj] = [`p${i}to${j}`, `p${j}to${i}`];
        ip('link', 'add', vi, 'netns', this.names[i], 'type', 'veth', 'peer', 'name', vj, 'netns', this.names[j]);
        for (const [k, dev, peer] of [[i, vi, j], [j, vj, i]] as const) {
          ip('-n', this.names[k], 'addr', 'add', `${this.linkAddress(k, peer)}/24`, 'dev', dev);
          ip('-n', this.names[k], 'link', 'set', dev, 'up');
        }
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) this.routeTo(i, j);
    // the test's namespace reaches each service address over its own link
    for (const [i, ns] of this.names.entries()) {
      const root = `${ns.slice(0, 9)}r${i}`.slice(0, 15);
      ip('link', 'add', root, 'type', 'veth', 'peer', 'name', 'test0', 'netns', ns);
      this.rootLinks.push(root);
      ip('addr', 'add', `10.${this.net}.${100 + i}.1/24`, 'dev', root);
      ip('link', 'set', root, 'up');
      ip('-n', ns, 'addr', 'add', `10.${this.net}.${100 + i}.2/24`, 'dev', 'test0');
      ip('-n', ns, 'link', 'set', 'test0', 'up');
      ip('route', 'add', `${this.addresses[i]}/32`, 'via', `10.${this.net}.${100 + i}.2`);
    }
  }

  private routeTo(from: number, to: number): void {
    ip('-n', this.names[from], 'route', 'replace', `${this.addresses[to]}/32`, 'via', this.linkAddress(to, from), 'src', this.addresses[from]);
  }

  /** Cuts the link between namespaces i and j in both directions (blackhole routes). */
  cut(i: number, j: number): void {
    ip('-n', this.names[i], 'route', 'replace', 'blackhole', `${this.addresses[j]}/32`);
    ip('-n', this.names[j], 'route', 'replace', 'blackhole', `${this.addresses[i]}/32`);
  }

  heal(i: number, j: number): void {
    this.routeTo(i, j);
    this.routeTo(j, i);
  }

  /** Starts `command` inside namespace i (the process is `command` itself: `ip netns exec` execs it). */
  spawn(i: number, command: string, args: string[], options: SpawnOptions): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.names[i], command, ...args], options);
  }

  /** Removes every namespace (and with them the veths) and the test-side links. Never throws. */
  destroy(): void {
    for (const ns of this.names) {
      try {
        ip('netns', 'del', ns);
      } catch { /* not created, or already gone */ }
    }
    for (const link of this.rootLinks) {
      try {
        ip('link', 'del', link);
      } catch { /* removed with its peer's namespace */ }
    }
  }
}

// The C library (clients/c) and the Python module (clients/python) against
// real daemons and scripted fake servers. Both are driven through the same
// test driver modes (clients/c/test/kvtest.c and clients/python/kvtest.py
// print "PASS mode" / "FAIL what"); this file builds the C library with make,
// starts and stops the daemons by PID, kills and stops them under the
// clients, and checks from the server side what the clients sent.

import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, ErrorCode, consistencyOf, Flag } from '../src/protocol/index.ts';
import { launch, startDaemon, waitFor, writeDaemonConfig, type RunningDaemon } from './helpers/daemon.ts';
import { memoryStore, startFakeServer, type FakeServer } from './helpers/fake-server.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const C_DIR = join(ROOT, 'clients/c');
const C_DRIVER = join(C_DIR, 'build/kvtest');
const PY_DRIVER = join(ROOT, 'clients/python/kvtest.py');
const DRIVER_TIMEOUT_MS = 120_000;
/**
 * Where timeouts are not what a test checks, the clients get 10 s per server
 * and the daemons 5 s before a silent processor counts as hung: the tests
 * share two cores with the rest of the suite, and a loaded machine must not
 * turn into a client timeout or a processor restart.
 */
const CLIENT_ENV = { KV739_TIMEOUT_MS: '10000' };
const SUPERVISION = { heartbeatIntervalMs: 50, heartbeatMissLimit: 100 };

interface Driver {
  name: 'c' | 'python';
  command: string;
  args: string[];
}
const drivers: Driver[] = [
  { name: 'c', command: C_DRIVER, args: [] },
  { name: 'python', command: 'python3', args: [PY_DRIVER] },
];

function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: DRIVER_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      // code: the exit status, or a string such as 'ENOENT' when the program could not be started
      resolve({ code: error ? (error.code ?? null) : 0, stdout, stderr }),
    );
  });
}

// ---- build (once per run) and tools --------------------------------------------

let buildProblem: string | undefined;
let pythonProblem: string | undefined;

test.before(async () => {
  const cc = process.env.CC ?? 'cc';
  const which = await run('sh', ['-c', `command -v ${cc}`]);
  if (which.code !== 0) {
    buildProblem = `no C compiler: \`${cc}\` was not found (install gcc or clang, or set CC) — the C library cannot be built`;
  } else {
    const make = await run('make', ['-C', C_DIR, 'all', 'cxx-check']);
    if (make.code !== 0) {
      buildProblem = make.code === 'ENOENT'
        ? 'no `make` found: install make to build the C library'
        : `make -C clients/c failed:\n${make.stdout}\n${make.stderr}`;
    }
  }
  const py = await run('python3', ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)']);
  if (py.code !== 0) pythonProblem = py.code === 'ENOENT' ? 'no python3 found: the Python module cannot be tested' : 'python3 is older than 3.8';
});

function ready(t: ExecutionContext, d: Driver): boolean {
  const problem = d.name === 'c' ? buildProblem : pythonProblem;
  if (problem) t.fail(problem);
  return !problem;
}

/** Runs one driver mode to its end and asserts that it passed. */
async function expectPass(t: ExecutionContext, d: Driver, mode: string, servers: string[], env: Record<string, string> = {}) {
  const r = await run(d.command, [...d.args, mode, ...servers], { env: { ...CLIENT_ENV, ...env } });
  const out = `${r.stdout}${r.stderr}`;
  t.is(r.code, 0, `${d.name} ${mode} failed:\n${out}`);
  t.regex(r.stdout, new RegExp(`^PASS ${mode} \\(0 failures\\)$`, 'm'), out);
  return r;
}

/** An interactive driver (modes loop, idle): lines out, commands in. */
class Interactive {
  readonly child: ChildProcess;
  lines: string[] = [];
  exited: Promise<number | null>;
  private partial = '';

  constructor(d: Driver, mode: string, servers: string[], env: Record<string, string> = {}) {
    this.child = spawn(d.command, [...d.args, mode, ...servers], { env: { ...process.env, ...CLIENT_ENV, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const take = (chunk: Buffer) => {
      const text = this.partial + chunk.toString();
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** The ops count of the latest progress line. */
  ops(): number {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const m = /^ops (\d+) failures (\d+)/.exec(this.lines[i]!);
      if (m) return Number(m[1]);
    }
    return 0;
  }

  async opsAtLeast(n: number, what: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(`${what}: ${n} calls done (at ${this.ops()})\n${this.output()}`, () => this.ops() >= n, timeoutMs);
  }

  async line(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return waitFor(`a line matching ${pattern}\n${this.output()}`, () => this.lines.find((l) => pattern.test(l)), timeoutMs);
  }

  output(): string {
    return this.lines.slice(-40).join('\n');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid!, 'SIGKILL');
  }
}

// ---- shared daemons for the checks that do not stop a server ---------------------

let shared: RunningDaemon[] = [];
const address = (d: RunningDaemon, host = '127.0.0.1') => `${host}:${d.ports[0]}`;

test.before(async () => {
  shared = await Promise.all([startDaemon({ processors: 1, supervision: SUPERVISION }), startDaemon({ processors: 1, supervision: SUPERVISION })]);
});

test.after.always(async () => {
  await Promise.all(shared.map((d) => d.kill()));
});

/** 'c' / 'python' runs of one scenario: test.serial, as the drivers share the daemons and the cores. */
function both(title: string, body: (t: ExecutionContext, d: Driver) => Promise<void>): void {
  for (const d of drivers) {
    test.serial(`${d.name}: ${title}`, async (t) => {
      if (!ready(t, d)) return;
      await body(t, d);
    });
  }
}

test.serial('c: a program written only against CLIENT-API.md builds, links (static and shared) and runs; the header compiles as C++', async (t) => {
  if (!ready(t, drivers[0]!)) return;
  for (const program of ['contract-example', 'contract-example-shared']) {
    const r = await run(join(C_DIR, 'build', program), [address(shared[0]!), address(shared[1]!)]);
    t.is(r.code, 0, `${program}:\n${r.stdout}${r.stderr}`);
    t.regex(r.stdout, /^PASS contract-example/m);
  }
  const cxx = await run(join(C_DIR, 'build/header-cxx-check'), []);
  t.is(cxx.code, 0, cxx.stdout + cxx.stderr);
  t.regex(cxx.stdout, /^PASS header-cxx-check/m);
});

test.serial('c: the build directory is made by make from a clean tree and is git-ignored', async (t) => {
  if (!ready(t, drivers[0]!)) return;
  for (const f of ['lib739kv.a', 'lib739kv.so', 'kvtest', 'kvbench']) t.true(existsSync(join(C_DIR, 'build', f)), f);
  const ignored = await run('git', ['check-ignore', '-q', 'clients/c/build/lib739kv.a'], { cwd: ROOT });
  t.is(ignored.code, 0, 'clients/c/build/ is not git-ignored');
});

both('the contract on a real daemon (return codes, old values, limits, shutdown and init again), through localhost', async (t, d) => {
  await expectPass(t, d, 'contract', [`localhost:${shared[0]!.ports[0]}`, address(shared[1]!)]);
});

both('shutdown, then init with another list, three times', async (t, d) => {
  await expectPass(t, d, 'reinit', [address(shared[0]!), address(shared[1]!)]);
});

both('8 threads at once, some with lists of their own', async (t, d) => {
  await expectPass(t, d, 'threads', [address(shared[0]!), `localhost:${shared[0]!.ports[0]}`]);
});

both('8 threads have requests in flight at once on connections of their own (they do not queue on one socket)', async (t, d) => {
  // An in-memory store that holds each request back until 4 are waiting at
  // once (or 20 ms passed, for the last ones): a client that sent one request
  // at a time would never have more than one waiting.
  const store = memoryStore();
  let waiting: (() => void)[] = [];
  let mostWaiting = 0;
  const release = () => {
    const w = waiting;
    waiting = [];
    for (const go of w) go();
  };
  const fake = await startFakeServer(async (r) => {
    await new Promise<void>((go) => {
      waiting.push(go);
      mostWaiting = Math.max(mostWaiting, waiting.length);
      if (waiting.length >= 4) release();
      else setTimeout(release, 20);
    });
    return store(r);
  });
  try {
    await expectPass(t, d, 'threads', [fake.address, fake.address]);
    t.true(mostWaiting >= 4, `at most ${mostWaiting} requests were in flight at once`);
    t.true(fake.connections >= 4, `${fake.connections} connections`);
  } finally {
    await fake.close();
  }
});

both('a forked child and its parent both use the library at once, never the same socket', async (t, d) => {
  await expectPass(t, d, 'fork', [address(shared[1]!)]);
});

both("today's daemon accepts every consistency level with read-through", async (t, d) => {
  await expectPass(t, d, 'levels', [address(shared[0]!)]);
});

both('every invalid input is refused with -1 and nothing is sent', async (t, d) => {
  const fake = await startFakeServer(() => ({ reply: { command: Command.OK } }));
  try {
    await expectPass(t, d, 'invalid', [fake.address]);
    t.is(fake.connections, 0, 'the client connected to the server');
    t.is(fake.requests.length, 0, 'the client sent a request');
  } finally {
    await fake.close();
  }
});

both('consistency level and read-through travel in flag bits 1-2 and 0 (fake server echoes the flag), over IPv6', async (t, d) => {
  const echo = (r: { flag: number; key: string }) => ({ reply: { command: Command.OK, key: r.key, value: Buffer.from(String(r.flag)) } });
  const fakes = [await startFakeServer(echo), await startFakeServer(echo, '::1')];
  try {
    for (const fake of fakes) {
      await expectPass(t, d, 'flags', [fake.address]);
      const seen = new Set(fake.requests.map((r) => `${r.command}:${consistencyOf(r.flag)}:${r.flag & Flag.READ_THROUGH}`));
      for (const command of [Command.GET, Command.PUT, Command.DEL]) {
        for (let level = 0; level <= 3; level++) {
          for (const rt of [0, 1]) t.true(seen.has(`${command}:${level}:${rt}`), `command ${command} level ${level} read-through ${rt} on ${fake.address}`);
        }
      }
      t.true(fake.requests.every((r) => (r.flag & ~0b111) === 0), 'no other flag bit set');
    }
  } finally {
    await Promise.all(fakes.map((f) => f.close()));
  }
});

both('ERROR replies: SHUTTING_DOWN, TOO_MANY_CONNECTIONS and NO_QUORUM move to the next server; OUTCOME_UNKNOWN and the others fail without a retry', async (t, d) => {
  const first = await startFakeServer((r) => {
    const m = /^err-(\d+)$/.exec(r.key);
    if (!m) return { reply: { command: Command.OK, key: r.key, value: Buffer.from('first') } };
    const code = Number(m[1]);
    // TOO_MANY_CONNECTIONS as the daemon sends it: id 0, then the connection is closed
    const tooMany = code === ErrorCode.TOO_MANY_CONNECTIONS;
    return { reply: { command: Command.ERROR, param: BigInt(code), value: Buffer.from('injected'), ...(tooMany ? { id: 0n } : {}) }, close: tooMany };
  });
  const second = await startFakeServer((r) => ({ reply: { command: Command.OK, key: r.key, value: Buffer.from('second') } }));
  try {
    await expectPass(t, d, 'errors', [first.address, second.address]);
    const at = (f: FakeServer, key: string) => f.requests.filter((r) => r.key === key).length;
    for (const key of ['err-11', 'err-12', 'err-14']) {
      t.is(at(first, key), 3, `${key}: the first server got the PUT, the GET and the PUT with no other server`);
      t.is(at(second, key), 2, `${key}: both calls moved on to the second server`);
    }
    for (const key of ['err-13', 'err-7', 'err-9']) {
      t.is(at(first, key), 2, `${key}: each call asked the first server once`);
      t.is(at(second, key), 0, `${key}: no call was retried on another server`);
    }
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

both('a pooled connection the daemon closed as idle is replaced without a failure', async (t, d) => {
  const daemon = await startDaemon({ processors: 1, limits: { idleTimeoutMs: 200 }, supervision: SUPERVISION });
  const client = new Interactive(d, 'idle', [address(daemon)]);
  try {
    await client.line(/^waiting$/);
    const connections = async () => {
      const r = await daemon.admin({ op: 'status' });
      return r.status.groups[0].processors.reduce((n: number, p: { connections: number }) => n + p.connections, 0);
    };
    await waitFor('the daemon to close the idle connection', async () => (await connections()) === 0);
    client.send('go');
    t.is(await client.exited, 0, client.output());
    t.true(client.lines.includes('PASS idle (0 failures)'), client.output());
  } finally {
    client.kill();
    await daemon.kill();
  }
});

function state(d: RunningDaemon): string {
  return d.child.exitCode === null && d.child.signalCode === null ? 'running' : `exited (code ${d.child.exitCode}, signal ${d.child.signalCode})`;
}

/** Asserts that no call failed so far (a phase of a loop), naming the phase and the daemons' states. */
function noFailuresYet(t: ExecutionContext, client: Interactive, phase: string, daemons: RunningDaemon[]): void {
  const failed = client.lines.filter((l) => l.startsWith('call failed')).length;
  t.is(failed, 0, `${failed} calls failed ${phase}; daemons: ${daemons.map(state).join(', ')}\n${client.output()}`);
}

both('a server that resets each connection after its reply: every next call reconnects, none fails', async (t, d) => {
  const store = memoryStore();
  const fake = await startFakeServer((r) => ({ ...store(r), close: 'reset' }));
  const client = new Interactive(d, 'loop', [fake.address]);
  try {
    await client.opsAtLeast(200, 'calls on connections reset after each reply');
    client.send('quit');
    t.is(await client.exited, 0, client.output());
    t.regex(client.lines.join('\n'), /^done ops \d+ failures 0 /m, client.output());
    t.true(fake.connections >= 200, `${fake.connections} connections for 200 calls`);
  } finally {
    client.kill();
    await fake.close();
  }
});

both('kill -9 of the server in use: calls fail over; it is used again after it returns', async (t, d) => {
  const configs = [await writeDaemonConfig({ processors: 1, supervision: SUPERVISION }), await writeDaemonConfig({ processors: 1, supervision: SUPERVISION })];
  let [a, b] = await Promise.all(configs.map((c) => launch(c)));
  const client = new Interactive(d, 'loop', [address(a!), address(b!)]);
  try {
    await client.opsAtLeast(100, 'before the kill');
    noFailuresYet(t, client, 'before the kill', [a!, b!]);
    await a!.kill('SIGKILL');
    let mark = client.ops();
    await client.opsAtLeast(mark + 200, 'with the first server killed');
    noFailuresYet(t, client, 'with the first server killed', [a!, b!]);
    a = await launch(configs[0]!);
    mark = client.ops();
    await client.opsAtLeast(mark + 200, 'after the first server returned');
    noFailuresYet(t, client, 'after the first server returned', [a, b!]);
    await b!.kill('SIGKILL');
    mark = client.ops();
    await client.opsAtLeast(mark + 200, 'with the second server killed');
    noFailuresYet(t, client, 'with the second server killed', [a, b!]);
    // only the restarted server is up: the check goes through it
    client.send('check failover-check');
    await client.line(/^checked (ok|fail)$/);
    const alive = `first server ${state(a!)}, second ${state(b!)}; first's output:\n${a!.output().slice(-2000)}`;
    t.true(client.lines.includes('checked ok'), `${client.output()}\n${alive}`);
    client.send('quit');
    t.is(await client.exited, 0, client.output());
    t.regex(client.lines.join('\n'), /^done ops \d+ failures 0 /m, client.output());
    t.log(client.lines.find((l) => l.startsWith('done')));
  } finally {
    client.kill();
    await Promise.all([a!.kill(), b!.kill()]);
  }
});

both('a hung server (SIGSTOP) costs one timeout, not a hang; KV739_TIMEOUT_MS sets it', async (t, d) => {
  const [a, b] = await Promise.all([startDaemon({ processors: 1, supervision: SUPERVISION }), startDaemon({ processors: 1, supervision: SUPERVISION })]);
  const client = new Interactive(d, 'loop', [address(a), address(b)], { KV739_TIMEOUT_MS: '3000' });
  try {
    await client.opsAtLeast(100, 'before the stop');
    process.kill(a.pid, 'SIGSTOP');
    const mark = client.ops();
    // a call per timeout would need 900 s for these; a hang never gets there
    await client.opsAtLeast(mark + 300, 'with the first server stopped', 60_000);
    client.send('quit');
    t.is(await client.exited, 0, client.output());
    const done = client.lines.find((l) => l.startsWith('done')) ?? '';
    t.regex(done, /failures 0 /, client.output());
    // the call that met the stopped server waited for the timeout: proof that it was in use
    t.true(Number(/slowest_ms (\d+)/.exec(done)?.[1]) >= 2900, done);
    t.log(done);
  } finally {
    client.kill();
    process.kill(a.pid, 'SIGCONT');
    await Promise.all([a.kill(), b.kill()]);
  }
});

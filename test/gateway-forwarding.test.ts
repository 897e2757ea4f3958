// The gateway in this process in front of scripted daemons (real TCP, real
// codec), where the test decides which daemon answers what and when: flag
// bits forwarded unchanged, replies in request order, what happens to reads,
// written writes and never-written writes when a daemon dies or does not
// answer, SHUT_DOWN and invalid requests answered by the gateway itself.

import test from 'ava';
import { createServer } from 'node:net';
import { Command, ConsistencyLevel, ErrorCode, Flag, withConsistency, type Frame, type FrameFields } from '../src/protocol/index.ts';
import { scriptedServer, type Answer, type ScriptedServer } from './helpers/scripted-server.ts';
import { inProcessGateway } from './helpers/gateway.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';
import { freePorts, waitFor } from './helpers/daemon.ts';
import type { Backend } from '../src/gateway/gateway.ts';

const ok = (value = 'v'): FrameFields => ({ command: Command.OK, value: Buffer.from(value) });

/** A scripted daemon that answers CHK (the gateway's probe) and hands every other request to `answer`. */
function daemon(answer: (f: Frame) => Answer, port = 0): Promise<ScriptedServer> {
  return scriptedServer((f) => (f.command === Command.CHK ? { command: Command.OK } : answer(f)), port);
}

const backend = (id: string, s: { port: number }): Backend => ({ id, host: '127.0.0.1', port: s.port, adminPort: 1 });
const forwarded = (s: ScriptedServer) => s.received.filter((f) => f.command !== Command.CHK);
const errorCode = (f: Frame) => (f.command === Command.ERROR ? Number(f.param) : 0);

test('both client styles; replies keep request order per connection; flag bits and ids pass unchanged', async (t) => {
  // the daemon answers GETs of keys starting with "slow" last, so replies come back out of order
  const held: (() => void)[] = [];
  const d = await daemon((f) => {
    if (f.key.startsWith('slow')) return new Promise((r) => held.push(() => r(ok(f.key))));
    const reply = ok(f.key);
    if (f.key === 'release') for (const h of held.splice(0)) h();
    return reply;
  });
  const { gateway, port } = await inProcessGateway([backend('a', d)]);
  try {
    await waitFor('daemon up', () => gateway.status().daemons[0]!.up);
    const once = await requestOnce(port, { id: 77n, command: Command.GET, key: 'one' });
    t.is(once.id, 77n);
    t.is(Buffer.from(once.value).toString(), 'one');
    const conn = await PersistentConnection.open(port);
    const flag = withConsistency(Flag.READ_THROUGH, ConsistencyLevel.MAJORITY) | (1 << 7);
    const sent = ['slow1', 'fast1', 'slow2', 'fast2', 'release'].map((key, i) => conn.send({ id: BigInt(1000 + i), command: Command.GET, key, flag }));
    const replies = await Promise.all(sent);
    t.deepEqual(replies.map((r) => Buffer.from(r.value).toString()), ['slow1', 'fast1', 'slow2', 'fast2', 'release']);
    t.deepEqual(conn.order, [1000n, 1001n, 1002n, 1003n, 1004n], 'replies leave in request order');
    t.true(forwarded(d).filter((f) => f.key !== 'one').every((f) => f.flag === flag), 'flag word forwarded unchanged');
    conn.close();
  } finally {
    await gateway.stop();
    await d.close();
  }
});

test('SHUT_DOWN, invalid keys and unknown commands are answered by the gateway; nothing reaches a daemon', async (t) => {
  const d = await daemon(() => ok());
  const { gateway, port } = await inProcessGateway([backend('a', d)]);
  try {
    await waitFor('daemon up', () => gateway.status().daemons[0]!.up);
    t.is(errorCode(await requestOnce(port, { id: 5n, command: Command.SHUT_DOWN })), ErrorCode.NOT_ALLOWED);
    t.is(errorCode(await requestOnce(port, { command: Command.GET, key: 'a[b]' })), ErrorCode.KEY_BAD_CHAR);
    t.is(errorCode(await requestOnce(port, { command: 42 })), ErrorCode.UNKNOWN_COMMAND);
    t.deepEqual(forwarded(d), []);
  } finally {
    await gateway.stop();
    await d.close();
  }
});

test('a daemon dies with requests on it: the GET moves on, the written PUT gets OUTCOME_UNKNOWN, the never-written PUT is sent elsewhere', async (t) => {
  // a holds everything it gets; b answers at once but is not there at first
  const a = await daemon(() => new Promise(() => {}));
  const [bPort] = await freePorts(1);
  const { gateway, port } = await inProcessGateway(
    [backend('a', a), { id: 'b', host: '127.0.0.1', port: bPort!, adminPort: 1 }],
    { connectionsPerDaemon: 1, maxInFlightPerDaemonConnection: 2, reconnectBackoffInitialMs: 10, reconnectBackoffMaxMs: 20 },
  );
  let b: ScriptedServer | undefined;
  try {
    await waitFor('a up', () => gateway.status().daemons[0]!.up);
    const conn = await PersistentConnection.open(port);
    const written = conn.send({ command: Command.PUT, key: 'x', value: Buffer.from('1') });
    const read = conn.send({ command: Command.GET, key: 'g' });
    const unsent = conn.send({ command: Command.PUT, key: 'y', value: Buffer.from('2') });
    // a has the PUT and the GET; its connection is full, so the second PUT waits in the gateway
    await waitFor('a has two requests', () => forwarded(a).length === 2);
    t.is(gateway.status().daemons[0]!.backlog, 1);
    b = await daemon((f) => ({ command: Command.NO_VAL, key: f.key }), bPort);
    await waitFor('b up', () => gateway.status().daemons[1]!.up);
    await a.close();
    t.is(errorCode(await written), ErrorCode.OUTCOME_UNKNOWN);
    t.is((await read).command, Command.NO_VAL);
    t.is((await unsent).command, Command.NO_VAL);
    t.deepEqual(forwarded(b).map((f) => f.key).sort(), ['g', 'y'], 'only the GET and the never-written PUT went to b');
    conn.close();
  } finally {
    await gateway.stop();
    await Promise.all([a.close(), b?.close()]);
  }
});

test('a daemon that answers CHK but not a request: after requestTimeoutMs the GET moves on and the PUT gets OUTCOME_UNKNOWN', async (t) => {
  const stuck = await daemon(() => null);
  const good = await daemon((f) => ok(`good:${f.key}`));
  // the timeout is well above what the good daemon needs on a loaded machine; the stuck one never answers
  const { gateway, port } = await inProcessGateway([backend('stuck', stuck), backend('good', good)], { requestTimeoutMs: 1000, rejoinAfterMs: 0 });
  try {
    await waitFor('both up', () => gateway.status().daemons.every((d) => d.up));
    // find one key of each kind whose home is the stuck daemon: send until the stuck one has a GET and a PUT
    const conn = await PersistentConnection.open(port);
    const results: Promise<Frame>[] = [];
    for (let i = 0; i < 20; i++) {
      results.push(conn.send({ command: Command.GET, key: `k${i}` }));
      results.push(conn.send({ command: Command.PUT, key: `k${i}`, value: Buffer.from('v') }));
    }
    const replies = await Promise.all(results);
    const stuckKeys = new Set(forwarded(stuck).map((f) => f.key));
    t.true(stuckKeys.size > 0 && stuckKeys.size < 20, 'keys spread over both daemons');
    replies.forEach((r, i) => {
      const key = `k${i >> 1}`;
      const isGet = i % 2 === 0;
      if (isGet) t.is(Buffer.from(r.value).toString(), `good:${key}`, `GET ${key} answered by the good daemon`);
      else if (stuckKeys.has(key)) t.is(errorCode(r), ErrorCode.OUTCOME_UNKNOWN, `PUT ${key}`);
      else t.is(r.command, Command.OK);
    });
    conn.close();
  } finally {
    await gateway.stop();
    await Promise.all([stuck.close(), good.close()]);
  }
});

test('no daemon up: a request waits for one, and gets SHUTTING_DOWN when none comes within requestTimeoutMs', async (t) => {
  const [p] = await freePorts(1);
  const { gateway, port } = await inProcessGateway([{ id: 'a', host: '127.0.0.1', port: p!, adminPort: 1 }], { requestTimeoutMs: 2000, reconnectBackoffInitialMs: 10, reconnectBackoffMaxMs: 20 });
  let d: ScriptedServer | undefined;
  try {
    t.is(errorCode(await requestOnce(port, { command: Command.GET, key: 'k' })), ErrorCode.SHUTTING_DOWN);
    const waiting = requestOnce(port, { command: Command.GET, key: 'k' });
    d = await daemon(() => ok('late'), p);
    t.is(Buffer.from((await waiting).value).toString(), 'late');
  } finally {
    await gateway.stop();
    await d?.close();
  }
});

test('a daemon refusing work (SHUTTING_DOWN, NO_QUORUM) sends the request to another; nothing was applied', async (t) => {
  const refusing = await daemon(() => ({ command: Command.ERROR, param: BigInt(ErrorCode.NO_QUORUM) }));
  const good = await daemon(() => ok('good'));
  const { gateway, port } = await inProcessGateway([backend('r', refusing), backend('g', good)]);
  try {
    await waitFor('both up', () => gateway.status().daemons.every((d) => d.up));
    const conn = await PersistentConnection.open(port);
    const replies = await Promise.all(Array.from({ length: 10 }, (_x, i) => conn.send({ command: Command.PUT, key: `p${i}`, value: Buffer.from('v') })));
    t.true(forwarded(refusing).length > 0);
    t.true(replies.every((r) => Buffer.from(r.value).toString() === 'good'));
    conn.close();
  } finally {
    await gateway.stop();
    await Promise.all([refusing.close(), good.close()]);
  }
});

test('the leader\'s cluster view: a daemon it flags gets no keys while another is up, and gets them back when the flag clears', async (t) => {
  const a = await daemon(() => ok('a'));
  const b = await daemon(() => ok('b'));
  // a's admin port answers as the leader would; the test decides what it says about b
  let bState: object = { id: 'b', role: 'unreachable', status: null };
  const admin = createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => {
      const cluster = { role: 'leader', leaderId: 'a', daemons: [{ id: 'a', role: 'leader', status: { processorsAlive: 1, degradedGroups: [] } }, bState] };
      s.end(JSON.stringify({ ok: true, status: { cluster } }) + '\n');
    });
  });
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  const adminPort = (admin.address() as { port: number }).port;
  const { gateway, port } = await inProcessGateway(
    [{ id: 'a', host: '127.0.0.1', port: a.port, adminPort }, { id: 'b', host: '127.0.0.1', port: b.port, adminPort }],
    { clusterViewIntervalMs: 20, rejoinAfterMs: 0 },
  );
  try {
    await waitFor('b flagged', () => gateway.status().daemons[1]!.suspect);
    const conn = await PersistentConnection.open(port);
    const keys = Array.from({ length: 40 }, (_x, i) => `cv${i}`);
    const flagged = await Promise.all(keys.map((key) => conn.send({ command: Command.GET, key })));
    t.true(flagged.every((r) => Buffer.from(r.value).toString() === 'a'), 'every key on a while b is flagged');
    bState = { id: 'b', role: 'follower', status: { processorsAlive: 1, degradedGroups: [] } };
    await waitFor('b cleared', () => !gateway.status().daemons[1]!.suspect);
    const cleared = await Promise.all(keys.map((key) => conn.send({ command: Command.GET, key })));
    t.true(cleared.some((r) => Buffer.from(r.value).toString() === 'b'), 'b has its keys back');
    conn.close();
  } finally {
    await gateway.stop();
    await Promise.all([a.close(), b.close(), new Promise((r) => admin.close(r))]);
  }
});

test('a daemon that hangs (answers nothing, not even CHK) is taken out after probeTimeoutMs: its GETs move on, its written PUTs get OUTCOME_UNKNOWN', async (t) => {
  let hung = false;
  const a = await scriptedServer((f) => (hung ? null : f.command === Command.CHK ? { command: Command.OK } : ok('a')));
  const b = await daemon(() => ok('b'));
  // requestTimeoutMs far above the test's length: only the probe can end the wait
  const { gateway, port } = await inProcessGateway([backend('a', a), backend('b', b)], { requestTimeoutMs: 600_000, probeTimeoutMs: 300 });
  try {
    const conn = await PersistentConnection.open(port);
    const keys = Array.from({ length: 20 }, (_x, i) => `h${i}`);
    const before = await Promise.all(keys.map((key) => conn.send({ command: Command.GET, key })));
    const onA = new Set(keys.filter((_k, i) => Buffer.from(before[i]!.value).toString() === 'a'));
    t.true(onA.size > 0 && onA.size < keys.length);
    hung = true;
    const gets = keys.map((key) => conn.send({ command: Command.GET, key }));
    const puts = keys.map((key) => conn.send({ command: Command.PUT, key, value: Buffer.from('v') }));
    t.true((await Promise.all(gets)).every((r) => Buffer.from(r.value).toString() === 'b'), 'every GET answered, by b');
    (await Promise.all(puts)).forEach((r, i) => {
      if (onA.has(keys[i]!)) t.is(errorCode(r), ErrorCode.OUTCOME_UNKNOWN, `PUT ${keys[i]} written to the hung daemon`);
      else t.is(Buffer.from(r.value).toString(), 'b');
    });
    t.false(gateway.status().daemons[0]!.up);
    conn.close();
  } finally {
    await gateway.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

test('limits: past maxInFlightPerClientConnection a request gets TOO_MANY_IN_FLIGHT (in its place in the order); past maxClientConnections a connection gets TOO_MANY_CONNECTIONS', async (t) => {
  const held: (() => void)[] = [];
  const d = await daemon((f) => new Promise((r) => held.push(() => r(ok(f.key)))));
  const { gateway, port } = await inProcessGateway([backend('a', d)], { maxInFlightPerClientConnection: 2, maxClientConnections: 1 });
  try {
    const conn = await PersistentConnection.open(port);
    const replies = ['l1', 'l2', 'l3', 'l4'].map((key) => conn.send({ command: Command.GET, key }));
    await waitFor('two requests at the daemon', () => held.length === 2);
    t.is(errorCode(await requestOnce(port, { command: Command.CHK })), ErrorCode.TOO_MANY_CONNECTIONS);
    for (const h of held.splice(0)) h();
    const [r1, r2, r3, r4] = await Promise.all(replies);
    t.deepEqual([r1, r2].map((r) => Buffer.from(r!.value).toString()), ['l1', 'l2']);
    t.deepEqual([r3, r4].map((r) => errorCode(r!)), [ErrorCode.TOO_MANY_IN_FLIGHT, ErrorCode.TOO_MANY_IN_FLIGHT]);
    t.is(conn.order.length, 4);
    t.deepEqual(forwarded(d).map((f) => f.key).sort(), ['l1', 'l2'], 'the refused requests never reached the daemon');
    conn.close();
  } finally {
    await gateway.stop();
    await d.close();
  }
});

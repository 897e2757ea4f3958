// The authenticated peer transport over real loopback TCP: nodes connect
// pairwise and exchange payloads in order, large payloads pass up to the
// limit, a node with the wrong secret gets nothing, malformed or forged input
// is dropped with a log line while the good peers go on, a restarted peer is
// reconnected, and the secret file is created private and reused.
import test from 'ava';
import { type KeyObject, createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSecret, parseSecret, PeerTransport, type TransportOptions } from '../src/cluster/transport/index.ts';
import { encodeFrame, type Frame, FrameDecoder, FrameType, PEER_PROTOCOL_VERSION } from '../src/cluster/transport/framing.ts';
import {
  computeProof,
  decodeHello,
  deriveSessionKeys,
  encodeAuth,
  encodeHello,
  membershipDigest,
  sealHeader,
  SEALED_OVERHEAD_BYTES,
} from '../src/cluster/transport/handshake.ts';
import { freePorts, waitFor } from './helpers/daemon.ts';

type LogEntry = { level: string; msg: string } & Record<string, unknown>;

interface Node {
  id: string;
  port: number;
  transport: PeerTransport;
  logs: LogEntry[];
  /** Payloads received, as strings, by sender id. */
  received: Map<string, string[]>;
  receivedBuffers: Array<{ from: string; payload: Buffer }>;
}

const SECRET = randomBytes(32);

function startNode(id: string, port: number, peers: Array<{ id: string; port: number }>, extra: Partial<TransportOptions> = {}): Promise<Node> {
  const logs: LogEntry[] = [];
  const transport = new PeerTransport({
    selfId: id,
    host: '127.0.0.1',
    port,
    peers: peers.filter((p) => p.id !== id).map((p) => ({ id: p.id, host: '127.0.0.1', port: p.port })),
    secret: SECRET,
    log: (level, msg, fields) => logs.push({ level, msg, ...fields }),
    reconnectBackoffInitialMs: 20,
    reconnectBackoffMaxMs: 200,
    heartbeatIntervalMs: 200,
    idleTimeoutMs: 2_000,
    ...extra,
  });
  const node: Node = { id, port, transport, logs, received: new Map(), receivedBuffers: [] };
  transport.on('message', (from, payload) => {
    node.receivedBuffers.push({ from, payload });
    const list = node.received.get(from) ?? [];
    list.push(payload.length < 100 ? payload.toString() : `<${payload.length} bytes>`);
    node.received.set(from, list);
  });
  return transport.start().then(() => node);
}

async function startCluster(ids: string[], extra: Partial<TransportOptions> = {}) {
  const ports = await freePorts(ids.length);
  const members = ids.map((id, i) => ({ id, port: ports[i] }));
  const nodes = await Promise.all(members.map((m) => startNode(m.id, m.port, members, extra)));
  return { members, nodes };
}

const allConnected = (nodes: Node[], expected: number) => nodes.every((n) => n.transport.connected().length === expected);

function hasLog(node: Node, match: Record<string, unknown>): LogEntry | undefined {
  return node.logs.find((l) => Object.entries(match).every(([k, v]) => (v instanceof RegExp ? v.test(String(l[k])) : l[k] === v)));
}

test('three transports connect pairwise and deliver payloads both ways, in order per pair', async (t) => {
  const { nodes } = await startCluster(['n1', 'n2', 'n3']);
  try {
    await waitFor('full mesh', () => allConnected(nodes, 2));
    t.deepEqual(nodes[0].transport.connected(), ['n2', 'n3']);
    const perPair = 300;
    for (let i = 0; i < perPair; i++) {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue;
          t.true(from.transport.send(to.id, Buffer.from(`${from.id}>${to.id}#${i}`)), `send ${from.id}>${to.id}#${i}`);
        }
      }
    }
    await waitFor('every payload delivered', () => nodes.every((n) => [...n.received.values()].reduce((s, l) => s + l.length, 0) === 2 * perPair));
    for (const to of nodes) {
      for (const from of nodes) {
        if (from === to) continue;
        const expected = Array.from({ length: perPair }, (_v, i) => `${from.id}>${to.id}#${i}`);
        t.deepEqual(to.received.get(from.id), expected, `${from.id} to ${to.id} in order`);
      }
    }
    t.false(nodes[0].transport.send('nobody', Buffer.from('x')), 'an unknown peer is not connected');
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('payloads up to maxPayloadBytes arrive intact; one byte more is refused by send()', async (t) => {
  const maxFrameBytes = 2 * 1024 * 1024;
  const { nodes } = await startCluster(['a', 'b'], { maxFrameBytes, maxWriteBufferBytes: 4 * maxFrameBytes });
  const [a, b] = nodes;
  try {
    await waitFor('connected', () => allConnected(nodes, 1));
    const largest = a.transport.maxPayloadBytes;
    t.is(largest, maxFrameBytes - SEALED_OVERHEAD_BYTES);
    const big1 = randomBytes(largest);
    const big2 = randomBytes(largest - 1);
    t.true(a.transport.send('b', big1));
    t.true(b.transport.send('a', big2));
    t.false(a.transport.send('b', Buffer.alloc(largest + 1)), 'over the limit: refused, not sent');
    t.true(a.transport.send('b', Buffer.from('after')));
    await waitFor('large payloads delivered', () => b.receivedBuffers.length === 2 && a.receivedBuffers.length === 1);
    t.true(b.receivedBuffers[0].payload.equals(big1));
    t.is(b.receivedBuffers[1].payload.toString(), 'after');
    t.true(a.receivedBuffers[0].payload.equals(big2));
    t.deepEqual(a.transport.connected(), ['b'], 'the connection survived');
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('send() refuses, rather than queues, past maxWriteBufferBytes', async (t) => {
  const maxFrameBytes = 1024 * 1024;
  const { nodes } = await startCluster(['a', 'b'], { maxFrameBytes, maxWriteBufferBytes: maxFrameBytes });
  const [a, b] = nodes;
  try {
    await waitFor('connected', () => allConnected(nodes, 1));
    // Frames sent in one event-loop turn stay in the connection's buffer until the turn ends.
    t.true(a.transport.send('b', Buffer.alloc(a.transport.maxPayloadBytes)));
    t.false(a.transport.send('b', Buffer.from('one too many')), 'the buffer is full: refused');
    await waitFor('the full frame delivered', () => b.receivedBuffers.length === 1);
    t.true(a.transport.send('b', Buffer.from('room again')));
    await waitFor('next payload delivered', () => b.receivedBuffers.length === 2);
    t.is(b.receivedBuffers[1].payload.toString(), 'room again');
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('a node with the wrong secret is refused on both sides, logged, and gets no payload', async (t) => {
  // n1 and n2 share the secret. n0 (dials them, lower id) and n3 (dialed by them) each have another one.
  const ports = await freePorts(4);
  const members = ['n0', 'n1', 'n2', 'n3'].map((id, i) => ({ id, port: ports[i] }));
  const good = await Promise.all([startNode('n1', ports[1], members), startNode('n2', ports[2], members)]);
  const bad = await Promise.all([
    startNode('n0', ports[0], members.slice(0, 3), { secret: randomBytes(32) }),
    startNode('n3', ports[3], members.slice(1), { secret: randomBytes(32) }),
  ]);
  const [n1, n2] = good;
  const [n0, n3] = bad;
  try {
    await waitFor('good pair connected', () => n1.transport.connected().includes('n2'));
    await waitFor('refusals logged on every side', () =>
      hasLog(n1, { level: 'warn', msg: 'peer handshake refused', reason: 'bad-auth', peer: 'n0', remote: /^127\.0\.0\.1:\d+$/ }) &&
      hasLog(n2, { level: 'warn', msg: 'peer handshake refused', reason: 'bad-auth', peer: 'n0' }) &&
      hasLog(n0, { level: 'warn', msg: 'peer refused our handshake', reason: 'bad-auth', peer: 'n1', remote: `127.0.0.1:${ports[1]}` }) &&
      hasLog(n3, { level: 'warn', msg: 'peer handshake refused', reason: 'bad-auth', peer: 'n1' }) &&
      hasLog(n1, { level: 'warn', msg: 'peer refused our handshake', reason: 'bad-auth', peer: 'n3' }),
    );
    for (let i = 0; i < 20; i++) {
      for (const g of good) {
        t.false(g.transport.send('n0', Buffer.from('secret stuff')));
        t.false(g.transport.send('n3', Buffer.from('secret stuff')));
      }
      t.true(n1.transport.send('n2', Buffer.from(`m${i}`)));
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor('good traffic delivered', () => (n2.received.get('n1') ?? []).length === 20);
    t.deepEqual(n0.transport.connected(), []);
    t.deepEqual(n3.transport.connected(), []);
    t.deepEqual(n1.transport.connected(), ['n2']);
    t.is(n0.receivedBuffers.length + n3.receivedBuffers.length, 0, 'no payload reached a node without the secret');
  } finally {
    await Promise.all([...good, ...bad].map((n) => n.transport.stop()));
  }
});

/** The membership of the raw-peer test's cluster (n0 played by raw sockets, n1, n2). */
const MEMBERSHIP = membershipDigest(['n0', 'n1', 'n2']);

test('a peer whose config lists other daemons is refused once it proved the secret, logged on both sides, and gets no payload', async (t) => {
  const ports = await freePorts(4);
  const members = ['n0', 'n1', 'n2'].map((id, i) => ({ id, port: ports[i] }));
  const agree = await Promise.all([startNode('n0', ports[0], members), startNode('n1', ports[1], members)]);
  // n2's config has one daemon more (never started): majorities would be counted over other sets
  const n2 = await startNode('n2', ports[2], [...members, { id: 'n3', port: ports[3] }]);
  const [n0, n1] = agree;
  try {
    await waitFor('the agreeing pair connected', () => n0.transport.connected().includes('n1'));
    await waitFor('membership refusals logged on both sides', () =>
      hasLog(n2, { level: 'warn', msg: 'peer handshake refused', reason: 'membership', peer: 'n0' }) &&
      hasLog(n2, { level: 'warn', msg: 'peer handshake refused', reason: 'membership', peer: 'n1' }) &&
      hasLog(n0, { level: 'warn', msg: 'peer refused our handshake', reason: 'membership', peer: 'n2' }),
    );
    t.false(n0.transport.send('n2', Buffer.from('data')));
    t.deepEqual(n2.transport.connected(), []);
    t.deepEqual(n0.transport.connected(), ['n1']);
    t.is(n2.receivedBuffers.length, 0);
  } finally {
    await Promise.all([...agree, n2].map((n) => n.transport.stop()));
  }
});

/** A hand-driven peer on a raw socket, speaking (or mangling) the protocol from the test. */
class RawPeer {
  readonly socket: Socket;
  /** host:port of this end, as the node logs it (kept: a closed socket forgets its port). */
  readonly localAddress: string;
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024);

  private constructor(socket: Socket) {
    this.socket = socket;
    this.localAddress = `${socket.localAddress}:${socket.localPort}`;
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk, (f) => (this.frames.push({ ...f, raw: Buffer.from(f.raw) }), true)));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static open(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }


  /** Completes the handshake as dialer `id`; returns the session keys and the next sequence number to use. */
  async handshake(id: string, secret: Buffer, membership = MEMBERSHIP) {
    const ownHello = encodeHello(id, randomBytes(32), membership);
    this.socket.write(ownHello);
    const theirHello = await waitFor('HELLO', () => this.frames.find((f) => f.type === FrameType.HELLO));
    t_assert(!('error' in decodeHello(theirHello.body)), 'the node sends a well-formed HELLO');
    this.socket.write(encodeAuth(computeProof(secret, 'dialer', ownHello, theirHello.raw)));
    const auth = await waitFor('AUTH', () => this.frames.find((f) => f.type === FrameType.AUTH));
    t_assert(auth.body.equals(computeProof(secret, 'acceptor', ownHello, theirHello.raw)), 'the node proves the secret');
    return deriveSessionKeys(secret, ownHello, theirHello.raw).dialerToAcceptor;
  }

  sendData(key: KeyObject, seq: bigint, payload: Buffer, mangle?: (frame: Buffer) => void): void {
    const frame = Buffer.concat([sealHeader(FrameType.DATA, seq, key, payload), payload]);
    mangle?.(frame);
    this.socket.write(frame);
  }
}

function t_assert(condition: boolean, what: string): void {
  if (!condition) throw new Error(`assertion failed: ${what}`);
}

function frameWith(version: number, type: number, body: Buffer): Buffer {
  const f = encodeFrame(FrameType.HELLO, body);
  f.writeUInt8(version, 4);
  f.writeUInt8(type, 5);
  return f;
}

test('malformed, forged and replayed peer input is dropped and logged while the good peers keep exchanging', async (t) => {
  // n0 is a member slot with no transport behind it: the raw sockets play it (or strangers).
  const ports = await freePorts(3);
  const members = ['n0', 'n1', 'n2'].map((id, i) => ({ id, port: ports[i] }));
  const nodes = await Promise.all([startNode('n1', ports[1], members, { handshakeTimeoutMs: 400 }), startNode('n2', ports[2], members)]);
  const [n1, n2] = nodes;
  let sent = 0;
  const traffic = setInterval(() => {
    if (n2.transport.send('n1', Buffer.from(`tick${sent}`))) sent++;
  }, 5);
  const dropped = async (raw: RawPeer, reason: string, msg = 'peer handshake refused') => {
    await waitFor(`${reason} logged`, () => hasLog(n1, { level: 'warn', msg, reason, remote: raw.localAddress }));
    await waitFor(`${reason} connection closed`, () => raw.closed);
    t.pass(reason);
  };
  try {
    await waitFor('n1-n2 connected', () => allConnected(nodes, 1));

    const garbage = await RawPeer.open(n1.port);
    garbage.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await dropped(garbage, 'frame-too-large');

    const zeroLength = await RawPeer.open(n1.port);
    zeroLength.socket.write(Buffer.from([0, 0, 0, 0, 1, 1]));
    await dropped(zeroLength, 'frame-too-short');

    const hugePreAuth = await RawPeer.open(n1.port);
    hugePreAuth.socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, PEER_PROTOCOL_VERSION, FrameType.HELLO]));
    await dropped(hugePreAuth, 'frame-too-large');

    const truncated = await RawPeer.open(n1.port);
    truncated.socket.end(encodeHello('n0', randomBytes(32), MEMBERSHIP).subarray(0, 20));
    await dropped(truncated, 'truncated-frame', 'peer connection dropped');

    const wrongVersion = await RawPeer.open(n1.port);
    wrongVersion.socket.write(frameWith(PEER_PROTOCOL_VERSION + 1, FrameType.HELLO, encodeHello('n0', randomBytes(32), MEMBERSHIP).subarray(6)));
    await dropped(wrongVersion, 'bad-version');
    t.truthy(wrongVersion.frames.find((f) => f.type === FrameType.REJECT && f.body[0] === 3), 'told bad-version in a REJECT');

    const unknownType = await RawPeer.open(n1.port);
    unknownType.socket.write(frameWith(PEER_PROTOCOL_VERSION, 99, Buffer.alloc(4)));
    await dropped(unknownType, 'unknown-type');

    const dataFirst = await RawPeer.open(n1.port);
    dataFirst.sendData(createSecretKey(randomBytes(32)), 0n, Buffer.from('let me in'));
    await dropped(dataFirst, 'data-before-auth');

    const stranger = await RawPeer.open(n1.port);
    stranger.socket.write(encodeHello('intruder', randomBytes(32), MEMBERSHIP));
    await dropped(stranger, 'unknown-id');

    const silent = await RawPeer.open(n1.port);
    await dropped(silent, 'handshake-timeout');

    // A member with the right secret: a good frame is delivered, then a flipped tag bit drops the connection.
    const forger = await RawPeer.open(n1.port);
    const key = await forger.handshake('n0', SECRET);
    await waitFor('n0 up on n1', () => n1.transport.connected().includes('n0'));
    forger.sendData(key, 0n, Buffer.from('genuine'));
    await waitFor('genuine payload delivered', () => n1.received.get('n0')?.includes('genuine'));
    forger.sendData(key, 1n, Buffer.from('forged'), (frame) => (frame[6 + 8] ^= 0x01));
    await dropped(forger, 'bad-mac', 'peer connection dropped');

    // A valid frame sent twice: the replay is refused by its sequence number.
    const replayer = await RawPeer.open(n1.port);
    const key2 = await replayer.handshake('n0', SECRET);
    replayer.sendData(key2, 0n, Buffer.from('once'));
    replayer.sendData(key2, 0n, Buffer.from('once'));
    await dropped(replayer, 'bad-seq', 'peer connection dropped');

    // An oversized length after authentication is refused from its 4 length bytes.
    const oversized = await RawPeer.open(n1.port);
    await oversized.handshake('n0', SECRET);
    oversized.socket.write(Buffer.from([0x01, 0x00, 0x00, 0x00, PEER_PROTOCOL_VERSION, FrameType.DATA]));
    await dropped(oversized, 'frame-too-large', 'peer connection dropped');

    t.deepEqual(n1.received.get('n0'), ['genuine', 'once'], 'nothing forged, replayed or malformed was delivered');
    const before = sent;
    await waitFor('good traffic still flowing', () => (n1.received.get('n2') ?? []).length >= before + 10);
    t.deepEqual(n1.transport.connected(), ['n2']);
    const ticks = n1.received.get('n2')!;
    t.deepEqual(ticks, ticks.map((_v, i) => `tick${i}`), 'in order, none lost on the good link');
  } finally {
    clearInterval(traffic);
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('a stopped and restarted peer is reconnected, whichever side dials', async (t) => {
  const { members, nodes } = await startCluster(['n1', 'n2', 'n3']);
  const [n1, , n3] = nodes;
  let n2 = nodes[1];
  const downs: string[] = [];
  n1.transport.on('peer-down', (id) => downs.push(`n1:${id}`));
  n3.transport.on('peer-down', (id) => downs.push(`n3:${id}`));
  try {
    await waitFor('full mesh', () => allConnected(nodes, 2));
    await n2.transport.stop();
    await n2.transport.stop(); // idempotent
    await waitFor('peer-down seen by both', () => downs.includes('n1:n2') && downs.includes('n3:n2'));
    t.deepEqual(n1.transport.connected(), ['n3']);
    t.false(n1.transport.send('n2', Buffer.from('lost')), 'send to a down peer is refused');

    // n1 redials n2 (lower id); the new n2 dials n3.
    n2 = await startNode('n2', members[1].port, members);
    await waitFor('full mesh again', () => allConnected([n1, n2, n3], 2));
    t.true(n1.transport.send('n2', Buffer.from('hello again')));
    t.true(n2.transport.send('n3', Buffer.from('me too')));
    await waitFor('messages after restart', () => n2.received.get('n1')?.includes('hello again') && n3.received.get('n2')?.includes('me too'));
    t.truthy(hasLog(n1, { msg: 'peer up', peer: 'n2' }));
  } finally {
    await Promise.all([n1, n2, n3].map((n) => n.transport.stop()));
  }
});

test('a silent peer is dropped at the idle timeout while heartbeats keep a quiet link up', async (t) => {
  const ports = await freePorts(2);
  const members = ['n0', 'n1'].map((id, i) => ({ id, port: ports[i] }));
  const n1 = await startNode('n1', ports[1], members, { heartbeatIntervalMs: 50, idleTimeoutMs: 300 });
  try {
    const mute = await RawPeer.open(n1.port);
    await mute.handshake('n0', SECRET, membershipDigest(['n0', 'n1']));
    await waitFor('n0 up', () => n1.transport.connected().includes('n0'));
    await waitFor('heartbeats sent to the peer', () => mute.frames.filter((f) => f.type === FrameType.PING).length >= 2);
    await waitFor('idle peer dropped', () => hasLog(n1, { msg: 'peer connection dropped', reason: 'idle-timeout', peer: 'n0' }));
    await waitFor('connection closed', () => mute.closed);
    t.deepEqual(n1.transport.connected(), []);
  } finally {
    await n1.transport.stop();
  }
});

test('a listener that throws is logged and the session goes on', async (t) => {
  const { nodes } = await startCluster(['n1', 'n2']);
  const [n1, n2] = nodes;
  n2.transport.on('message', (_from, payload) => {
    if (payload.toString() === 'boom') throw new Error('listener bug');
  });
  try {
    await waitFor('connected', () => allConnected(nodes, 1));
    t.true(n1.transport.send('n2', Buffer.from('boom')));
    t.true(n1.transport.send('n2', Buffer.from('after')));
    await waitFor('next payload delivered', () => n2.received.get('n1')?.includes('after'));
    t.truthy(hasLog(n2, { level: 'error', msg: 'peer transport listener threw', event: 'message' }));
    t.deepEqual(n2.transport.connected(), ['n1']);
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('the frame decoder never throws on random bytes', (t) => {
  for (let i = 0; i < 2000; i++) {
    const decoder = new FrameDecoder(4096);
    const bytes = randomBytes(1 + (i % 64));
    if (i % 2) bytes[4] = PEER_PROTOCOL_VERSION;
    t_assert(typeof decoder.push(bytes, () => true) === 'object', 'an error value or null');
  }
  t.pass();
});

test('the frame decoder takes any chunking and several frames per chunk', (t) => {
  const frames = [encodeFrame(FrameType.AUTH, Buffer.from('first')), encodeFrame(FrameType.PING, Buffer.alloc(0)), encodeFrame(FrameType.DATA, randomBytes(300))];
  const stream = Buffer.concat(frames);
  for (let split = 0; split <= stream.length; split++) {
    for (const step of [1, 7, stream.length]) {
      const decoder = new FrameDecoder(1024);
      const got: Buffer[] = [];
      const pieces = [stream.subarray(0, split), ...chunk(stream.subarray(split), step)];
      for (const piece of pieces) t_assert(decoder.push(piece, (f) => (got.push(Buffer.from(f.raw)), true)) === null, 'no error');
      t_assert(got.length === 3 && got.every((g, i) => g.equals(frames[i])) && decoder.bufferedBytes === 0, `split ${split} step ${step}`);
    }
  }
  t.pass();
});

function chunk(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

test('options are validated with errors that name the option', (t) => {
  const base = { selfId: 'a', host: '127.0.0.1', port: 1, peers: [], secret: randomBytes(32), log: () => {} };
  t.throws(() => new PeerTransport({ ...base, secret: randomBytes(8) }), { message: /^secret:/ });
  t.throws(() => new PeerTransport({ ...base, peers: [{ id: 'a', host: 'h', port: 2 }] }), { message: /^peers\[0\]\.id:/ });
  t.throws(() => new PeerTransport({ ...base, maxFrameBytes: 10 }), { message: /^maxFrameBytes:/ });
  t.throws(() => new PeerTransport({ ...base, heartbeatIntervalMs: 1000, idleTimeoutMs: 1500 }), { message: /^idleTimeoutMs:/ });
  t.notThrows(() => new PeerTransport(base));
});

test('the secret file is created with mode 0600 on first use and reused after', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-secret-'));
  const file = join(dir, 'sub', 'cluster.secret');
  const first = loadOrCreateSecret(file);
  t.true(first.created);
  t.is(first.secret.length, 32);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.regex(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/);
  const second = loadOrCreateSecret(file);
  t.false(second.created);
  t.true(second.secret.equals(first.secret));

  const b64 = join(dir, 'b64.secret');
  const raw = randomBytes(24);
  writeFileSync(b64, raw.toString('base64') + '\n');
  t.true(loadOrCreateSecret(b64).secret.equals(raw));
  t.throws(() => parseSecret('abcd', 'short'), { message: /at least 16/ });
  t.throws(() => parseSecret('not a secret!', 'junk'), { message: /hex or base64/ });
});

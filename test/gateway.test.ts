// The gateway as its own process (src/gateway/main.ts, as pm2 runs it) in
// front of a real three-daemon cluster: a client that knows only the
// gateway's address, in both styles; kill -9 of each daemon in turn under a
// request loop (no GET fails; a write succeeds or says OUTCOME_UNKNOWN);
// SHUT_DOWN refused; the gateway killed and restarted, and stopped gracefully.

import test from 'ava';
import { Command, ErrorCode, type Frame } from '../src/protocol/index.ts';
import { KvClient } from '../src/client/index.ts';
import { TestCluster } from './helpers/cluster.ts';
import { waitFor } from './helpers/daemon.ts';
import { addGatewayToConfig, launchGateway, type GatewayProcess } from './helpers/gateway.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

async function clusterWithGateway(): Promise<{ cluster: TestCluster; gwPort: number; gw: GatewayProcess }> {
  const cluster = await TestCluster.write({ processors: 1 });
  const gwPort = await addGatewayToConfig(cluster.configFile, { requestTimeoutMs: 2000 });
  await Promise.all(cluster.members.map((m) => cluster.startMember(m.id)));
  const gw = await launchGateway(cluster.configFile);
  return { cluster, gwPort, gw };
}

const errorCode = (f: Frame) => (f.command === Command.ERROR ? Number(f.param) : 0);

test('kill -9 of each daemon in turn under a request loop through the gateway: no GET fails, writes succeed or say OUTCOME_UNKNOWN', async (t) => {
  const { cluster, gwPort, gw } = await clusterWithGateway();
  const failures: string[] = [];
  let gets = 0, puts = 0, unknown = 0, stale = 0;
  let running = true;
  const loop = async (w: number) => {
    const conn = await PersistentConnection.open(gwPort);
    const written = new Map<string, string>();
    for (let i = 0; running; i++) {
      const key = `w${w}-${i % 50}`;
      const value = `${w}-${i}`;
      // a pipelined burst: a PUT and GETs of keys written before, in flight together
      const [put, ...reads] = await Promise.all([
        conn.send({ command: Command.PUT, key, value: Buffer.from(value) }),
        ...[...written.keys()].slice(-4).map((k) => conn.send({ command: Command.GET, key: k })),
      ]);
      puts++;
      if (errorCode(put!) === ErrorCode.OUTCOME_UNKNOWN) unknown++;
      else if (put!.command === Command.OK || put!.command === Command.NO_VAL) written.set(key, value);
      else failures.push(`PUT ${key}: command ${put!.command} code ${errorCode(put!)}`);
      for (const r of reads) {
        gets++;
        if (r.command === Command.ERROR) failures.push(`GET ${r.key}: ERROR ${errorCode(r)}`);
        else if (r.command === Command.OK && Buffer.from(r.value).toString() !== written.get(r.key)) stale++;
      }
      // and one request per connection, the original client's style
      const once = await requestOnce(gwPort, { command: Command.GET, key });
      gets++;
      if (once.command === Command.ERROR) failures.push(`one-shot GET ${key}: ERROR ${errorCode(once)}`);
    }
    conn.close();
  };
  const loops = [0, 1, 2, 3].map(loop);
  try {
    for (const m of cluster.members) {
      const before = gets;
      await waitFor('requests flowing', () => gets > before + 200, 20_000);
      await cluster.kill(m.id);
      const during = gets;
      await waitFor(`requests flowing with ${m.id} down`, () => gets > during + 200, 20_000);
      await cluster.startMember(m.id);
    }
    const after = gets;
    await waitFor('requests flowing after the last restart', () => gets > after + 200, 20_000);
  } finally {
    running = false;
    await Promise.allSettled(loops);
    await gw.kill();
    await cluster.stopAll();
  }
  await Promise.all(loops);
  t.log(`${gets} GETs, ${puts} PUTs, ${unknown} OUTCOME_UNKNOWN, ${stale} GETs older than the client's last write (a killed daemon's unreplicated writes)`);
  t.deepEqual(failures, []);
  t.true(gets > 800 && puts > 0);
});

test('a client that knows only the gateway: both styles, KvClient, SHUT_DOWN refused; gateway kill -9 and restart, then SIGTERM', async (t) => {
  const { cluster, gwPort, gw } = await clusterWithGateway();
  let current = gw;
  const client = new KvClient({ servers: [`127.0.0.1:${gwPort}`], deadlineMs: 5000, backoffInitialMs: 20, backoffMaxMs: 100 });
  try {
    t.deepEqual(await client.put('gw-a', 'one'), { found: false });
    const got = await client.get('gw-a');
    t.true(got.found && got.value.toString() === 'one');
    // the key is on every daemon (replicated), whichever the gateway chose
    for (const m of cluster.members) await cluster.waitForValue(m.id, 'gw-a', 'one');
    const once = await requestOnce(gwPort, { id: 9n, command: Command.GET, key: 'gw-a' });
    t.is(once.id, 9n);
    t.is(Buffer.from(once.value).toString(), 'one');

    const shut = await requestOnce(gwPort, { command: Command.SHUT_DOWN });
    t.is(errorCode(shut), ErrorCode.NOT_ALLOWED);
    for (const m of cluster.members) t.is((await requestOnce(m.port, { command: Command.CHK })).command, Command.OK, `${m.id} still runs`);

    await current.kill();
    await t.throwsAsync(requestOnce(gwPort, { command: Command.CHK }));
    current = await launchGateway(cluster.configFile);
    t.true(await waitFor('the same client through the restarted gateway', () => client.chk().catch(() => false)));
    const after = await client.get('gw-a');
    t.true(after.found && after.value.toString() === 'one');

    // SIGTERM: requests in flight are answered before the gateway exits
    const conn = await PersistentConnection.open(gwPort);
    const inFlight = Array.from({ length: 50 }, (_x, i) => conn.send({ command: Command.PUT, key: `drain${i}`, value: Buffer.from('v') }));
    await conn.send({ command: Command.CHK });
    const exit = current.stop();
    const replies = await Promise.all(inFlight);
    t.true(replies.every((r) => r.command === Command.NO_VAL));
    t.is((await exit).code, 0);
  } finally {
    client.close();
    await current.kill();
    await cluster.stopAll();
  }
});

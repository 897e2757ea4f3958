// The deployment as users run it: `pm2 start ecosystem.config.js` with a
// temporary PM2_HOME, three daemons forming a cluster, every client port
// answering, a key written on one read on the others, a daemon killed with
// kill -9 restarted by pm2 and caught up, a pm2 action, the daemons' own
// figures in pm2 (@pm2/io), SHUT_DOWN not restarted by pm2, the gateway
// kv-gw serving all three (and refusing SHUT_DOWN), and `pm2 delete`.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from '../src/protocol/index.ts';
import { freePorts, waitFor } from './helpers/daemon.ts';
import { PersistentConnection, requestOnce } from './helpers/wire.ts';

const root = new URL('..', import.meta.url).pathname;
const pm2Bin = join(root, 'node_modules/.bin/pm2');

test('pm2 starts three daemons from ecosystem.config.js; each port serves; SHUT_DOWN is not restarted', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'kv-pm2-'));
  const ports = await freePorts(13);
  const gatewayPort = ports[12]!;
  const ids = ['a', 'b', 'c'];
  const config = {
    gateway: { port: gatewayPort },
    daemons: ids.map((id, i) => ({
      id: `kvtest-${id}`,
      host: '127.0.0.1',
      peerPort: ports[3 + i],
      adminPort: ports[6 + i],
      metricsPort: ports[9 + i],
      groups: [{ port: ports[i], dbFile: `data/${id}.sqlite`, processors: 2 }],
    })),
  };
  const configFile = join(home, 'kv.config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const env = { ...process.env, PM2_HOME: join(home, 'pm2'), KV_CONFIG: configFile };
  const pm2 = (...args: string[]) => execFileSync(pm2Bin, args, { env, cwd: root, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    try {
      pm2('kill');
    } catch {
      // already gone
    }
  });
  pm2('start', 'ecosystem.config.js');
  t.true(existsSync(join(home, 'data')), 'the data directory is created');

  const valueOn = async (port: number, key: string) => {
    const r = await requestOnce(port, { command: Command.GET, key });
    return r.command === Command.OK ? Buffer.from(r.value).toString() : undefined;
  };
  for (const port of ports.slice(0, 3)) {
    t.is((await requestOnce(port, { command: Command.CHK })).command, Command.OK);
    t.is((await requestOnce(port, { command: Command.PUT, key: `fruit${port}`, value: Buffer.from(`apple@${port}`) })).command, Command.NO_VAL);
    t.is(await valueOn(port, `fruit${port}`), `apple@${port}`);
  }
  // the three daemons are one store: every key reaches every port
  for (const from of ports.slice(0, 3)) {
    for (const to of ports.slice(0, 3)) await waitFor(`fruit${from} on ${to}`, async () => (await valueOn(to, `fruit${from}`)) === `apple@${from}`);
  }

  const triggered = pm2('trigger', 'kvtest-b', 'resize', `${ports[1]}:3`);
  t.regex(triggered, /"ok":true/);

  type Monitor = Record<string, { value: unknown; unit?: string }>;
  const list = () => JSON.parse(pm2('jlist')) as Array<{ name: string; pid: number; pm2_env: { status: string; restart_time: number; exit_code?: number; axm_monitor?: Monitor } }>;

  // the daemons' own figures reach pm2 (pm2 monit / pm2 show) through @pm2/io
  const monitors = await waitFor('pm2 has every daemon\'s figures, one leader, keys counted', () => {
    const ms = list().filter((p) => p.name !== 'kv-gw').map((p) => p.pm2_env.axm_monitor ?? {});
    const roles = ms.map((m) => m.role?.value);
    const ready = roles.filter((r) => r === 'leader').length === 1 && roles.filter((r) => r === 'follower').length === 2 && ms.every((m) => Number(m.keys?.value) === 3);
    return ready ? ms : undefined;
  }, 30_000);
  for (const m of monitors) {
    for (const name of ['req/s', 'p99 latency', 'connections', 'keys', 'role', 'replication lag']) t.true(name in m, `pm2 shows ${name}`);
    t.is(m['p99 latency'].unit, 'ms');
    t.is(m['replication lag'].unit, 'ms');
  }
  // and Prometheus can scrape each daemon, as in the default deployment
  for (const [i, id] of ids.entries()) {
    const text = await (await fetch(`http://127.0.0.1:${ports[9 + i]}/metrics`)).text();
    t.regex(text, new RegExp(`^kv_processors_alive\\{daemon="kvtest-${id}"\\} \\d+$`, 'm'));
    t.regex(text, /^kv_cluster_is_leader\{/m);
  }
  const conn = await PersistentConnection.open(ports[0]);
  const busy = await waitFor('req/s and connections of kvtest-a while a client sends', async () => {
    // the gateway keeps connections of its own to every daemon
    for (let i = 0; i < 50; i++) await conn.send({ command: Command.GET, key: `fruit${ports[0]}` });
    const m = list().find((p) => p.name === 'kvtest-a')!.pm2_env.axm_monitor!;
    return Number(m['req/s'].value) > 0 && Number(m.connections.value) >= 1 && Number(m['p99 latency'].value) > 0 ? m : undefined;
  }, 20_000);
  t.true(Number(busy['req/s'].value) > 0);
  conn.close();
  t.regex(pm2('show', 'kvtest-a'), /req\/s/, 'pm2 show lists the custom metrics');
  t.deepEqual(list().map((p) => p.pm2_env.status), ['online', 'online', 'online', 'online']);
  t.deepEqual(list().map((p) => p.name), ['kvtest-a', 'kvtest-b', 'kvtest-c', 'kv-gw']);
  // the gateway: one address for all three daemons
  t.is((await requestOnce(gatewayPort, { command: Command.GET, key: `fruit${ports[1]}` })).command, Command.OK);
  t.is((await requestOnce(gatewayPort, { command: Command.SHUT_DOWN })).command, Command.ERROR);
  t.regex(pm2('trigger', 'kv-gw', 'status'), /"id":"kvtest-b","up":true/);

  // kill -9 a whole daemon: pm2 restarts it and it catches up on what it missed
  const killed = list().find((p) => p.name === 'kvtest-c')!;
  process.kill(killed.pid, 'SIGKILL');
  t.is((await requestOnce(ports[0], { command: Command.PUT, key: 'while-c-down', value: Buffer.from('x') })).command, Command.NO_VAL);
  await waitFor('pm2 restarted kvtest-c', () => {
    const c = list().find((p) => p.name === 'kvtest-c')!;
    return c.pid !== 0 && c.pid !== killed.pid && c.pm2_env.status === 'online';
  }, 20_000).catch((e) => {
    t.log(JSON.stringify(list().map((p) => [p.name, p.pid, p.pm2_env.status, p.pm2_env.restart_time])));
    t.log(readFileSync(join(home, 'pm2', 'logs', 'kvtest-c-out.log'), 'utf8').slice(-3000));
    t.log(readFileSync(join(home, 'pm2', 'pm2.log'), 'utf8').slice(-3000));
    throw e;
  });
  await waitFor('kvtest-c caught up', async () => (await valueOn(ports[2], 'while-c-down').catch(() => undefined)) === 'x', 20_000);

  t.is((await requestOnce(ports[0], { command: Command.SHUT_DOWN })).command, Command.OK);
  await waitFor('daemon a stopped', () => list().find((p) => p.name === 'kvtest-a')!.pid === 0, 15_000);
  const log = readFileSync(join(home, 'pm2', 'logs', 'kvtest-a-out.log'), 'utf8');
  t.regex(log, /SHUT_DOWN accepted/);
  // pm2 decides in the step that records the exit code: for a code in stop_exit_codes it sets the
  // pid to 0 there and schedules nothing; for any other code the old pid stays until the restart
  // (its status reads 'waiting restart' in both cases, because a backoff is configured)
  const a = await waitFor('pm2 recorded the exit of kvtest-a', () => {
    const p = list().find((x) => x.name === 'kvtest-a')!;
    return p.pm2_env.exit_code === 10 ? p : undefined;
  }, 15_000);
  t.is(a.pid, 0);
  t.is(a.pm2_env.restart_time, 0);
  await t.throwsAsync(requestOnce(ports[0], { command: Command.CHK }));
  t.is((await requestOnce(ports[2], { command: Command.CHK })).command, Command.OK);

  t.is((await requestOnce(gatewayPort, { command: Command.CHK })).command, Command.OK, 'the gateway serves with one daemon stopped');
  pm2('delete', 'ecosystem.config.js');
  t.deepEqual(list(), []);
  await t.throwsAsync(requestOnce(gatewayPort, { command: Command.CHK }));
  await t.throwsAsync(requestOnce(ports[1], { command: Command.CHK }));
});

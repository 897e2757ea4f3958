// The gateway's pure parts: which daemon a request goes to (router.ts),
// reply order (order.ts), what happens after a failed attempt
// (requests.ts), the leader's flags (cluster-view.ts), and the config section.

import test from 'ava';
import { Command, ErrorCode } from '../src/protocol/index.ts';
import { Router } from '../src/gateway/router.ts';
import { ReplyOrder } from '../src/gateway/order.ts';
import { afterFailure, isNotTaken, localError } from '../src/gateway/requests.ts';
import { flaggedDaemons } from '../src/gateway/cluster-view.ts';
import { ConfigError, parseConfig } from '../src/config/config.ts';

const options = { rejoinAfterMs: 1000, readSpillOutstanding: 10, recentWriteMs: 500, maxRecentWrites: 3 };
const none = new Set<number>();
const keys = Array.from({ length: 300 }, (_x, i) => `key-${i}`);

function upRouter(n = 3): Router {
  const r = new Router(['n0', 'n1', 'n2'].slice(0, n), options);
  for (let i = 0; i < n; i++) r.setUp(i, 0, true);
  return r;
}

test('router: a key always goes to the same daemon, and keys spread over all of them, whatever the ids', (t) => {
  const r = upRouter();
  const homes = keys.map((k) => r.choose(k, true, none, 10));
  t.deepEqual(keys.map((k) => r.choose(k, false, none, 20)), homes);
  const counts = [0, 1, 2].map((d) => homes.filter((h) => h === d).length);
  t.true(counts.every((c) => c > 50), `spread ${counts}`);
  // daemon ids that differ in one bit, and keys that differ in their last character
  const ab = new Router(['a', 'b'], options);
  ab.setUp(0, 0, true);
  ab.setUp(1, 0, true);
  const onA = Array.from({ length: 40 }, (_x, i) => ab.choose(`cv${i}`, true, none, 0)).filter((d) => d === 0).length;
  t.true(onA > 8 && onA < 32, `${onA} of 40 keys on a`);
});

test('router: when a daemon goes down only its keys move; they come back after rejoinAfterMs', (t) => {
  const r = upRouter();
  const before = keys.map((k) => r.choose(k, true, none, 0));
  r.setDown(1);
  const during = keys.map((k) => r.choose(k, true, none, 100));
  keys.forEach((_k, i) => {
    if (before[i] !== 1) t.is(during[i], before[i]);
    else t.not(during[i], 1);
  });
  r.setUp(1, 200);
  t.deepEqual(keys.map((k) => r.choose(k, true, none, 700)), during, 'not settled yet');
  t.deepEqual(keys.map((k) => r.choose(k, true, none, 1200)), before, 'settled');
});

test('router: a daemon that is the only one up is used even while settling; none up → undefined', (t) => {
  const r = new Router(['a', 'b'], options);
  t.is(r.choose('k', true, none, 0), undefined);
  r.setUp(1, 0);
  t.is(r.choose('k', true, none, 1), 1);
  t.is(r.choose('k', true, new Set([1]), 1), undefined);
});

test('router: suspect daemons (the leader flags them) are used only when nothing else is up', (t) => {
  const r = upRouter();
  r.setSuspect(0, true);
  r.setSuspect(2, true);
  t.true(keys.every((k) => r.choose(k, true, none, 5000) === 1));
  r.setDown(1);
  t.true(keys.some((k) => r.choose(k, true, none, 5000) === 0));
});

test('router: a recent write keeps its key on the daemon that took it; forgotten after recentWriteMs or past maxRecentWrites', (t) => {
  const r = upRouter();
  const key = keys.find((k) => r.choose(k, true, none, 0) === 2)!;
  r.setDown(2);
  const interim = r.choose(key, false, none, 10)!;
  r.wrote(key, interim, 10);
  r.setUp(2, 20);
  t.is(r.choose(key, true, none, 1500), 2, 'a write 1490 ms ago (recentWriteMs 500) does not hold the key');
  r.wrote(key, interim, 1600);
  t.is(r.choose(key, true, none, 1700), interim, 'the write is recent: the key stays');
  t.is(r.choose(key, true, none, 2200), 2, 'then goes home');
  r.wrote(key, interim, 3000);
  for (const k of ['x', 'y', 'z']) r.wrote(k, 0, 3001);
  t.is(r.choose(key, true, none, 3002), 2, 'pushed out by maxRecentWrites');
});

test('router: a GET spills to the least loaded daemon when its home has readSpillOutstanding outstanding; writes never do; keyless go to the least loaded', (t) => {
  const r = upRouter();
  const key = keys.find((k) => r.choose(k, true, none, 0) === 0)!;
  for (let i = 0; i < 10; i++) r.started(0);
  r.started(1);
  t.is(r.choose(key, true, none, 5000), 2);
  t.is(r.choose(key, false, none, 5000), 0);
  t.is(r.choose(undefined, true, none, 5000), 2);
  for (let i = 0; i < 10; i++) r.finished(0);
  t.throws(() => {
    for (let i = 0; i < 10; i++) r.finished(2);
  }, { message: /finished more requests than it started/ });
});

test('reply order: replies leave in request order, whatever order they arrive in', (t) => {
  const o = new ReplyOrder();
  const seqs = [o.reserve(), o.reserve(), o.reserve()];
  o.fill(seqs[2]!, Buffer.from('c'));
  t.deepEqual(o.take(), []);
  o.fill(seqs[0]!, Buffer.from('a'));
  t.deepEqual(o.take().map(String), ['a']);
  t.is(o.outstanding, 2);
  o.fill(seqs[1]!, Buffer.from('b'));
  t.deepEqual(o.take().map(String), ['b', 'c']);
  t.is(o.outstanding, 0);
  t.throws(() => o.fill(seqs[1]!, Buffer.from('again')));
});

test('after a failed attempt: reads and never-delivered writes go on; delivered writes are OUTCOME_UNKNOWN', (t) => {
  t.is(afterFailure(Command.GET, 'lost', 1, 3), 'retry');
  t.is(afterFailure(Command.GET, 'lost', 3, 3), ErrorCode.SHUTTING_DOWN);
  t.is(afterFailure(Command.PUT, 'not-sent', 1, 3), 'retry');
  t.is(afterFailure(Command.DEL, 'not-sent', 3, 3), ErrorCode.SHUTTING_DOWN);
  t.is(afterFailure(Command.PUT, 'lost', 1, 3), ErrorCode.OUTCOME_UNKNOWN);
  t.is(afterFailure(Command.DEL, 'lost', 1, 3), ErrorCode.OUTCOME_UNKNOWN);
  t.true(isNotTaken(Command.ERROR, ErrorCode.SHUTTING_DOWN));
  t.true(isNotTaken(Command.ERROR, ErrorCode.NO_QUORUM));
  t.false(isNotTaken(Command.ERROR, ErrorCode.STORE_FAILED));
  const frame = { id: 1n, command: Command.SHUT_DOWN, flag: 0, param: 0n, key: '', value: new Uint8Array(0), valueTimestamp: 0n };
  t.is(localError(frame), ErrorCode.NOT_ALLOWED);
  t.is(localError({ ...frame, command: Command.GET, key: 'ok' }), 0);
});

test('cluster view: only a leader view counts; unreachable, degraded and processor-less daemons are flagged', (t) => {
  t.is(flaggedDaemons({ role: 'follower', daemons: [] }), undefined);
  const s = (processorsAlive: number, degradedGroups: string[] = []) => ({ processorsAlive, degradedGroups });
  const flagged = flaggedDaemons({
    role: 'leader',
    daemons: [
      { id: 'a', role: 'leader', status: s(2) },
      { id: 'b', role: 'unreachable', status: null },
      { id: 'c', role: 'follower', status: s(2, ['7391']) },
      { id: 'd', role: 'follower', status: s(0) },
      { id: 'e', role: 'follower', status: null },
    ],
  });
  t.deepEqual([...flagged!].sort(), ['b', 'c', 'd']);
});

test('config: the gateway section has defaults, is validated, and may not take a daemon port', (t) => {
  const daemons = [{ id: 'a', host: '127.0.0.1', peerPort: 7490, adminPort: 7590, groups: [{ port: 7390, dbFile: 'a.sqlite', processors: 1 }] }];
  const c = parseConfig({ daemons }, '/tmp');
  t.is(c.gateway.port, 7389);
  t.is(c.gateway.host, '127.0.0.1');
  t.true(c.gateway.enabled);
  t.throws(() => parseConfig({ daemons, gateway: { port: 7390 } }, '/tmp'), { instanceOf: ConfigError, message: /config.gateway.port uses port 7390/ });
  t.throws(() => parseConfig({ daemons, gateway: { portt: 1 } }, '/tmp'), { instanceOf: ConfigError, message: /config.gateway.portt is not a known setting/ });
  t.throws(() => parseConfig({ daemons, limits: { maxInFlightPerConnection: 100 }, gateway: { maxInFlightPerDaemonConnection: 200 } }, '/tmp'), {
    instanceOf: ConfigError,
    message: /maxInFlightPerDaemonConnection must be an integer from 1 to 100/,
  });
  t.is(parseConfig({ daemons, gateway: { enabled: false, port: 7390 } }, '/tmp').gateway.enabled, false);
});

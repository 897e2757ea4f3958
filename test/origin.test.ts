// Who wrote a version: the origin, the tie-break of equal timestamps, comes
// from the daemon's id alone, so every host agrees on it whatever the order of
// its config; ids that would share one are refused. Anti-entropy digests
// cover the value, so replicas that hold different values under one version
// do not look alike.

import test from 'ava';
import { tmpdir } from 'node:os';
import { ConfigError, parseConfig } from '../src/config/config.ts';
import { originOf } from '../src/shared/origin.ts';
import { SimReplica } from './sim/sim-replica.ts';

const daemon = (id: string, i: number) => ({ id, host: '127.0.0.1', peerPort: 17490 + i, adminPort: 17590 + i, groups: [{ port: 17390 + i, dbFile: `data/${id}.sqlite`, processors: 1 }] });

test('each daemon gets the same origin whatever the order of the config, and origins differ', (t) => {
  const ids = ['kv-0', 'kv-1', 'kv-2'];
  const a = parseConfig({ daemons: ids.map(daemon) }, tmpdir());
  const b = parseConfig({ daemons: [...ids].reverse().map(daemon) }, tmpdir());
  for (const id of ids) {
    const oa = a.daemons.find((d) => d.id === id)!.origin;
    t.is(b.daemons.find((d) => d.id === id)!.origin, oa, id);
    t.is(oa, originOf(id));
  }
  t.is(new Set(a.daemons.map((d) => d.origin)).size, 3);
});

test('two ids that hash to one origin are refused at config validation, naming both', (t) => {
  t.is(originOf('kv-38'), originOf('kv-329'));
  const e = t.throws(() => parseConfig({ daemons: ['kv-38', 'kv-7', 'kv-329'].map(daemon) }, tmpdir()), { instanceOf: ConfigError });
  t.regex(e!.message, /"kv-38" and "kv-329" hash to one origin/);
});

test('digests cover the value: one version with two values differs', (t) => {
  const replicas = ['x', 'y'].map((v, i) => {
    const r = new SimReplica({ streamId: BigInt(i + 1), origin: 1, wallClockUs: () => 1_000_000n, nowMs: () => 0, antiEntropyIntervalMs: 1_000 });
    t.teardown(() => r.close());
    r.applyNow([{ key: 'k', value: Buffer.from(v), ts: 5_000_000n, origin: 7 }]);
    return r;
  });
  t.notDeepEqual(replicas[0].bucketDigests(8), replicas[1].bucketDigests(8));
  replicas[1].applyNow([{ key: 'k2', value: Buffer.from('z'), ts: 5_000_000n, origin: 7 }]);
  replicas[0].applyNow([{ key: 'k2', value: Buffer.from('z'), ts: 5_000_000n, origin: 7 }]);
  const [d0, d1] = replicas.map((r) => r.bucketDigests(8));
  const differing = d0.flatMap((d, b) => (d !== d1[b] ? [b] : []));
  t.is(differing.length, 1, 'only the bucket of the differing key');
});

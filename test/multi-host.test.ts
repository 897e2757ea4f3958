// Daemons on their own addresses (127.0.0.2-127.0.0.4 stand for three hosts):
// `kv status` shows every daemon and the leader, `kv workers` resizes a
// daemon on another address, both over the admin listener at the daemon's
// address with the cluster secret; without the secret nothing is served;
// fault injection stays loopback-only. Each daemon's /metrics shows one leader
// and its peers up.
import test from 'ava';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { TestCluster } from './helpers/cluster.ts';
import { adminRequest, waitFor } from './helpers/daemon.ts';
import { kv } from './helpers/kv-cli.ts';

const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

/** Lines the admin listener at `host` sends back to a request without a mac. */
function unauthenticated(host: string, port: number, line: string): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (buf += d));
    s.on('error', reject);
    s.on('close', () => resolve(buf.split('\n').filter(Boolean).map((l) => JSON.parse(l))));
    s.write(line + '\n');
  });
}

async function scrape(host: string, port: number): Promise<string> {
  return (await fetch(`http://${host}:${port}/metrics`)).text();
}

test('kv status and kv workers reach daemons on other addresses with the cluster secret; without it nothing is served', async (t) => {
  const c = await TestCluster.start({ hosts: HOSTS, metrics: true, faultInjection: true });
  t.teardown(() => c.stopAll());
  const { id: leader } = await c.leader();

  // a write on one "host" reaches the others over their addresses
  await c.put('n0', 'across', 'hosts');
  await c.waitForValue('n2', 'across', 'hosts');

  const status = await waitFor('kv status sees all three daemons and the leader', async () => {
    const r = await kv(['status', '--json', '--interval', '100', '--config', c.configFile]);
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout);
    return s.ports.every((p: any) => !('error' in p)) && s.cluster?.role === 'leader' && s.cluster.daemons.every((d: any) => d.status) ? s : undefined;
  }, 15_000);
  t.deepEqual(status.ports.map((p: any) => p.daemon).sort(), ['n0', 'n1', 'n2']);
  t.is(status.cluster.leaderId, leader);
  t.deepEqual(status.cluster.daemons.map((d: any) => d.id).sort(), ['n0', 'n1', 'n2']);
  const text = await kv(['status', '--interval', '100', '--config', c.configFile]);
  t.regex(text.stdout, new RegExp(`cluster: leader ${leader}`));

  // from the other two "hosts" too: the config is the same everywhere; which host kv runs on does not matter
  const n1 = c.member('n1');
  const resized = await kv(['workers', '--port', String(n1.port), '--count', '2', '--config', c.configFile]);
  t.is(resized.code, 0, resized.stderr);
  const n1Status = await adminRequest(n1.adminPort, { op: 'status' });
  t.is(n1Status.status.groups[0].processors.length, 2);

  // the wrong secret: every daemon refuses, kv says unreachable
  const wrong = await kv(['status', '--json', '--interval', '100', '--config', c.configFile], undefined, { KV_CLUSTER_SECRET: randomBytes(32).toString('hex') });
  t.is(wrong.code, 3);
  t.true(JSON.parse(wrong.stdout).ports.every((p: any) => /not authenticated/.test(p.error)));
  const wrongResize = await kv(['workers', '--port', String(n1.port), '--count', '1', '--config', c.configFile], undefined, { KV_CLUSTER_SECRET: randomBytes(32).toString('hex') });
  t.not(wrongResize.code, 0);
  t.is((await adminRequest(n1.adminPort, { op: 'status' })).status.groups[0].processors.length, 2, 'not resized');

  // no mac at all: a challenge, then a refusal, nothing executed
  const raw = await unauthenticated(n1.host, n1.adminPort, JSON.stringify({ op: 'resize', port: n1.port, processors: 1 }));
  t.is(typeof raw[0].challenge, 'string');
  t.false(raw[1].ok);
  t.regex(raw[1].error, /not authenticated/);

  // fault injection is loopback-only, even with the secret
  const { readFileSync } = await import('node:fs');
  const { loadConfig } = await import('../src/config/config.ts');
  const secretFile = loadConfig({ KV_CONFIG: c.configFile }).cluster.secretFile;
  const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'hex');
  const fault = await adminRequest(n1.adminPort, { op: 'fault', port: n1.port, slot: 0, fault: 'crash' }, n1.host, 5000, secret);
  t.false(fault.ok);
  t.regex(fault.error, /only on 127\.0\.0\.1/);

  // metrics: exactly one leader, every peer up, a replication lag per peer
  const scrapes = await waitFor('metrics of all three with lag figures', async () => {
    const texts = await Promise.all(c.members.map((m) => scrape('127.0.0.1', m.metricsPort!)));
    return texts.every((x) => (x.match(/^kv_replication_lag_seconds\{/gm) ?? []).length === 2) ? texts : undefined;
  });
  const leaders = scrapes.map((x) => Number(/^kv_cluster_is_leader\{[^}]*\} (\d+)/m.exec(x)![1]));
  t.is(leaders.reduce((a, b) => a + b, 0), 1);
  for (const x of scrapes) t.is((x.match(/^kv_peer_up\{[^}]*\} 1$/gm) ?? []).length, 2);
});

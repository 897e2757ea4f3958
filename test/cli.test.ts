import test from 'ava';
import { freePorts, startDaemon, type RunningDaemon } from './helpers/daemon.ts';
import { kv } from './helpers/kv-cli.ts';

let daemon: RunningDaemon;
test.before(async () => {
  daemon = await startDaemon({ processors: 1 });
});
test.after.always(async () => {
  await daemon?.stop();
});

const srv = () => ['--servers', `127.0.0.1:${daemon.ports[0]}`];

test('get/put/del/chk output and exit codes', async (t) => {
  t.is((await kv(['chk', ...srv()])).stdout.trim(), 'ok');
  const miss = await kv(['get', 'cli-a', ...srv()]);
  t.is(miss.code, 1);
  t.regex(miss.stderr, /not found/);
  t.is((await kv(['put', 'cli-a', 'hello', ...srv()])).code, 0);
  const hit = await kv(['get', 'cli-a', ...srv()]);
  t.is(hit.code, 0);
  t.is(hit.stdout, 'hello\n');
  const fromStdin = await kv(['put', 'cli-a', '-', ...srv()], 'from stdin');
  t.is(fromStdin.stdout, 'hello\n'); // the old value
  const json = await kv(['get', 'cli-a', '--json', ...srv()]);
  const parsed = JSON.parse(json.stdout);
  t.is(parsed.found, true);
  t.is(parsed.value, 'from stdin');
  t.is((await kv(['del', 'cli-a', ...srv()])).code, 0);
  t.is((await kv(['del', 'cli-a', ...srv()])).code, 1);
});

test('status and workers resize over the admin port', async (t) => {
  const resized = await kv(['workers', '--port', String(daemon.ports[0]), '--count', '2', '--config', daemon.configFile]);
  t.is(resized.code, 0, resized.stderr);
  const st = await kv(['status', '--json', '--interval', '100', '--config', daemon.configFile]);
  t.is(st.code, 0, st.stderr);
  const { ports: [row], cluster } = JSON.parse(st.stdout);
  t.is(cluster, null, 'a lone daemon has no cluster view');
  t.is(row.port, daemon.ports[0]);
  t.is(row.processorsTarget, 2);
  t.true(typeof row.requestsPerSecond === 'number' && typeof row.storeBytes === 'number');
  const text = await kv(['status', '--interval', '50', '--config', daemon.configFile]);
  t.regex(text.stdout, /processors \d\/2, heartbeat age/);
});

test('bad input exits 2 with a helpful message; unreachable exits 3', async (t) => {
  const bad = await kv(['get', 'a[b]', ...srv()]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /bad key/);
  t.notRegex(bad.stderr, /    at /);
  const usage = await kv(['frob']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /unknown command "frob"; see kv --help/);
  const helpText = await kv(['--help']);
  t.regex(helpText.stdout, /Exit codes:/);
  const [port] = await freePorts(1);
  const down = await kv(['get', 'k', '--servers', `127.0.0.1:${port}`]);
  t.is(down.code, 3);
  t.regex(down.stderr, new RegExp(`127.0.0.1:${port}`));
});

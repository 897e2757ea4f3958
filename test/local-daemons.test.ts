// A config of several hosts: the same ports on every host validate, and each
// machine starts only the daemons whose host is one of its addresses
// (`npm start`: the --check step says which, ecosystem.config.js gives pm2 only those).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, localDaemons, parseConfig } from '../src/config/config.ts';

const root = new URL('..', import.meta.url).pathname;
const node = join(root, 'node_modules/.bin/node');

// 192.0.2.0/24 is TEST-NET-1: never an address of this machine
const threeHosts = (first = '127.0.0.1') => ({
  daemons: [first, '192.0.2.12', '192.0.2.13'].map((host, i) => ({
    id: `kv-${i}`,
    host,
    peerPort: 7490,
    adminPort: 7590,
    metricsPort: 7690,
    groups: [{ port: 7390, dbFile: `data/kv-${i}.sqlite`, processors: 2 }],
  })),
});

test('a three-host config uses the same ports on every host; two daemons of one machine may not share a port', (t) => {
  const config = parseConfig(threeHosts('192.0.2.11'), '/tmp');
  t.is(config.daemons.length, 3);
  t.deepEqual(localDaemons(config, ['192.0.2.12', '10.0.0.1']).map((d) => d.id), ['kv-1']);
  t.deepEqual(localDaemons(config, []).map((d) => d.id), []);
  const twoOnOne = threeHosts('192.0.2.12');
  t.throws(() => parseConfig(twoOnOne, '/tmp'), { instanceOf: ConfigError, message: /already used/ });
  const loopbackPair = threeHosts();
  loopbackPair.daemons[1].host = '127.0.0.2';
  t.throws(() => parseConfig(loopbackPair, '/tmp'), { instanceOf: ConfigError, message: /adminPort uses port 7590/ }, 'both admin interfaces would be on this 127.0.0.1');
});

test('npm start on a host of a multi-host config: the check names this host\'s daemons, pm2 gets only those', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-local-'));
  const file = join(dir, 'kv.config.json');
  writeFileSync(file, JSON.stringify(threeHosts()));
  const env = { ...process.env, KV_CONFIG: file };
  const check = execFileSync(node, [join(root, 'src/supervisor/main.ts'), '--check'], { env, encoding: 'utf8' });
  t.regex(check, /this host runs kv-0 \(127\.0\.0\.1\); started on their own hosts: kv-1 \(192\.0\.2\.12\), kv-2 \(192\.0\.2\.13\)/);
  const apps = execFileSync(node, ['-e', `import(${JSON.stringify(join(root, 'ecosystem.config.js'))}).then((m) => console.log(m.apps.map((a) => a.name).join()))`], { env, encoding: 'utf8' });
  t.is(apps.trim(), 'kv-0,kv-gw', 'the daemon of this host, and the gateway');

  writeFileSync(file, JSON.stringify(threeHosts('192.0.2.11')));
  const none = (() => {
    try {
      execFileSync(node, [join(root, 'src/supervisor/main.ts'), '--check'], { env, encoding: 'utf8', stdio: 'pipe' });
      return null;
    } catch (e) {
      return e as { status: number; stderr: string };
    }
  })();
  t.is(none?.status, 1);
  t.regex(none!.stderr, /no daemon of .* has a host that is an address of this machine/);
});

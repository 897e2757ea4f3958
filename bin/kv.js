#!/usr/bin/env node
// Launcher for the `kv` bin: the CLI is TypeScript run by type stripping,
// which needs Node >= 24. Prefer the project's own node (node_modules/.bin/node);
// use the current node when it is new enough.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/kv.ts', import.meta.url));
const local = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);
const node = existsSync(local) ? local : major >= 24 ? process.execPath : undefined;
if (!node) {
  process.stderr.write(`kv needs Node >= 24 (this is ${process.version}); run npm ci in the project first\n`);
  process.exit(2);
}
const r = spawnSync(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 3);

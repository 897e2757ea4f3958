// The cluster secret file: read it, or create a random one on first start.
// The file holds the secret as hex (preferred; what we write) or base64, one
// line. A created file is private to its owner (mode 0600) and appears
// atomically: a crash mid-write never leaves a half-written secret.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIN_SECRET_BYTES } from './options.ts';

export const CREATED_SECRET_BYTES = 32;

/** Decodes a secret file's text: hex when it is only hex digits (even count), otherwise base64. */
export function parseSecret(text: string, source: string): Buffer {
  const t = text.trim();
  let secret: Buffer;
  if (/^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0) secret = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0) secret = Buffer.from(t, 'base64');
  else throw new Error(`${source}: the cluster secret must be hex or base64 on one line`);
  if (secret.length < MIN_SECRET_BYTES) {
    throw new Error(`${source}: the cluster secret has ${secret.length} bytes, at least ${MIN_SECRET_BYTES} are needed`);
  }
  return secret;
}

/**
 * Returns the secret in `file`, creating the file with 32 random bytes (hex,
 * mode 0600) if it does not exist. When several daemons race to create the
 * same file, exactly one wins and all read its secret.
 */
export function loadOrCreateSecret(file: string): { secret: Buffer; created: boolean } {
  try {
    return { secret: parseSecret(readFileSync(file, 'utf8'), file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, randomBytes(CREATED_SECRET_BYTES).toString('hex') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  let created = true;
  try {
    // link() never replaces an existing file: if another process created it meanwhile, theirs stands.
    linkSync(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    created = false;
  } finally {
    unlinkSync(temp);
  }
  return { secret: parseSecret(readFileSync(file, 'utf8'), file), created };
}

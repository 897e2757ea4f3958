// The peer handshake and per-frame MACs: HELLO encoding, the HMAC proofs that
// both sides know the cluster secret, session-key derivation and the sealing
// of post-handshake frames. Pure crypto on buffers; no sockets, no state.

import { createHash, createHmac, createSecretKey, hkdfSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { encodeFrame, FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from './framing.ts';

/** "KVPR": identifies our peer protocol in HELLO (a stray client on the peer port fails here). */
export const HELLO_MAGIC = Buffer.from('KVPR', 'ascii');
export const NONCE_BYTES = 32;
export const MAX_NODE_ID_BYTES = 64;
export const PROOF_BYTES = 32;
/** SHA-256 of the cluster's member ids (membershipDigest), carried in HELLO. */
export const MEMBERSHIP_BYTES = 32;
/** HMAC-SHA256 truncated to 128 bits: forging one tag takes ~2^128 tries, each costing a connection. */
export const TAG_BYTES = 16;
const SEQ_BYTES = 8;
/** Bytes before the payload of a sealed (DATA or PING) frame: header, sequence number, tag. */
export const SEALED_OVERHEAD_BYTES = FRAME_HEADER_BYTES + SEQ_BYTES + TAG_BYTES;
/** Handshake frames are small; before authentication no frame may be larger than this. */
export const MAX_HANDSHAKE_FRAME_BYTES = 256;

const PROOF_LABEL = Buffer.from('kv739 peer proof v1\0', 'ascii');
const SESSION_LABEL = Buffer.from('kv739 peer session v1\0', 'ascii');

export type Role = 'dialer' | 'acceptor';

/** Why a handshake was refused; the code travels in a REJECT frame. */
export const RejectReason = {
  'bad-auth': 1,
  'unknown-id': 2,
  'bad-version': 3,
  'wrong-direction': 4,
  'bad-magic': 5,
  'self-id': 6,
  'unexpected-id': 7,
  'protocol-error': 8,
  membership: 9,
} as const;
export type RejectReason = keyof typeof RejectReason;

export interface Hello {
  nodeId: string;
  /** membershipDigest of the sender's config: peers whose configs list other daemons refuse each other */
  membership: Buffer;
  nonce: Buffer;
}

/**
 * The digest of a cluster's membership: every daemon id of the config,
 * self included, in any order. Two daemons whose configs disagree on it
 * would count majorities over different sets (two leaders in one term).
 */
export function membershipDigest(ids: readonly string[]): Buffer {
  const h = createHash('sha256').update('kv739 membership v1\0');
  for (const id of [...ids].sort()) h.update(`${id}\0`);
  return h.digest();
}

/** HELLO body: magic, id length, id, membership digest, nonce (last: the session salt takes it from the end). */
export function encodeHello(nodeId: string, nonce: Buffer, membership: Buffer): Buffer {
  const id = Buffer.from(nodeId, 'utf8');
  if (id.length < 1 || id.length > MAX_NODE_ID_BYTES) throw new RangeError(`node id must be 1..${MAX_NODE_ID_BYTES} bytes`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
  if (membership.length !== MEMBERSHIP_BYTES) throw new RangeError(`membership digest must be ${MEMBERSHIP_BYTES} bytes`);
  return encodeFrame(FrameType.HELLO, Buffer.concat([HELLO_MAGIC, Buffer.from([id.length]), id, membership, nonce]));
}

export function decodeHello(body: Buffer): Hello | { error: 'bad-magic' | 'protocol-error'; detail: string } {
  if (body.length < HELLO_MAGIC.length || !body.subarray(0, HELLO_MAGIC.length).equals(HELLO_MAGIC)) {
    return { error: 'bad-magic', detail: 'HELLO without the KVPR magic' };
  }
  const idBytes = body.length > 4 ? body[4] : 0;
  if (idBytes < 1 || idBytes > MAX_NODE_ID_BYTES || body.length !== 5 + idBytes + MEMBERSHIP_BYTES + NONCE_BYTES) {
    return { error: 'protocol-error', detail: `malformed HELLO of ${body.length} bytes` };
  }
  const nodeId = body.toString('utf8', 5, 5 + idBytes);
  if (Buffer.byteLength(nodeId, 'utf8') !== idBytes) return { error: 'protocol-error', detail: 'node id is not UTF-8' };
  const membership = Buffer.from(body.subarray(5 + idBytes, 5 + idBytes + MEMBERSHIP_BYTES));
  return { nodeId, membership, nonce: Buffer.from(body.subarray(5 + idBytes + MEMBERSHIP_BYTES)) };
}

/**
 * The proof a side sends in AUTH: HMAC-SHA256 keyed with the cluster secret
 * over both HELLO frames (so both nonces, both ids and the version) and the
 * sender's role (so a proof cannot be reflected back to its author).
 */
export function computeProof(secret: Buffer, role: Role, dialerHello: Buffer, acceptorHello: Buffer): Buffer {
  return createHmac('sha256', secret)
    .update(PROOF_LABEL)
    .update(role === 'dialer' ? 'D' : 'A')
    .update(lengthPrefixed(dialerHello))
    .update(lengthPrefixed(acceptorHello))
    .digest();
}

/** Constant-time comparison of a received proof or tag with the expected one. */
export function sameMac(expected: Buffer, received: Buffer): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}

export function encodeAuth(proof: Buffer): Buffer {
  return encodeFrame(FrameType.AUTH, proof);
}

export function encodeReject(reason: RejectReason): Buffer {
  return encodeFrame(FrameType.REJECT, Buffer.from([RejectReason[reason]]));
}

export function decodeReject(body: Buffer): string {
  const code = body.length === 1 ? body[0] : -1;
  const name = (Object.keys(RejectReason) as RejectReason[]).find((k) => RejectReason[k] === code);
  return name ?? `unknown reason ${code}`;
}

/** KeyObjects, not Buffers: HMAC with a KeyObject skips the per-call key import (about 3× faster for small frames). */
export interface SessionKeys {
  dialerToAcceptor: KeyObject;
  acceptorToDialer: KeyObject;
}

/**
 * One key per direction, HKDF-SHA256 from the secret with both nonces as salt
 * and the whole transcript in the info: fresh per connection, so frames of an
 * old connection never verify on a new one.
 */
export function deriveSessionKeys(secret: Buffer, dialerHello: Buffer, acceptorHello: Buffer): SessionKeys {
  const salt = Buffer.concat([nonceOf(dialerHello), nonceOf(acceptorHello)]);
  const info = Buffer.concat([SESSION_LABEL, lengthPrefixed(dialerHello), lengthPrefixed(acceptorHello)]);
  const keys = Buffer.from(hkdfSync('sha256', secret, salt, info, 64));
  return { dialerToAcceptor: createSecretKey(keys.subarray(0, 32)), acceptorToDialer: createSecretKey(keys.subarray(32)) };
}

/**
 * The bytes that precede the payload of a sealed frame: frame header, the
 * sequence number (u64 BE) and the tag, HMAC(key, seq | type | payload).
 * The payload itself is written after it unchanged (no copy).
 */
export function sealHeader(type: typeof FrameType.DATA | typeof FrameType.PING, seq: bigint, key: KeyObject, payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(SEALED_OVERHEAD_BYTES);
  writeFrameHeader(header, type, SEQ_BYTES + TAG_BYTES + payload.length);
  header.writeBigUInt64BE(seq, FRAME_HEADER_BYTES);
  const tag = sealedTag(key, header.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + SEQ_BYTES), type, payload);
  tag.copy(header, FRAME_HEADER_BYTES + SEQ_BYTES);
  return header;
}

export type OpenResult = { payload: Buffer } | { error: 'protocol-error' | 'bad-seq' | 'bad-mac'; detail: string };

/** Checks a sealed frame's sequence number and tag; returns its payload. */
export function openSealed(type: FrameType, body: Buffer, key: KeyObject, expectedSeq: bigint): OpenResult {
  if (body.length < SEQ_BYTES + TAG_BYTES) return { error: 'protocol-error', detail: `sealed frame body of ${body.length} bytes` };
  const seqBytes = body.subarray(0, SEQ_BYTES);
  const tag = body.subarray(SEQ_BYTES, SEQ_BYTES + TAG_BYTES);
  const payload = body.subarray(SEQ_BYTES + TAG_BYTES);
  // The tag is checked first so that a forged frame learns nothing from the sequence check.
  if (!sameMac(sealedTag(key, seqBytes, type, payload), tag)) return { error: 'bad-mac', detail: 'frame tag does not verify' };
  const seq = seqBytes.readBigUInt64BE(0);
  if (seq !== expectedSeq) return { error: 'bad-seq', detail: `sequence ${seq}, expected ${expectedSeq} (replayed or dropped frame)` };
  return { payload };
}

function sealedTag(key: KeyObject, seqBytes: Buffer, type: FrameType, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(seqBytes).update(Buffer.from([type])).update(payload).digest().subarray(0, TAG_BYTES);
}

function nonceOf(helloFrame: Buffer): Buffer {
  return helloFrame.subarray(helloFrame.length - NONCE_BYTES);
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([prefix, bytes]);
}

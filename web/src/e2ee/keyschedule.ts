// What members derive from one epoch secret (docs/e2ee.md sections 5.3 to 5.5): the authenticator behind the
// security code, every sender's every stream's SFrame base key, and RFC 9605 keys and frames.

import { gcm } from '@noble/ciphers/aes.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concat, enc, wipe } from './bytes.js';
import { E2EEError, ErrMalformed } from './errors.js';
import { type CommitHeader, SFrameSuite, labelAuthenticator, labelSecurityCode, labelSenderKey, labelled } from './wire.js';

export interface EpochKeys {
  epoch: number;
  generation: number;
  commit: Uint8Array; // the commit header hash
  prk: Uint8Array;
  authenticator: Uint8Array;
}

export function newEpochKeys(secret: Uint8Array, h: Pick<CommitHeader, 'epoch' | 'generation' | 'hash' | 'rosterHash'>, authority: Uint8Array): EpochKeys {
  const prk = extract(sha256, secret, h.hash);
  const authenticator = expand(sha256, prk, labelled(labelAuthenticator, concat(authority, h.rosterHash)), 32);
  return { epoch: h.epoch, generation: h.generation, commit: h.hash, prk, authenticator };
}

export function wipeEpochKeys(k: EpochKeys): void {
  wipe(k.prk, k.authenticator);
}

/** baseKey is HKDF-Expand(prk, "meetguard/e2ee/v2 sender key" || 0 || uint16(i) || uint8(s), 32). */
export function baseKey(k: EpochKeys, senderIndex: number, stream: number): Uint8Array {
  return expand(sha256, k.prk, labelled(labelSenderKey, Uint8Array.of((senderIndex >>> 8) & 0xff, senderIndex & 0xff, stream & 0xff)), 32);
}

/** KID = epoch << 32 | generation << 24 | sender index << 8 | stream. */
export function kid(epoch: number, generation: number, senderIndex: number, stream: number): bigint {
  return (BigInt(epoch) << 32n) | (BigInt(generation & 0xff) << 24n) | (BigInt(senderIndex & 0xffff) << 8n) | BigInt(stream & 0xff);
}

export function splitKID(k: bigint): { epoch: number; generation: number; senderIndex: number; stream: number } {
  return { epoch: Number(k >> 32n), generation: Number((k >> 24n) & 0xffn), senderIndex: Number((k >> 8n) & 0xffffn), stream: Number(k & 0xffn) };
}

/** securityCode is the 40-digit code in eight groups of five (section 5.5). */
export function securityCode(authenticator: Uint8Array): string {
  const d = sha512(labelled(labelSecurityCode, authenticator));
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) {
    let v = 0n;
    for (const c of d.subarray(5 * i, 5 * i + 5)) v = (v << 8n) | BigInt(c);
    groups.push((v % 100000n).toString().padStart(5, '0'));
  }
  return groups.join(' ');
}

// ---- RFC 9605 SFrame, suite AES_128_GCM_SHA256_128

export interface SFrameKey {
  kid: bigint;
  key: Uint8Array; // 16 bytes
  salt: Uint8Array; // 12 bytes
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  for (let i = 7; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export function deriveSFrameKey(k: bigint, base: Uint8Array): SFrameKey {
  const secret = extract(sha256, base, new Uint8Array(0));
  const suite = Uint8Array.of(SFrameSuite >>> 8, SFrameSuite & 0xff);
  const key = expand(sha256, secret, concat(enc.encode('SFrame 1.0 Secret key '), u64(k), suite), 16);
  const salt = expand(sha256, secret, concat(enc.encode('SFrame 1.0 Secret salt '), u64(k), suite), 12);
  wipe(secret);
  return { kid: k, key, salt };
}

function minimal(x: bigint): Uint8Array {
  const out: number[] = [];
  while (x > 0n) {
    out.unshift(Number(x & 0xffn));
    x >>= 8n;
  }
  return Uint8Array.from(out);
}

export function sframeHeader(k: bigint, ctr: bigint): Uint8Array {
  let config = 0;
  const parts: Uint8Array[] = [];
  if (k < 8n) config |= Number(k) << 4;
  else {
    const m = minimal(k);
    config |= 0x80 | ((m.length - 1) << 4);
    parts.push(m);
  }
  if (ctr < 8n) config |= Number(ctr);
  else {
    const m = minimal(ctr);
    config |= 0x08 | (m.length - 1);
    parts.push(m);
  }
  return concat(Uint8Array.of(config), ...parts);
}

export function parseSFrameHeader(b: Uint8Array): { kid: bigint; ctr: bigint; length: number } {
  if (b.length === 0) throw new E2EEError(ErrMalformed, 'sframe: empty header');
  const config = b[0];
  let n = 1;
  const read = (field: string, extended: boolean, v: number): bigint => {
    if (!extended) return BigInt(v);
    const l = v + 1;
    if (b.length < n + l) throw new E2EEError(ErrMalformed, `sframe: ${field} truncated`);
    let x = 0n;
    for (const c of b.subarray(n, n + l)) x = (x << 8n) | BigInt(c);
    if (x < 8n || minimal(x).length !== l) throw new E2EEError(ErrMalformed, `sframe: ${field} not minimally encoded`);
    n += l;
    return x;
  };
  const k = read('kid', (config & 0x80) !== 0, (config >> 4) & 7);
  const ctr = read('ctr', (config & 0x08) !== 0, config & 7);
  return { kid: k, ctr, length: n };
}

function nonce(salt: Uint8Array, ctr: bigint): Uint8Array {
  const n = salt.slice();
  const c = u64(ctr);
  for (let i = 0; i < 8; i++) n[4 + i] ^= c[i];
  return n;
}

export function sframeProtect(k: SFrameKey, ctr: bigint, metadata: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const header = sframeHeader(k.kid, ctr);
  return concat(header, gcm(k.key, nonce(k.salt, ctr), concat(header, metadata)).encrypt(plaintext));
}

export function sframeUnprotect(k: SFrameKey, metadata: Uint8Array, frame: Uint8Array): Uint8Array {
  const h = parseSFrameHeader(frame);
  if (h.kid !== k.kid) throw new E2EEError(ErrMalformed, 'sframe: frame under another key');
  return gcm(k.key, nonce(k.salt, h.ctr), concat(frame.subarray(0, h.length), metadata)).decrypt(frame.subarray(h.length));
}

// HPKE (RFC 9180) base mode with HKDF-SHA256 and AES-128-GCM, over the two KEMs of docs/e2ee.md section 2:
// X-Wing (MLKEM768-X25519, 0x647a, draft-ietf-hpke-pq; @noble/post-quantum's ml_kem768_x25519) and
// DHKEM(X25519, HKDF-SHA256) (0x0020; @noble/curves' x25519). WebCrypto has neither ML-KEM nor X-Wing, so
// the KEM private keys are plain bytes in this page's memory, never stored.

import { gcm } from '@noble/ciphers/aes.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { concat, enc, wipe } from './bytes.js';
import { E2EEError, ErrUndecryptable, ErrUnsupportedKEM } from './errors.js';
import { KEMX25519, KEMXWing } from './wire.js';

const kdfID = 0x0001;
const aeadID = 0x0001;
const u16 = (v: number) => Uint8Array.of(v >>> 8, v & 0xff);
const v1 = enc.encode('HPKE-v1');

function labeledExtract(suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concat(v1, suite, enc.encode(label), ikm), salt);
}

function labeledExpand(suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, n: number): Uint8Array {
  return expand(sha256, prk, concat(u16(n), v1, suite, enc.encode(label), info), n);
}

/** KEMPrivateKey is one epoch's KEM key pair: the serialised private key (X-Wing seed or X25519 scalar). */
export interface KEMKeyPair {
  kem: number;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function kemSuite(kem: number): Uint8Array {
  return concat(enc.encode('KEM'), u16(kem));
}

function keyPairFromPrivate(kem: number, sk: Uint8Array): KEMKeyPair {
  if (kem === KEMXWing) return { kem, privateKey: sk, publicKey: ml_kem768_x25519.keygen(sk).publicKey };
  if (kem === KEMX25519) {
    // Clamped as RFC 7748 decodes it, so the serialised key is the one Go's crypto/ecdh reports.
    const c = sk.slice();
    c[0] &= 248;
    c[31] = (c[31] & 127) | 64;
    return { kem, privateKey: c, publicKey: x25519.getPublicKey(c) };
  }
  throw new E2EEError(ErrUnsupportedKEM, `kem 0x${kem.toString(16)}`);
}

/** generateKeyPair draws a fresh KEM key pair. */
export function generateKeyPair(kem: number): KEMKeyPair {
  return keyPairFromPrivate(kem, crypto.getRandomValues(new Uint8Array(32)));
}

/** deriveKeyPair is RFC 9180 DeriveKeyPair (SHAKE256 LabeledDerive for X-Wing, as draft-ietf-hpke-pq). */
export function deriveKeyPair(kem: number, ikm: Uint8Array): KEMKeyPair {
  const suite = kemSuite(kem);
  if (kem === KEMXWing) {
    const label = enc.encode('DeriveKeyPair');
    const sk = shake256(concat(ikm, v1, suite, u16(label.length), label, u16(32)), { dkLen: 32 });
    return keyPairFromPrivate(kem, sk);
  }
  if (kem === KEMX25519) {
    const prk = labeledExtract(suite, new Uint8Array(0), 'dkp_prk', ikm);
    return keyPairFromPrivate(kem, labeledExpand(suite, prk, 'sk', new Uint8Array(0), 32));
  }
  throw new E2EEError(ErrUnsupportedKEM, `kem 0x${kem.toString(16)}`);
}

function dhkemSharedSecret(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const suite = kemSuite(KEMX25519);
  const prk = labeledExtract(suite, new Uint8Array(0), 'eae_prk', dh);
  return labeledExpand(suite, prk, 'shared_secret', kemContext, 32);
}

function encap(kem: number, pkR: Uint8Array): { ss: Uint8Array; enc: Uint8Array } {
  if (kem === KEMXWing) {
    const r = ml_kem768_x25519.encapsulate(pkR);
    return { ss: r.sharedSecret, enc: r.cipherText };
  }
  if (kem === KEMX25519) {
    const skE = crypto.getRandomValues(new Uint8Array(32));
    const pkE = x25519.getPublicKey(skE);
    const dh = x25519.getSharedSecret(skE, pkR);
    wipe(skE);
    return { ss: dhkemSharedSecret(dh, concat(pkE, pkR)), enc: pkE };
  }
  throw new E2EEError(ErrUnsupportedKEM, `kem 0x${kem.toString(16)}`);
}

function encSize(kem: number): number {
  return kem === KEMXWing ? 1120 : 32;
}

function decap(k: KEMKeyPair, encapsulated: Uint8Array): Uint8Array {
  if (k.kem === KEMXWing) return ml_kem768_x25519.decapsulate(encapsulated, k.privateKey);
  const dh = x25519.getSharedSecret(k.privateKey, encapsulated);
  return dhkemSharedSecret(dh, concat(encapsulated, k.publicKey));
}

function keySchedule(kem: number, ss: Uint8Array, info: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const suite = concat(enc.encode('HPKE'), u16(kem), u16(kdfID), u16(aeadID));
  const empty = new Uint8Array(0);
  const pskIDHash = labeledExtract(suite, empty, 'psk_id_hash', empty);
  const infoHash = labeledExtract(suite, empty, 'info_hash', info);
  const context = concat(Uint8Array.of(0), pskIDHash, infoHash);
  const secret = labeledExtract(suite, ss, 'secret', empty);
  const out = { key: labeledExpand(suite, secret, 'key', context, 16), nonce: labeledExpand(suite, secret, 'base_nonce', context, 12) };
  wipe(secret);
  return out;
}

/** seal is single-shot HPKE base-mode Seal: enc || ciphertext, with an empty AAD. */
export function seal(kem: number, pkR: Uint8Array, info: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const { ss, enc: encapsulated } = encap(kem, pkR);
  const { key, nonce } = keySchedule(kem, ss, info);
  const ct = gcm(key, nonce, new Uint8Array(0)).encrypt(plaintext);
  wipe(ss, key);
  return concat(encapsulated, ct);
}

/** open is single-shot HPKE base-mode Open of enc || ciphertext. */
export function open(k: KEMKeyPair, info: Uint8Array, sealed: Uint8Array): Uint8Array {
  const n = encSize(k.kem);
  if (sealed.length < n + 16) throw new E2EEError(ErrUndecryptable, 'sealed secret too short');
  let ss: Uint8Array | undefined;
  let key: Uint8Array | undefined;
  try {
    ss = decap(k, sealed.subarray(0, n));
    const s = keySchedule(k.kem, ss, info);
    key = s.key;
    return gcm(s.key, s.nonce, new Uint8Array(0)).decrypt(sealed.subarray(n));
  } catch (e) {
    throw new E2EEError(ErrUndecryptable, String((e as Error).message ?? e));
  } finally {
    wipe(ss, key);
  }
}

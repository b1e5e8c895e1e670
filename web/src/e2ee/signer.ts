// Device keys: Ed25519 in WebCrypto with a non-extractable private key, so page script can sign with it but
// never read it (and nothing of it reaches localStorage).

import { ed25519 } from '@noble/curves/ed25519.js';
import { concat, fromHex } from './bytes.js';
import type { Signer } from './wire.js';

class WebCryptoSigner implements Signer {
  constructor(
    readonly publicKey: Uint8Array,
    private readonly key: CryptoKey,
  ) {}
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign('Ed25519', this.key, message as BufferSource));
  }
}

/** generateDeviceKey makes a fresh device key whose private half cannot be exported. */
export async function generateDeviceKey(): Promise<Signer> {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return new WebCryptoSigner(pub, pair.privateKey);
}

// PKCS#8 prefix of an Ed25519 private key (RFC 8410) before its 32-byte seed.
const pkcs8Prefix = fromHex('302e020100300506032b657004220420');

/**
 * importSigningSeed imports an Ed25519 seed as a non-extractable key (tests and the published vectors; a
 * page uses generateDeviceKey).
 */
export async function importSigningSeed(seed: Uint8Array): Promise<Signer> {
  const publicKey = ed25519.getPublicKey(seed);
  const key = await crypto.subtle.importKey('pkcs8', concat(pkcs8Prefix, seed) as BufferSource, { name: 'Ed25519' }, false, ['sign']);
  return new WebCryptoSigner(publicKey, key);
}

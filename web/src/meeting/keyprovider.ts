// MeetguardKeyProvider feeds LiveKit's E2EE worker, in per-participant key mode, with the keys meetguard's
// key exchange derives: each member's key for the current epoch and generation, rotated on every one, and
// random garbage in place of a removed member's (or, once this page is removed or halted, everyone's).

import { BaseKeyProvider } from 'livekit-client';
import { KeyringSize } from './keyindex.js';

export { KeyringSize, LiveKitStream, keyIndex } from './keyindex.js';

async function material(raw: Uint8Array): Promise<CryptoKey> {
  // What livekit-client's createKeyMaterialFromBuffer does: HKDF key material, not extractable.
  return crypto.subtle.importKey('raw', raw as BufferSource, { name: 'HKDF' }, false, ['deriveBits', 'deriveKey']);
}

export class MeetguardKeyProvider extends BaseKeyProvider {
  constructor() {
    super({ sharedKey: false, ratchetWindowSize: 0, failureTolerance: -1, keyringSize: KeyringSize });
  }

  /** setKey installs a participant's key at an index (the local participant's becomes its sending key). */
  async setKey(identity: string, raw: Uint8Array, index: number): Promise<void> {
    this.onSetEncryptionKey(await material(raw), identity, index);
  }

  /** dropKey overwrites a participant's key at each index with random bytes: nothing of it decrypts any more. */
  async dropKey(identity: string, indexes: Iterable<number>): Promise<void> {
    for (const i of indexes) await this.setKey(identity, crypto.getRandomValues(new Uint8Array(32)), i);
  }
}

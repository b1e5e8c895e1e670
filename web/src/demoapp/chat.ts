// The demo app's end-to-end encrypted chat (docs/e2ee.md section 5.5): every message is one RFC 9605 SFrame
// ciphertext under the sender's key for stream ChatStream of the current epoch and generation, with the room
// named in the metadata (the AEAD's associated data). The demo app relays the ciphertext and never holds a key:
// a member removed from the room has no key of any later epoch, so nothing said after its removal opens.

import { E2EEError, ErrMalformed, ErrReplay } from '../e2ee/errors.js';
import { wipe } from '../e2ee/bytes.js';
import { parseSFrameHeader, sframeProtect, sframeUnprotect, splitKID, type SFrameKey } from '../e2ee/keyschedule.js';

/** The KID stream number of the chat (docs/e2ee.md section 5.3: 255 is LiveKit's, 254 the chat's). */
export const ChatStream = 254;

/** The largest chat ciphertext accepted (500 characters of UTF-8, the SFrame header and tag fit well within). */
export const MaxChatFrame = 2048;

/** How far below the highest counter of a sender's key a message may still arrive (the replay window). */
export const ChatWindow = 1024;

/** ChatKeys is what the cipher needs of the key client (web/src/e2ee Client implements it). */
export interface ChatKeys {
  encryptionKey(stream: number): SFrameKey;
  decryptionKey(kid: bigint): { key: SFrameKey; sender: string };
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** chatMetadata is the associated data of a room's chat messages: a message replayed into another room fails. */
export function chatMetadata(room: string): Uint8Array {
  return enc.encode('meetguard/e2ee/v2 chat ' + room);
}

export class ChatCipher {
  private readonly aad: Uint8Array;
  private readonly next = new Map<bigint, bigint>(); // own KID → next counter
  private readonly accepted = new Map<bigint, { top: bigint; seen: Set<bigint> }>(); // sender KID → window

  constructor(private readonly keys: ChatKeys, room: string) {
    this.aad = chatMetadata(room);
  }

  /** seal encrypts one message under this member's current chat key; it throws without a key (no_key). */
  seal(text: string): Uint8Array {
    const k = this.keys.encryptionKey(ChatStream);
    const ctr = this.next.get(k.kid) ?? 0n;
    this.next.set(k.kid, ctr + 1n);
    try {
      return sframeProtect(k, ctr, this.aad, enc.encode(text));
    } finally {
      wipe(k.key, k.salt);
    }
  }

  /**
   * open decrypts a message and names its sender (credential hash, hex) from the key that opened it, never
   * from what the relay says. It throws on a frame of another stream, one too large, under a key this member
   * does not hold (no_key: for example sent after its removal), one that fails authentication, or a replay.
   */
  open(frame: Uint8Array): { text: string; sender: string } {
    if (frame.length > MaxChatFrame) throw new E2EEError(ErrMalformed, `chat: message of ${frame.length} bytes`);
    const h = parseSFrameHeader(frame);
    if (splitKID(h.kid).stream !== ChatStream) throw new E2EEError(ErrMalformed, 'chat: not a chat message');
    const w = this.accepted.get(h.kid);
    if (w && (w.seen.has(h.ctr) || h.ctr + BigInt(ChatWindow) < w.top)) throw new E2EEError(ErrReplay, `chat: counter ${h.ctr} seen or too old`);
    const { key, sender } = this.keys.decryptionKey(h.kid);
    let pt: Uint8Array;
    try {
      pt = sframeUnprotect(key, this.aad, frame);
    } catch (e) {
      throw new E2EEError(ErrMalformed, `chat: message does not authenticate: ${(e as Error).message}`);
    } finally {
      wipe(key.key, key.salt);
    }
    const text = dec.decode(pt); // a valid key holder sending invalid UTF-8 is refused too (throws)
    const win = w ?? { top: h.ctr, seen: new Set<bigint>() };
    win.seen.add(h.ctr);
    if (h.ctr > win.top) win.top = h.ctr;
    for (const c of win.seen) if (c + BigInt(ChatWindow) < win.top) win.seen.delete(c);
    this.accepted.set(h.kid, win);
    return { text, sender };
  }
}

/** toBase64URL and fromBase64URL carry ciphertexts in the demo app's JSON messages (RFC 4648 section 5, no padding). */
export function toBase64URL(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64URL(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new E2EEError(ErrMalformed, 'chat: not base64url');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

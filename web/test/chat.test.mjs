// The demo app's SFrame chat (src/demoapp/chat.ts): RFC 9605's own test vectors for the suite the protocol
// uses (crypto/sframe/testdata/rfc9605.json, suite 0x0004), then chat messages under the published epoch
// keys of crypto/testdata/e2ee-vectors.json: who can open them, and what is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(mkdtempSync(join(tmpdir(), 'mg-chat-')), 'chat.mjs');
await build({
  stdin: { contents: "export * from './src/e2ee/index.ts'; export * from './src/demoapp/chat.ts';", resolveDir: join(here, '..'), loader: 'ts' },
  bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error',
});
const m = await import(pathToFileURL(out).href);
const { fromHex: h, hex } = m;
const rfc = JSON.parse(readFileSync(join(root, 'crypto', 'sframe', 'testdata', 'rfc9605.json'), 'utf8'));
const v = JSON.parse(readFileSync(join(root, 'crypto', 'testdata', 'e2ee-vectors.json'), 'utf8'));

test('RFC 9605 appendix C: header encodings and the AES_128_GCM_SHA256_128 encryption vector', () => {
  for (const x of rfc.headers) {
    const kid = BigInt('0x' + x.kid);
    const ctr = BigInt('0x' + x.ctr);
    assert.equal(hex(m.sframeHeader(kid, ctr)), x.header);
    assert.deepEqual(m.parseSFrameHeader(h(x.header)), { kid, ctr, length: x.header.length / 2 });
  }
  for (const x of rfc.encryption) {
    assert.equal(x.cipher_suite, m.SFrameSuite);
    const kid = BigInt('0x' + x.kid);
    const k = m.deriveSFrameKey(kid, h(x.base_key));
    assert.equal(hex(k.key), x.sframe_key);
    assert.equal(hex(k.salt), x.sframe_salt);
    const ct = m.sframeProtect(k, BigInt('0x' + x.ctr), h(x.metadata), h(x.pt));
    assert.equal(hex(ct), x.ct);
    assert.equal(hex(m.sframeUnprotect(k, h(x.metadata), ct)), x.pt);
  }
});

// keysOf is a member's key source for one epoch's keys, as the key client derives them (Client implements the
// same two methods over its verified state).
const c = v.commit;
const members = v.rosters.find((r) => r.epoch === c.epoch).members.map(h);
const header = m.parseCommitHeader(h(c.header));
const epochKeys = (secret) => m.newEpochKeys(secret, header, h(v.authority.public_key));
function keysOf(index, keys) {
  return {
    encryptionKey: (stream) => m.deriveSFrameKey(m.kid(keys.epoch, keys.generation, index, stream), m.baseKey(keys, index, stream)),
    decryptionKey: (k) => {
      const s = m.splitKID(k);
      if (s.epoch !== keys.epoch || s.generation !== keys.generation || s.senderIndex >= members.length) throw new m.E2EEError(m.ErrNoKey, 'no key');
      return { key: m.deriveSFrameKey(k, m.baseKey(keys, s.senderIndex, s.stream)), sender: hex(members[s.senderIndex]) };
    },
  };
}
const alice = v.devices.find((d) => d.name === 'alice');
const aliceIndex = members.findIndex((x) => hex(x) === alice.credential_hash);
const bobIndex = (aliceIndex + 1) % members.length;
const kind = (k) => (e) => e.kind === k;

test('a chat message is one SFrame frame on stream 254 that the other member opens and attributes by key', () => {
  const keys = epochKeys(h(c.epoch_secret));
  const a = new m.ChatCipher(keysOf(aliceIndex, keys), v.room);
  const b = new m.ChatCipher(keysOf(bobIndex, keys), v.room);
  const frame = a.seal('hello, Bob — xin chào');
  // Exactly RFC 9605 under the protocol's key of (epoch, generation, alice, stream 254), counter 0, the room
  // as metadata: nothing of the text is visible outside the ciphertext.
  const k = m.kid(c.epoch, c.generation, aliceIndex, m.ChatStream);
  assert.equal(m.ChatStream, 254);
  const want = m.sframeProtect(m.deriveSFrameKey(k, m.baseKey(keys, aliceIndex, 254)), 0n, new TextEncoder().encode('meetguard/e2ee/v2 chat ' + v.room), new TextEncoder().encode('hello, Bob — xin chào'));
  assert.equal(hex(frame), hex(want));
  assert.ok(!Buffer.from(frame).includes(Buffer.from('hello')));
  assert.deepEqual(b.open(frame), { text: 'hello, Bob — xin chào', sender: alice.credential_hash });
  // Counters advance: no two messages of one key share a nonce.
  const second = a.seal('again');
  assert.equal(m.parseSFrameHeader(second).ctr, 1n);
  assert.equal(b.open(second).text, 'again');
  // base64url carries it in the demo app's JSON
  assert.equal(hex(m.fromBase64URL(m.toBase64URL(frame))), hex(frame));
});

test('refused: replay, another room, tampering, a media frame, too large, bad base64url', () => {
  const keys = epochKeys(h(c.epoch_secret));
  const a = new m.ChatCipher(keysOf(aliceIndex, keys), v.room);
  const b = new m.ChatCipher(keysOf(bobIndex, keys), v.room);
  const frame = a.seal('once');
  b.open(frame);
  assert.throws(() => b.open(frame), kind('replay'));
  const elsewhere = new m.ChatCipher(keysOf(bobIndex, keys), v.room + '-other');
  assert.throws(() => elsewhere.open(a.seal('wrong room')), kind('malformed'));
  const t = a.seal('tampered');
  t[t.length - 1] ^= 1;
  assert.throws(() => b.open(t), kind('malformed'));
  assert.equal(b.open(a.seal('the window did not move')).text, 'the window did not move');
  const media = m.sframeProtect(keysOf(aliceIndex, keys).encryptionKey(1), 0n, new Uint8Array(0), new Uint8Array(4));
  assert.throws(() => b.open(media), /not a chat message/);
  assert.throws(() => b.open(new Uint8Array(m.MaxChatFrame + 1)), kind('malformed'));
  for (const s of ['a', 'ab+c', 'ab/c', 'ab=c', 'a b']) assert.throws(() => m.fromBase64URL(s), kind('malformed'));
});

test('a member removed before an epoch cannot open anything said in it', () => {
  const old = epochKeys(h(c.epoch_secret));
  const next = epochKeys(new Uint8Array(32).fill(7)); // the next epoch's secret, never sealed to the removed one
  const removed = new m.ChatCipher(keysOf(bobIndex, old), v.room);
  const before = new m.ChatCipher(keysOf(aliceIndex, old), v.room).seal('before');
  assert.equal(removed.open(before).text, 'before');
  // Same epoch number in this fixture, other secret: the frame names a key the removed member does not hold.
  const after = new m.ChatCipher(keysOf(aliceIndex, { ...next, generation: next.generation + 1 }), v.room).seal('after');
  assert.throws(() => removed.open(after), kind('no_key'));
  // Even told the KID is "its" epoch, its old key does not authenticate the new message.
  const sameKid = new m.ChatCipher(keysOf(aliceIndex, next), v.room).seal('after, same label');
  assert.throws(() => new m.ChatCipher(keysOf(bobIndex, old), v.room).open(sameKid), kind('malformed'));
});

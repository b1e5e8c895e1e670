// The TypeScript client reproduces every published v2 test vector (crypto/testdata/e2ee-vectors.json) byte
// for byte, and opens the Go-sealed secrets (HPKE ciphertexts are random, so those are read and opened).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadE2EE } from '../testlib/build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const v = JSON.parse(readFileSync(join(here, '..', '..', 'crypto', 'testdata', 'e2ee-vectors.json'), 'utf8'));
const m = await loadE2EE();
const { fromHex: h, hex } = m;
const byName = Object.fromEntries(v.devices.map((d) => [d.name, d]));

test('authority key', async () => {
  const s = await m.importSigningSeed(h(v.authority.seed));
  assert.equal(hex(s.publicKey), v.authority.public_key);
});

for (const d of v.devices) {
  test(`device ${d.name}: keys, key package, challenge, registration, credential`, async () => {
    const dev = await m.importSigningSeed(h(d.signing_seed));
    assert.equal(hex(dev.publicKey), d.signing_public_key);
    assert.equal(m.deviceFingerprint(dev.publicKey), d.fingerprint);
    const kem = m.deriveKeyPair(d.kem_id, h(d.kem_ikm));
    assert.equal(hex(kem.privateKey), d.kem_private_key);
    assert.equal(hex(kem.publicKey), d.kem_public_key);

    const id = { issuer: d.issuer, subject: d.subject };
    const fields = { room: v.room, instance: v.instance, identity: id, signingKey: dev.publicKey, seq: 1, kem: d.kem_id, kemKey: kem.publicKey, notAfterMs: d.key_package_not_after_ms };
    assert.equal(hex(m.encodeKeyPackageTBS(fields)), d.key_package_tbs);
    const kp = await m.signKeyPackage(dev, fields);
    assert.equal(hex(kp.raw), d.key_package);
    assert.equal(hex(kp.hash), d.key_package_hash);
    const parsed = m.parseKeyPackage(h(d.key_package));
    assert.equal(parsed.seq, 1);
    assert.equal(parsed.kem, d.kem_id);

    const ch = m.parseChallenge(h(d.challenge));
    assert.equal(hex(m.marshalChallenge(ch)), d.challenge);
    assert.deepEqual(ch.identity, id);
    assert.equal(hex(m.registrationProofTBS(v.room, v.instance, ch.nonce, dev.publicKey, kp.raw)), d.registration_proof_tbs);
    assert.equal(hex(await m.newRegistration(dev, kp, ch)), d.registration);

    const cf = { room: v.room, instance: v.instance, identity: id, displayName: d.display_name, role: d.role, signingKey: dev.publicKey, notAfter: d.not_after };
    assert.equal(hex(m.encodeCredentialTBS(cf)), d.credential_tbs);
    const auth = await m.importSigningSeed(h(v.authority.seed));
    const cred = await m.issueCredential(auth, cf);
    assert.equal(hex(cred.raw), d.credential);
    assert.equal(hex(cred.hash), d.credential_hash);
    assert.ok(m.verifyCredential(m.parseCredential(h(d.credential)), h(v.authority.public_key)));
    // The same credential does not verify under another key.
    assert.ok(!m.verifyCredential(cred, dev.publicKey));
    m.checkKeyPackageFor(parsed, cred, d.key_package_not_after_ms - 1);
  });
}

test('roster chain', async () => {
  const auth = await m.importSigningSeed(h(v.authority.seed));
  let prev = new Uint8Array(32);
  for (const r of v.rosters) {
    const fields = { room: v.room, instance: v.instance, epoch: r.epoch, issuedMs: r.issued_ms, prev, locked: r.locked, members: r.members.map(h) };
    assert.equal(hex(m.encodeRosterTBS(fields)), r.tbs);
    const signed = await m.issueRoster(auth, fields);
    assert.equal(hex(signed.raw), r.encoding);
    assert.equal(hex(signed.hash), r.hash);
    const parsed = m.parseRoster(h(r.encoding));
    assert.ok(m.verifyRoster(parsed, auth.publicKey));
    prev = parsed.hash;
  }
});

test('commit: header, entries, Merkle root, sealed secrets open to the epoch secret', async () => {
  const c = v.commit;
  const roster = m.parseRoster(h(v.rosters.find((r) => r.epoch === c.epoch).encoding));
  const committer = byName[c.committer];
  const leaves = [];
  for (const e of c.entries) {
    const r = byName[e.recipient];
    const info = m.epochSecretInfo(v.room, v.instance, c.epoch, c.generation, roster.hash, h(committer.credential_hash), h(r.credential_hash), h(e.key_package_hash));
    assert.equal(hex(info), e.hpke_info);
    assert.equal(hex(m.leafHash(h(r.credential_hash), h(e.key_package_hash), h(e.sealed))), e.leaf_hash);
    leaves.push(h(e.leaf_hash));
    // Open the Go-sealed secret with the recipient's derived KEM key.
    const kem = m.deriveKeyPair(r.kem_id, h(r.kem_ikm));
    assert.equal(hex(m.open(kem, info, h(e.sealed))), c.epoch_secret);
    // A TS-sealed secret opens too, and not under another info.
    const sealed = m.seal(r.kem_id, kem.publicKey, info, h(c.epoch_secret));
    assert.equal(hex(m.open(kem, info, sealed)), c.epoch_secret);
    assert.throws(() => m.open(kem, m.concat(info, Uint8Array.of(1)), sealed), (err) => err.kind === 'undecryptable');
  }
  assert.equal(hex(m.merkleRoot(leaves)), c.root);
  const dev = await m.importSigningSeed(h(committer.signing_seed));
  const fields = { room: v.room, instance: v.instance, epoch: c.epoch, generation: c.generation, rosterHash: roster.hash, committer: h(committer.credential_hash), suite: 4, kems: c.kems, leafCount: c.entries.length, root: h(c.root) };
  assert.equal(hex(m.encodeCommitHeaderTBS(fields)), c.header_tbs);
  const header = await m.signCommitHeader(dev, fields);
  assert.equal(hex(header.raw), c.header);
  assert.equal(hex(header.hash), c.header_hash);
  const entries = c.entries.map((e) => ({ recipient: h(byName[e.recipient].credential_hash), keyPackage: h(e.key_package_hash), sealed: h(e.sealed) }));
  assert.equal(hex(m.marshalCommit(header, entries)), c.encoding);
  const { paths } = m.merkleTree(leaves);
  for (const [i, s] of c.sealed_secrets.entries()) {
    const ss = m.parseSealedSecret(h(s.encoding));
    assert.equal(hex(m.marshalSealedSecret(ss)), s.encoding);
    assert.deepEqual(ss.proof.map(hex), paths[ss.index].map(hex));
    assert.ok(m.verifyInclusion(leaves[ss.index], ss.index, leaves.length, ss.proof, h(c.root)));
    assert.ok(m.verifyCommitHeader(ss.header, dev.publicKey));
    const r = byName[s.recipient];
    const info = m.epochSecretInfo(v.room, v.instance, c.epoch, c.generation, roster.hash, h(committer.credential_hash), h(r.credential_hash), ss.keyPackage);
    assert.equal(hex(m.open(m.deriveKeyPair(r.kem_id, h(r.kem_ikm)), info, ss.sealed)), c.epoch_secret, `sealed secret ${i}`);
  }
});

test('epoch keys, authenticator, security code, SFrame frames', async () => {
  const c = v.commit;
  const roster = m.parseRoster(h(v.rosters.find((r) => r.epoch === c.epoch).encoding));
  const header = m.parseCommitHeader(h(c.header));
  assert.equal(hex(m.labelled(m.labelAuthenticator, m.concat(h(v.authority.public_key), roster.hash))), v.epoch_keys.authenticator_info);
  const keys = m.newEpochKeys(h(c.epoch_secret), header, h(v.authority.public_key));
  assert.equal(hex(keys.authenticator), v.epoch_keys.authenticator);
  assert.equal(m.securityCode(keys.authenticator), v.epoch_keys.security_code);
  for (const f of v.sframe_frames) {
    const k = m.kid(c.epoch, c.generation, f.sender_index, f.stream);
    assert.equal(k, BigInt(f.kid));
    assert.deepEqual(m.splitKID(k), { epoch: c.epoch, generation: c.generation, senderIndex: f.sender_index, stream: f.stream });
    const base = m.baseKey(keys, f.sender_index, f.stream);
    assert.equal(hex(base), f.base_key);
    const sk = m.deriveSFrameKey(k, base);
    assert.equal(hex(sk.key), f.sframe_key);
    assert.equal(hex(sk.salt), f.sframe_salt);
    const ct = m.sframeProtect(sk, BigInt(f.ctr), h(f.metadata), h(f.plaintext));
    assert.equal(hex(ct), f.ciphertext);
    assert.equal(hex(m.sframeUnprotect(sk, h(f.metadata), ct)), f.plaintext);
  }
  for (const sc of v.security_codes) assert.equal(m.securityCode(h(sc.authenticator)), sc.code);
});

test('strict parsers refuse trailing bytes, truncation, bad versions and unsorted members', () => {
  const d = v.devices[0];
  const good = h(d.credential);
  assert.throws(() => m.parseCredential(m.concat(good, Uint8Array.of(0))), (e) => e.kind === 'malformed');
  assert.throws(() => m.parseCredential(good.subarray(0, good.length - 1)), (e) => e.kind === 'malformed');
  const badVersion = good.slice();
  badVersion[2] = 1;
  assert.throws(() => m.parseCredential(badVersion), /unsupported version 1/);
  const r = v.rosters.find((x) => x.members.length > 1);
  const fields = { room: v.room, instance: v.instance, epoch: 9, issuedMs: 0, prev: new Uint8Array(32), locked: false, members: r.members.map(h).reverse() };
  assert.throws(() => m.encodeRosterTBS(fields), /not strictly ascending/);
});

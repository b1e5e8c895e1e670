// The messages of docs/e2ee.md section 4: strict parsers and unique encoders, byte for byte those of
// crypto/e2ee (checked against crypto/testdata/e2ee-vectors.json).

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Reader, Writer, checkText, compare, concat, enc, equal, hex } from './bytes.js';
import { E2EEError, ErrBadSignature, ErrContextMismatch, ErrCredentialExpired, ErrIdentityMismatch, ErrMalformed, ErrUnsupportedKEM } from './errors.js';

export const labelCredential = 'meetguard/e2ee/v2 credential';
export const labelKeyPackage = 'meetguard/e2ee/v2 key package';
export const labelRoster = 'meetguard/e2ee/v2 roster';
export const labelCommit = 'meetguard/e2ee/v2 commit';
export const labelRegistration = 'meetguard/e2ee/v2 registration';
export const labelEpochSecret = 'meetguard/e2ee/v2 epoch secret';
export const labelAuthenticator = 'meetguard/e2ee/v2 authenticator';
export const labelSenderKey = 'meetguard/e2ee/v2 sender key';
export const labelDevice = 'meetguard/e2ee/v2 device';
export const labelSecurityCode = 'meetguard/e2ee/v2 security code';

export const maxRoom = 256;
export const maxInstance = 128;
export const maxIssuer = 512;
export const maxSubject = 512;
export const maxDisplayName = 256;
export const maxMembers = 65535;
export const maxSealed = 4096;
const maxProof = 16;

export const KEMXWing = 0x647a;
export const KEMX25519 = 0x0020;
export const SFrameSuite = 0x0004;

export function kemName(k: number): string {
  return k === KEMXWing ? 'X-Wing' : k === KEMX25519 ? 'X25519' : `kem(0x${k.toString(16).padStart(4, '0')})`;
}

export function kemKeySize(k: number): number {
  if (k === KEMXWing) return 1216;
  if (k === KEMX25519) return 32;
  throw new E2EEError(ErrUnsupportedKEM, kemName(k));
}

/** label || 0x00 || tbs: the exact bytes that are signed and hashed. */
export function labelled(label: string, tbs: Uint8Array): Uint8Array {
  return concat(enc.encode(label), Uint8Array.of(0), tbs);
}

export function digest(label: string, tbs: Uint8Array): Uint8Array {
  return sha256(labelled(label, tbs));
}

/** Strict RFC 8032 verification (no ZIP-215 leniency), as Go's crypto/ed25519. */
export function verify(pub: Uint8Array, label: string, tbs: Uint8Array, sig: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false;
  try {
    return ed25519.verify(sig, labelled(label, tbs), pub, { zip215: false });
  } catch {
    return false;
  }
}

/** Signer is a device or authority key. Device keys are non-extractable WebCrypto keys (signer.ts). */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export async function sign(s: Signer, label: string, tbs: Uint8Array): Promise<Uint8Array> {
  return s.sign(labelled(label, tbs));
}

export interface Identity {
  issuer: string;
  subject: string;
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.issuer === b.issuer && a.subject === b.subject;
}

/** matches: an empty expected issuer matches any issuer. */
export function identityMatches(id: Identity, expected: Identity): boolean {
  return id.subject === expected.subject && (expected.issuer === '' || id.issuer === expected.issuer);
}

function checkIdentity(what: string, id: Identity): void {
  checkText(what, 'issuer', id.issuer, 1, maxIssuer);
  checkText(what, 'subject', id.subject, 1, maxSubject);
}

/** Signed is the common shape tbs<uN> || signature[64]. */
export interface Signed {
  raw: Uint8Array;
  tbs: Uint8Array;
  sig: Uint8Array;
  hash: Uint8Array;
}

function splitSigned(what: string, b: Uint8Array, prefix: 2 | 4, max: number): { tbs: Uint8Array; sig: Uint8Array } {
  const outer = new Reader(what, b);
  const tbs = outer.bytes('tbs', prefix, 1, max);
  const sig = outer.fixed('signature', 64);
  outer.end();
  return { tbs, sig };
}

async function wrapSigned(signer: Signer, label: string, tbs: Uint8Array, prefix: 2 | 4): Promise<Uint8Array> {
  return new Writer().bytes(prefix, tbs).raw(await sign(signer, label, tbs)).finish();
}

// ---- Credential (4.3)

export interface Credential extends Signed {
  room: string;
  instance: string;
  identity: Identity;
  displayName: string;
  role: number;
  signingKey: Uint8Array;
  notAfter: number; // Unix seconds
}

export type CredentialFields = Omit<Credential, keyof Signed>;

export function encodeCredentialTBS(c: CredentialFields): Uint8Array {
  const what = 'credential';
  checkText(what, 'room', c.room, 1, maxRoom);
  checkText(what, 'instance', c.instance, 1, maxInstance);
  checkIdentity(what, c.identity);
  checkText(what, 'display_name', c.displayName, 0, maxDisplayName);
  if (c.role < 1 || c.role > 3) throw new E2EEError(ErrMalformed, `credential.role: unknown role ${c.role}`);
  if (c.signingKey.length !== 32) throw new E2EEError(ErrMalformed, 'credential.signing_key: want 32 bytes');
  return new Writer()
    .u8(2)
    .text(c.room)
    .text(c.instance)
    .text(c.identity.issuer)
    .text(c.identity.subject)
    .text(c.displayName)
    .u8(c.role)
    .raw(c.signingKey)
    .u64(c.notAfter)
    .finish();
}

export async function issueCredential(authority: Signer, c: CredentialFields): Promise<Credential> {
  return parseCredential(await wrapSigned(authority, labelCredential, encodeCredentialTBS(c), 2));
}

export function parseCredential(b: Uint8Array): Credential {
  const { tbs, sig } = splitSigned('credential', b, 2, 0xffff);
  const p = new Reader('credential', tbs);
  p.version();
  const room = p.text('room', 1, maxRoom);
  const instance = p.text('instance', 1, maxInstance);
  const identity = { issuer: p.text('issuer', 1, maxIssuer), subject: p.text('subject', 1, maxSubject) };
  const displayName = p.text('display_name', 0, maxDisplayName);
  const role = p.u8('role');
  if (p.ok() && (role < 1 || role > 3)) p.fail('role', `unknown role ${role}`);
  const signingKey = p.fixed('signing_key', 32);
  const notAfter = p.u64('not_after');
  p.end();
  return { room, instance, identity, displayName, role, signingKey, notAfter, raw: b.slice(), tbs, sig, hash: digest(labelCredential, tbs) };
}

export function verifyCredential(c: Credential, authority: Uint8Array): boolean {
  return verify(authority, labelCredential, c.tbs, c.sig);
}

/** The device fingerprint: the first 8 bytes of SHA-256(label || 0 || key) as four groups of four hex digits. */
export function deviceFingerprint(key: Uint8Array): string {
  const h = hex(sha256(labelled(labelDevice, key)).subarray(0, 8));
  return `${h.slice(0, 4)}-${h.slice(4, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}`;
}

// ---- Key package (4.4)

export interface KeyPackage extends Signed {
  room: string;
  instance: string;
  identity: Identity;
  signingKey: Uint8Array;
  seq: number;
  kem: number;
  kemKey: Uint8Array;
  notAfterMs: number;
}

export type KeyPackageFields = Omit<KeyPackage, keyof Signed>;

function checkKEMKey(kem: number, key: Uint8Array): void {
  const n = kemKeySize(kem);
  if (key.length !== n) throw new E2EEError(ErrMalformed, `key_package.kem_key: ${kemName(kem)} key of ${key.length} bytes, want ${n}`);
}

export function encodeKeyPackageTBS(k: KeyPackageFields): Uint8Array {
  const what = 'key_package';
  checkText(what, 'room', k.room, 1, maxRoom);
  checkText(what, 'instance', k.instance, 1, maxInstance);
  checkIdentity(what, k.identity);
  if (k.signingKey.length !== 32) throw new E2EEError(ErrMalformed, 'key_package.signing_key: want 32 bytes');
  checkKEMKey(k.kem, k.kemKey);
  return new Writer()
    .u8(2)
    .text(k.room)
    .text(k.instance)
    .text(k.identity.issuer)
    .text(k.identity.subject)
    .raw(k.signingKey)
    .u64(k.seq)
    .u16(k.kem)
    .bytes(2, k.kemKey)
    .u64(k.notAfterMs)
    .finish();
}

export async function signKeyPackage(device: Signer, k: KeyPackageFields): Promise<KeyPackage> {
  return parseKeyPackage(await wrapSigned(device, labelKeyPackage, encodeKeyPackageTBS(k), 2));
}

export function parseKeyPackage(b: Uint8Array): KeyPackage {
  const { tbs, sig } = splitSigned('key_package', b, 2, 0xffff);
  const p = new Reader('key_package', tbs);
  p.version();
  const room = p.text('room', 1, maxRoom);
  const instance = p.text('instance', 1, maxInstance);
  const identity = { issuer: p.text('issuer', 1, maxIssuer), subject: p.text('subject', 1, maxSubject) };
  const signingKey = p.fixed('signing_key', 32);
  const seq = p.u64('seq');
  const kem = p.u16('kem_id');
  const kemKey = p.bytes('kem_key', 2, 1, 0xffff);
  const notAfterMs = p.u64('not_after_ms');
  p.end();
  checkKEMKey(kem, kemKey);
  return { room, instance, identity, signingKey, seq, kem, kemKey, notAfterMs, raw: b.slice(), tbs, sig, hash: digest(labelKeyPackage, tbs) };
}

/**
 * checkKeyPackageFor verifies that k is the member's own current key package: signed by the device key cred
 * certifies, for cred's room, instance and identity, unexpired at nowMs. Every client runs it before sealing.
 */
/**
 * renews reports whether c may replace old in one epoch as its renewal (docs/e2ee.md section 7.4): the same room,
 * instance, identity, display name, role and device key, and a strictly later expiry.
 */
export function renews(c: Credential | undefined, old: Credential | undefined): boolean {
  return !!c && !!old && c.room === old.room && c.instance === old.instance && sameIdentity(c.identity, old.identity) &&
    c.displayName === old.displayName && c.role === old.role && equal(c.signingKey, old.signingKey) && c.notAfter > old.notAfter;
}

export function checkKeyPackageFor(k: KeyPackage, cred: Credential, nowMs: number): void {
  if (!equal(k.signingKey, cred.signingKey)) throw new E2EEError(ErrBadSignature, 'key package of another device');
  if (!verify(k.signingKey, labelKeyPackage, k.tbs, k.sig)) throw new E2EEError(ErrBadSignature, "key package not signed by the member's device key");
  if (k.room !== cred.room || k.instance !== cred.instance) throw new E2EEError(ErrContextMismatch, `key package for room ${JSON.stringify(k.room)} instance ${JSON.stringify(k.instance)}`);
  if (!sameIdentity(k.identity, cred.identity)) throw new E2EEError(ErrIdentityMismatch, `key package names ${k.identity.subject}, credential ${cred.identity.subject}`);
  if (!(k.notAfterMs > nowMs)) throw new E2EEError(ErrCredentialExpired, `key package expired at ${k.notAfterMs}`);
}

export function marshalKeyPackages(items: Uint8Array[]): Uint8Array {
  const inner = new Writer();
  for (const it of items) inner.bytes(2, it);
  return new Writer().bytes(4, inner.finish()).finish();
}

export function parseKeyPackages(b: Uint8Array): KeyPackage[] {
  const p = new Reader('key_packages', b);
  const items = p.list('key_packages', p.bytes('key_packages', 4, 0, 2 ** 31), 2, maxMembers);
  p.end();
  return items.map(parseKeyPackage);
}

// ---- Roster (4.5)

export interface Roster extends Signed {
  room: string;
  instance: string;
  epoch: number;
  issuedMs: number;
  prev: Uint8Array;
  locked: boolean;
  members: Uint8Array[];
}

export type RosterFields = Omit<Roster, keyof Signed>;

export function encodeRosterTBS(r: RosterFields): Uint8Array {
  checkText('roster', 'room', r.room, 1, maxRoom);
  checkText('roster', 'instance', r.instance, 1, maxInstance);
  if (r.epoch < 1 || r.epoch > 2 ** 32 - 1) throw new E2EEError(ErrMalformed, `roster.epoch: ${r.epoch} outside 1..2^32-1`);
  if (r.members.length > maxMembers) throw new E2EEError(ErrMalformed, 'roster.members: too many');
  for (let i = 1; i < r.members.length; i++) {
    if (compare(r.members[i - 1], r.members[i]) >= 0) throw new E2EEError(ErrMalformed, `roster.members: entry ${i} not strictly ascending`);
  }
  return new Writer()
    .u8(2)
    .text(r.room)
    .text(r.instance)
    .u64(r.epoch)
    .u64(r.issuedMs)
    .raw(r.prev)
    .u8(r.locked ? 1 : 0)
    .bytes(3, concat(...r.members))
    .finish();
}

export async function issueRoster(authority: Signer, r: RosterFields): Promise<Roster> {
  return parseRoster(await wrapSigned(authority, labelRoster, encodeRosterTBS(r), 4));
}

export function parseRoster(b: Uint8Array): Roster {
  const { tbs, sig } = splitSigned('roster', b, 4, 1 << 24);
  const p = new Reader('roster', tbs);
  p.version();
  const room = p.text('room', 1, maxRoom);
  const instance = p.text('instance', 1, maxInstance);
  const epoch = p.u64('epoch');
  if (p.ok() && (epoch === 0 || epoch > 2 ** 32 - 1)) p.fail('epoch', `${epoch} outside 1..2^32-1`);
  const issuedMs = p.u64('issued_ms');
  const prev = p.fixed('prev', 32);
  const locked = p.boolean('locked');
  const members = p.sortedHashes('members', p.bytes('members', 3, 0, 32 * maxMembers), maxMembers);
  p.end();
  return { room, instance, epoch, issuedMs, prev, locked, members, raw: b.slice(), tbs, sig, hash: digest(labelRoster, tbs) };
}

export function verifyRoster(r: Roster, authority: Uint8Array): boolean {
  return verify(authority, labelRoster, r.tbs, r.sig);
}

/** rosterIndex is the position of h among the members, or -1. */
export function rosterIndex(r: { members: Uint8Array[] }, h: Uint8Array): number {
  let lo = 0;
  let hi = r.members.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compare(r.members[mid], h);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export interface RosterUpdate {
  version: number;
  rosters: Uint8Array[];
  credentials: Uint8Array[];
}

export function marshalRosterUpdate(u: RosterUpdate): Uint8Array {
  const rs = new Writer();
  for (const r of u.rosters) rs.bytes(4, r);
  const cs = new Writer();
  for (const c of u.credentials) cs.bytes(2, c);
  return new Writer().u64(u.version).bytes(4, rs.finish()).bytes(4, cs.finish()).finish();
}

export function parseRosterUpdate(b: Uint8Array): RosterUpdate {
  const p = new Reader('roster_update', b);
  const version = p.u64('version');
  const rosters = p.list('rosters', p.bytes('rosters', 4, 0, 2 ** 31), 4, 1 << 16);
  const credentials = p.list('credentials', p.bytes('credentials', 4, 0, 2 ** 31), 2, 1 << 17);
  p.end();
  return { version, rosters, credentials };
}

// ---- Challenge and registration (4.1, 4.2)

export interface Challenge {
  room: string;
  instance: string;
  identity: Identity;
  nonce: Uint8Array;
  expiresMs: number;
}

export function marshalChallenge(c: Challenge): Uint8Array {
  checkText('challenge', 'room', c.room, 1, maxRoom);
  checkText('challenge', 'instance', c.instance, 1, maxInstance);
  checkIdentity('challenge', c.identity);
  return new Writer().u8(2).text(c.room).text(c.instance).text(c.identity.issuer).text(c.identity.subject).raw(c.nonce).u64(c.expiresMs).finish();
}

export function parseChallenge(b: Uint8Array): Challenge {
  const p = new Reader('challenge', b);
  p.version();
  const room = p.text('room', 1, maxRoom);
  const instance = p.text('instance', 1, maxInstance);
  const identity = { issuer: p.text('issuer', 1, maxIssuer), subject: p.text('subject', 1, maxSubject) };
  const nonce = p.fixed('nonce', 32);
  const expiresMs = p.u64('expires_ms');
  p.end();
  return { room, instance, identity, nonce, expiresMs };
}

export function registrationProofTBS(room: string, instance: string, nonce: Uint8Array, signingKey: Uint8Array, keyPackage: Uint8Array): Uint8Array {
  return new Writer().text(room).text(instance).raw(nonce).raw(signingKey).bytes(2, keyPackage).finish();
}

export async function newRegistration(device: Signer, kp: KeyPackage, ch: Challenge): Promise<Uint8Array> {
  const tbs = registrationProofTBS(ch.room, ch.instance, ch.nonce, device.publicKey, kp.raw);
  const sig = await sign(device, labelRegistration, tbs);
  return new Writer().u8(2).raw(ch.nonce).raw(device.publicKey).bytes(2, kp.raw).raw(sig).finish();
}

// ---- Commit (4.6)

export interface CommitHeader extends Signed {
  room: string;
  instance: string;
  epoch: number;
  generation: number;
  rosterHash: Uint8Array;
  committer: Uint8Array;
  suite: number;
  kems: number[];
  leafCount: number;
  root: Uint8Array;
}

export type CommitHeaderFields = Omit<CommitHeader, keyof Signed>;

export function encodeCommitHeaderTBS(h: CommitHeaderFields): Uint8Array {
  checkText('commit', 'room', h.room, 1, maxRoom);
  checkText('commit', 'instance', h.instance, 1, maxInstance);
  const kems = new Writer();
  for (const k of h.kems) kems.u16(k);
  return new Writer()
    .u8(2)
    .text(h.room)
    .text(h.instance)
    .u64(h.epoch)
    .u8(h.generation)
    .raw(h.rosterHash)
    .raw(h.committer)
    .u16(h.suite)
    .bytes(3, kems.finish())
    .u32(h.leafCount)
    .raw(h.root)
    .finish();
}

export async function signCommitHeader(device: Signer, h: CommitHeaderFields): Promise<CommitHeader> {
  return parseCommitHeader(await wrapSigned(device, labelCommit, encodeCommitHeaderTBS(h), 2));
}

export function parseCommitHeader(b: Uint8Array): CommitHeader {
  const { tbs, sig } = splitSigned('commit_header', b, 2, 0xffff);
  const p = new Reader('commit', tbs);
  p.version();
  const room = p.text('room', 1, maxRoom);
  const instance = p.text('instance', 1, maxInstance);
  const epoch = p.u64('epoch');
  const generation = p.u8('generation');
  const rosterHash = p.fixed('roster_hash', 32);
  const committer = p.fixed('committer', 32);
  const suite = p.u16('cipher_suite');
  const rawKems = p.bytes('kems', 3, 0, 2 * maxMembers);
  if (p.ok() && rawKems.length % 2 !== 0) p.fail('kems', `odd length ${rawKems.length}`);
  const kems: number[] = [];
  for (let i = 0; p.ok() && i < rawKems.length; i += 2) {
    const k = (rawKems[i] << 8) | rawKems[i + 1];
    if (k !== KEMXWing && k !== KEMX25519) p.fail('kems', `unknown KEM 0x${k.toString(16)}`);
    kems.push(k);
  }
  const leafCount = p.u32('leaf_count');
  const root = p.fixed('root', 32);
  p.end();
  return { room, instance, epoch, generation, rosterHash, committer, suite, kems, leafCount, root, raw: b.slice(), tbs, sig, hash: digest(labelCommit, tbs) };
}

export function verifyCommitHeader(h: CommitHeader, signer: Uint8Array): boolean {
  return verify(signer, labelCommit, h.tbs, h.sig);
}

export interface CommitEntry {
  recipient: Uint8Array;
  keyPackage: Uint8Array;
  sealed: Uint8Array;
}

export function marshalCommit(header: CommitHeader, entries: CommitEntry[]): Uint8Array {
  const es = new Writer();
  for (const e of entries) es.raw(e.recipient).raw(e.keyPackage).bytes(2, e.sealed);
  return new Writer().bytes(2, header.raw).bytes(4, es.finish()).finish();
}

export function parseCommit(b: Uint8Array): { header: CommitHeader; entries: CommitEntry[] } {
  const p = new Reader('commit', b);
  const rawHeader = p.bytes('header', 2, 1, 0xffff);
  const rawEntries = p.bytes('entries', 4, 0, maxMembers * (64 + 2 + maxSealed));
  p.end();
  const header = parseCommitHeader(rawHeader);
  const ep = new Reader('commit', rawEntries);
  const entries: CommitEntry[] = [];
  while (ep.remaining() > 0 && ep.ok()) {
    if (entries.length === maxMembers - 1) {
      ep.fail('entries', 'too many entries');
      break;
    }
    entries.push({ recipient: ep.fixed('entries.recipient', 32), keyPackage: ep.fixed('entries.key_package', 32), sealed: ep.bytes('entries.sealed', 2, 1, maxSealed) });
  }
  ep.end();
  return { header, entries };
}

export interface SealedSecret {
  raw: Uint8Array;
  header: CommitHeader;
  index: number;
  proof: Uint8Array[];
  keyPackage: Uint8Array;
  sealed: Uint8Array;
}

export function marshalSealedSecret(s: Omit<SealedSecret, 'raw'>): Uint8Array {
  return new Writer().bytes(2, s.header.raw).u32(s.index).bytes(2, concat(...s.proof)).raw(s.keyPackage).bytes(2, s.sealed).finish();
}

export function parseSealedSecret(b: Uint8Array): SealedSecret {
  const p = new Reader('sealed_secret', b);
  const rawHeader = p.bytes('header', 2, 1, 0xffff);
  const index = p.u32('index');
  const rawProof = p.bytes('proof', 2, 0, 32 * maxProof);
  const keyPackage = p.fixed('key_package', 32);
  const sealed = p.bytes('sealed', 2, 1, maxSealed);
  p.end();
  if (rawProof.length % 32 !== 0) throw new E2EEError(ErrMalformed, `sealed_secret.proof: length ${rawProof.length} is not a list of hashes`);
  const proof: Uint8Array[] = [];
  for (let i = 0; i < rawProof.length; i += 32) proof.push(rawProof.slice(i, i + 32));
  return { raw: b.slice(), header: parseCommitHeader(rawHeader), index, proof, keyPackage, sealed };
}

export function marshalSealedSecrets(items: Uint8Array[]): Uint8Array {
  const w = new Writer();
  for (const it of items) w.bytes(2, it);
  return new Writer().bytes(4, w.finish()).finish();
}

export function parseSealedSecrets(b: Uint8Array): SealedSecret[] {
  const p = new Reader('sealed_secrets', b);
  const items = p.list('secrets', p.bytes('secrets', 4, 0, 1 << 20), 2, 1);
  p.end();
  return items.map(parseSealedSecret);
}

/** epochSecretInfo is the HPKE info binding a sealed epoch secret to everything it is for (section 5.1). */
export function epochSecretInfo(room: string, instance: string, epoch: number, generation: number, rosterHash: Uint8Array, committer: Uint8Array, recipient: Uint8Array, keyPackage: Uint8Array): Uint8Array {
  return concat(
    enc.encode(labelEpochSecret),
    Uint8Array.of(0),
    new Writer().text(room).text(instance).u64(epoch).u8(generation).raw(rosterHash).raw(committer).raw(recipient).raw(keyPackage).finish(),
  );
}

// The client side of docs/e2ee.md section 7, a port of crypto/e2ee's Client: register a device, follow and
// verify the roster chain, publish device-signed key packages, commit or open the epoch secret, derive
// per-sender keys. Whatever an honest gateway would never send raises an AlarmError and halts the client,
// which then drops every key.

import { compare, equal, hex, wipe } from './bytes.js';
import {
  AlarmError, E2EEError, ErrBadSignature, ErrClone, ErrConflict, ErrContextMismatch, ErrCredentialExpired, ErrCredentialMismatch,
  ErrFork, ErrGap, ErrHalted, ErrIdentityMismatch, ErrImpersonation, ErrKEMNotAllowed, ErrLockedRoster, ErrMalformed, ErrNoKey,
  ErrNoRoster, ErrNotMember, ErrNotRegistered, ErrRateLimited, ErrRemoved, ErrReplay, ErrStaleEpoch, ErrStaleKeyPackage,
  ErrUndecryptable, isAlarm, kindOf,
} from './errors.js';
import { type KEMKeyPair, generateKeyPair, open, seal } from './hpke.js';
import { type EpochKeys, baseKey, deriveSFrameKey, kid, newEpochKeys, securityCode, type SFrameKey, splitKID, wipeEpochKeys } from './keyschedule.js';
import { leafHash, merkleRoot, verifyInclusion } from './merkle.js';
import { generateDeviceKey } from './signer.js';
import type { Transport } from './transport.js';
import {
  type Challenge, type CommitHeader, type CommitEntry, type Credential, type Identity, type KeyPackage, type Roster, type RosterUpdate,
  type SealedSecret, type Signer, KEMX25519, KEMXWing, SFrameSuite, checkKeyPackageFor, deviceFingerprint, epochSecretInfo,
  identityMatches, kemName, marshalCommit, newRegistration, parseChallenge, parseCredential, parseKeyPackages, parseRoster,
  parseRosterUpdate, parseSealedSecrets, renews, rosterIndex, sameIdentity, signCommitHeader, signKeyPackage, verifyCommitHeader,
  verifyCredential, verifyRoster,
} from './wire.js';

export interface Clock {
  now(): number; // ms
}

export interface ClientOptions {
  transport: Transport;
  /** the gateway's credential-signing key, learned out of band (or pinned on first use) */
  authorityKey: Uint8Array;
  room: string;
  /** who this client is (its OIDC identity); a gateway offering to certify anyone else is an alarm */
  expectIdentity?: Identity;
  device?: Signer;
  /** the user's other devices' signing keys, confirmed out of band */
  ownDevices?: Uint8Array[];
  kem?: number;
  allowClassicKEM?: boolean;
  graceMs?: number;
  rekeyIntervalMs?: number;
  keyPackageTTLMs?: number;
  commitTimeoutMs?: number;
  clock?: Clock;
  /** tests only: sees every epoch secret this client draws or opens */
  observeSecret?: (secret: Uint8Array) => void;
}

export type State = 'unregistered' | 'waiting' | 'member' | 'removed' | 'halted';

export interface Member {
  credential: string; // hex
  identity: Identity;
  displayName: string;
  role: number;
  fingerprint: string;
  kem: number; // from the epoch's commit; 0 until held
  index: number;
  self: boolean;
  ownDevice: boolean;
  confirmed: boolean;
}

export type ChangeKind = 'locked' | 'unlocked' | 'added' | 'removed' | 'own_device_added';

export interface Change {
  epoch: number;
  kind: ChangeKind;
  member: string;
  displayName: string;
  fingerprint: string;
  unlocked: boolean;
}

export interface Status {
  state: State;
  epoch: number;
  generation: number;
  roster: string; // hex roster hash
  locked: boolean;
  members: Member[];
  securityCode: string;
  changes: Change[];
  unconfirmed: string[];
  err: Error | null;
  /** the alarm that halted the client, if any */
  alarm: AlarmError | null;
}

/** devices groups members by identity, in roster order of each identity's first device. */
export function devices(s: Status): Member[][] {
  const out: Member[][] = [];
  const at = new Map<string, number>();
  for (const m of s.members) {
    const k = JSON.stringify([m.identity.issuer, m.identity.subject]);
    let i = at.get(k);
    if (i === undefined) {
      i = out.length;
      at.set(k, i);
      out.push([]);
    }
    out[i].push(m);
  }
  return out;
}

interface OwnKeyPackage {
  kp: KeyPackage;
  kem: KEMKeyPair;
  created: number;
  superseded: number; // 0 while newest
}

interface EpochState {
  keys: EpochKeys;
  roster: Roster;
  kems: number[];
  at: number;
  expires: number; // 0 while current
}

const maxChanges = 256;
const systemClock: Clock = { now: () => Date.now() };

/** Mutex serialises register and sync, as the Go client's syncMu. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(f: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await f();
    } finally {
      release();
    }
  }
}

export class Client {
  private readonly transport: Transport;
  private readonly authority: Uint8Array;
  readonly room: string;
  private readonly expect: Identity | undefined;
  private device: Signer | undefined;
  private readonly ownDevices: Uint8Array[];
  readonly kem: number;
  private readonly allowClassic: boolean;
  private readonly grace: number;
  private readonly rekeyEvery: number;
  private readonly kpTTL: number;
  private readonly commitTimeout: number;
  private readonly clock: Clock;
  private readonly observeSecret?: (s: Uint8Array) => void;
  private readonly mu = new Mutex();

  private state: State = 'unregistered';
  private halt: AlarmError | null = null;
  private instance = '';
  private identity: Identity = { issuer: '', subject: '' };
  private cred: Credential | null = null;
  private head: Roster | null = null;
  private headSeen = 0;
  private creds = new Map<string, Credential>();
  private version = 0;
  private kps: OwnKeyPackage[] = [];
  private nextSeq = 0;
  private kpSeq = new Map<string, number>();
  private current: EpochState | null = null;
  private old: EpochState[] = [];
  private confirmed = new Set<string>();
  private pending = new Set<string>();
  private changes: Change[] = [];
  private lastErr: Error | null = null;
  private lostRace: { epoch: number; gen: number } | null = null;
  /** the latest credential expiry (Unix seconds) seen per device key: a credential a renewal replaced is never accepted again */
  private newest = new Map<string, number>();
  /** when this device registers again to renew its credential (ms) */
  private renewAt = 0;
  private listeners = new Set<(s: Status) => void>();

  constructor(o: ClientOptions) {
    if (!o.transport) throw new Error('e2ee: client: transport is required');
    if (!o.authorityKey || o.authorityKey.length !== 32) throw new Error('e2ee: client: authorityKey must be an Ed25519 public key');
    if (!o.room) throw new Error('e2ee: client: room is required');
    this.transport = o.transport;
    this.authority = o.authorityKey.slice();
    this.room = o.room;
    this.expect = o.expectIdentity;
    this.device = o.device;
    this.ownDevices = (o.ownDevices ?? []).map((k) => {
      if (k.length !== 32) throw new Error('e2ee: client: ownDevices must be Ed25519 public keys');
      return k.slice();
    });
    this.kem = o.kem ?? KEMXWing;
    this.allowClassic = o.allowClassicKEM ?? false;
    if (this.kem !== KEMXWing && this.kem !== KEMX25519) throw new E2EEError('unsupported_kem', kemName(this.kem));
    if (this.kem === KEMX25519 && !this.allowClassic) throw new E2EEError(ErrKEMNotAllowed, 'X25519 needs allowClassicKEM');
    this.grace = o.graceMs && o.graceMs > 0 ? o.graceMs : 2000;
    this.rekeyEvery = o.rekeyIntervalMs && o.rekeyIntervalMs > 0 && o.rekeyIntervalMs <= 300_000 ? o.rekeyIntervalMs : 300_000;
    this.kpTTL = o.keyPackageTTLMs && o.keyPackageTTLMs > 0 && o.keyPackageTTLMs <= 2 * this.rekeyEvery ? o.keyPackageTTLMs : 2 * this.rekeyEvery;
    this.commitTimeout = o.commitTimeoutMs && o.commitTimeoutMs > 0 ? o.commitTimeoutMs : 3000;
    this.clock = o.clock ?? systemClock;
    this.observeSecret = o.observeSecret;
  }

  /**
   * onStatus registers a listener called after every sync round and, within a round, as soon as a new epoch
   * secret is adopted: a media layer rotates its keys before the round's slower work (a fresh key package, a
   * credential renewal) is done. Returns an unsubscribe.
   */
  onStatus(f: (s: Status) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  credential(): Credential | null {
    return this.cred;
  }

  deviceKey(): Uint8Array | null {
    return this.device ? this.device.publicKey.slice() : null;
  }

  private usable(): void {
    switch (this.state) {
      case 'unregistered':
        throw new E2EEError(ErrNotRegistered, 'not registered');
      case 'halted':
        throw new E2EEError(ErrHalted, `client halted: ${this.halt?.message}`);
      case 'removed':
        throw new E2EEError(ErrRemoved, 'removed from the meeting');
    }
  }

  /** fail halts the client if e is an alarm: every key is dropped and every later call fails. */
  private fail(e: unknown): unknown {
    if (!isAlarm(e)) return e;
    if (this.state !== 'halted') {
      this.state = 'halted';
      this.halt = e;
      this.wipe();
    }
    return e;
  }

  private wipe(): void {
    if (this.current) wipeEpochKeys(this.current.keys);
    for (const e of this.old) wipeEpochKeys(e.keys);
    for (const k of this.kps) wipe(k.kem.privateKey);
    this.current = null;
    this.old = [];
    this.kps = [];
  }

  private async newKeyPackage(instance: string, id: Identity): Promise<OwnKeyPackage> {
    const kem = generateKeyPair(this.kem);
    const now = this.clock.now();
    this.nextSeq++;
    const kp = await signKeyPackage(this.device!, {
      room: this.room, instance, identity: id, signingKey: this.device!.publicKey, seq: this.nextSeq, kem: this.kem,
      kemKey: kem.publicKey, notAfterMs: Math.floor(now + this.kpTTL),
    });
    return { kp, kem, created: now, superseded: 0 };
  }

  /**
   * register obtains a challenge, checks the identity the gateway will certify, signs a first key package for
   * it, proves possession of the device key, and verifies the credential it gets back.
   */
  register(): Promise<Credential> {
    return this.mu.run(async () => {
      if (this.state !== 'unregistered') throw new Error(`e2ee: register: client is ${this.state}`);
      if (!this.device) this.device = await generateDeviceKey();
      const ch: Challenge = parseChallenge(await this.transport.challenge());
      if (ch.room !== this.room) throw this.fail(new AlarmError(ErrContextMismatch, 0, '', `challenge for room ${JSON.stringify(ch.room)}`));
      if (this.expect?.subject && !identityMatches(ch.identity, this.expect)) {
        throw this.fail(new AlarmError(ErrIdentityMismatch, 0, '', `gateway would certify this device as ${ch.identity.subject} (${ch.identity.issuer}), expected ${this.expect.subject}`));
      }
      const own = await this.newKeyPackage(ch.instance, ch.identity);
      const reg = await newRegistration(this.device, own.kp, ch);
      const cred = parseCredential(await this.transport.register(reg));
      const h = hex(cred.hash);
      if (!verifyCredential(cred, this.authority)) throw this.fail(new AlarmError(ErrBadSignature, 0, h, 'own credential not signed by the authority key'));
      if (cred.room !== this.room || cred.instance !== ch.instance) throw this.fail(new AlarmError(ErrContextMismatch, 0, h, `own credential for room ${JSON.stringify(cred.room)} instance ${JSON.stringify(cred.instance)}`));
      if (!equal(cred.signingKey, this.device.publicKey)) throw this.fail(new AlarmError(ErrCredentialMismatch, 0, h, "own credential does not carry this device's key"));
      if (!sameIdentity(cred.identity, ch.identity) || (this.expect?.subject && !identityMatches(cred.identity, this.expect))) {
        throw this.fail(new AlarmError(ErrIdentityMismatch, 0, h, `own credential certifies ${cred.identity.subject} (${cred.identity.issuer})`));
      }
      if (!(cred.notAfter * 1000 > this.clock.now())) throw new E2EEError(ErrCredentialExpired, 'own credential');
      this.cred = cred;
      this.instance = ch.instance;
      this.identity = ch.identity;
      this.state = 'waiting';
      this.kps = [own];
      this.renewAt = renewTime(cred, this.clock.now());
      return cred;
    });
  }

  /**
   * sync runs one round: follow the roster chain, open the epoch secret sealed to this client (or commit one
   * when it is this client's turn), publish a fresh key package when due, drop keys past their grace period.
   * It throws ErrRemoved once removed, and an AlarmError (then ErrHalted) when the gateway deviated.
   */
  sync(): Promise<Status> {
    return this.mu.run(async () => {
      try {
        return await this.syncLocked();
      } finally {
        this.notify();
      }
    });
  }

  private async syncLocked(): Promise<Status> {
    this.usable();
    const since = this.head ? this.head.epoch : 0;
    let raw: Uint8Array;
    try {
      raw = await this.transport.roster(since);
    } catch (e) {
      const k = kindOf(e);
      if (since === 0 && (k === ErrNotMember || k === ErrNoRoster)) return this.status(); // not admitted yet
      if (k === ErrNotMember) {
        // The gateway no longer serves this member (kicked, banned, ticket gone): it will never see the epoch
        // that removes it, so it drops every key now rather than keep decrypting until the grace of nothing.
        this.state = 'removed';
        this.wipe();
        throw new E2EEError(ErrRemoved, 'the gateway no longer serves this client (removed from the room)');
      }
      throw e;
    }
    const update = parseRosterUpdate(raw);
    this.version = Math.max(this.version, update.version);
    try {
      this.applyRoster(update);
    } catch (e) {
      throw this.fail(e);
    }
    if ((this.state as State) === 'removed') throw new E2EEError(ErrRemoved, 'removed from the meeting');
    if (this.state === 'waiting') return this.status();
    let err: Error | null = null;
    try {
      await this.keys();
    } catch (e) {
      if (isAlarm(e)) throw this.fail(e);
      err = e as Error;
    }
    try {
      await this.renewIfDue();
    } catch (e) {
      if (isAlarm(e)) throw this.fail(e);
    }
    this.lastErr = err;
    this.prune();
    if (err) throw err;
    return this.status();
  }

  private notify(): void {
    const st = this.status();
    for (const f of this.listeners) {
      try {
        f(st);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  private async keys(): Promise<void> {
    const errs: Error[] = [];
    for (let i = 0; i < 2; i++) {
      let lost = false;
      try {
        lost = await this.fetchOrCommit();
      } catch (e) {
        if (isAlarm(e)) throw e;
        errs.push(e as Error);
      }
      if (!lost) break;
    }
    try {
      await this.refreshKeyPackage(false);
    } catch (e) {
      errs.push(e as Error);
    }
    if (errs.length === 1) throw errs[0];
    if (errs.length > 1) throw new E2EEError(kindOf(errs[0]) || 'error', errs.map((e) => e.message).join('; '));
  }

  private async fetchOrCommit(): Promise<boolean> {
    const head = this.head!;
    let raw: Uint8Array;
    try {
      raw = await this.transport.sealedKeys(head.epoch);
    } catch (e) {
      if (kindOf(e) === ErrStaleEpoch) return false;
      throw e;
    }
    const secrets = parseSealedSecrets(raw);
    let gen = 0;
    let openErr: Error | null = null;
    for (const s of secrets) {
      try {
        await this.acceptSealedSecret(head, s);
      } catch (e) {
        if (kindOf(e) !== ErrUndecryptable) throw e;
        openErr = e as Error;
        gen = s.header.generation + 1;
      }
    }
    const cur = this.current;
    let seen = this.headSeen;
    const now = this.clock.now();
    if (!cur && openErr) {
      if (now - seen < this.commitTimeout || gen === 0) throw openErr;
    } else if (!cur && secrets.length === 0 && this.lostRace && this.lostRace.epoch === head.epoch && this.lostRace.gen < 255) {
      gen = this.lostRace.gen + 1;
      openErr = new E2EEError(ErrConflict, 'lost race');
    } else if (!cur) {
      gen = 0;
    } else if (now - cur.at >= this.rekeyEvery && cur.keys.generation < 255) {
      gen = cur.keys.generation + 1;
      seen = cur.at + this.rekeyEvery;
    } else {
      return false;
    }
    if (!openErr && !this.designated(head, gen) && now - seen < this.commitTimeout) return false;
    try {
      await this.commit(head, gen);
    } catch (e) {
      const k = kindOf(e);
      if (k === ErrConflict) {
        this.lostRace = { epoch: head.epoch, gen };
        return true;
      }
      if (k === ErrStaleEpoch || k === ErrRateLimited) return false;
      throw e;
    }
    await this.refreshKeyPackage(true);
    return false;
  }

  private designated(head: Roster, gen: number): boolean {
    const i = rosterIndex(head, this.cred!.hash);
    return i === (head.epoch + gen) % head.members.length;
  }

  private async refreshKeyPackage(used: boolean): Promise<void> {
    if (this.kps.length === 0) return;
    const newest = this.kps[this.kps.length - 1];
    if (!(used || this.clock.now() - newest.created >= this.rekeyEvery)) return;
    const own = await this.newKeyPackage(this.instance, this.identity);
    try {
      await this.transport.postKeyPackage(own.kp.raw);
    } catch (e) {
      wipe(own.kem.privateKey);
      if (kindOf(e) === ErrRateLimited) return;
      throw e;
    }
    if (this.state !== 'member' && this.state !== 'waiting') {
      wipe(own.kem.privateKey);
      return;
    }
    for (const k of this.kps) if (!k.superseded) k.superseded = own.created;
    this.kps.push(own);
  }

  private applyRoster(u: RosterUpdate): void {
    const offered = new Map<string, Credential>();
    for (const raw of u.credentials) {
      const c = parseCredential(raw);
      offered.set(hex(c.hash), c);
    }
    let me = this.cred!.hash;
    for (const raw of u.rosters) {
      const r = parseRoster(raw);
      if (!verifyRoster(r, this.authority)) throw new AlarmError(ErrBadSignature, r.epoch, '', 'roster not signed by the authority key');
      if (r.room !== this.room || r.instance !== this.instance) throw new AlarmError(ErrContextMismatch, r.epoch, '', `roster for room ${JSON.stringify(r.room)} instance ${JSON.stringify(r.instance)}`);
      const head = this.head;
      let hasMe = rosterIndex(r, me) >= 0;
      if (!head) {
        if (!hasMe) continue; // a joiner anchors at the first epoch holding its own fresh credential
      } else {
        if (r.epoch <= head.epoch) throw new AlarmError(ErrReplay, r.epoch, '', `epoch ${r.epoch} offered to a client at epoch ${head.epoch}`);
        if (r.epoch > head.epoch + 1) throw new AlarmError(ErrGap, r.epoch, '', `epoch ${r.epoch} offered to a client at epoch ${head.epoch}`);
        if (!equal(r.prev, head.hash)) throw new AlarmError(ErrFork, r.epoch, '', `prev is not our epoch ${head.epoch}`);
        if (r.issuedMs < head.issuedMs) throw new AlarmError(ErrReplay, r.epoch, '', `issued before epoch ${head.epoch}`);
        if (!hasMe) {
          // This device's credential renewed in this epoch (its renewal's answer may have been lost).
          const mine = r.members.map((m) => offered.get(hex(m))).find((c) => c && rosterIndex(head, c.hash) < 0 && renews(c, this.cred!) && verifyCredential(c, this.authority));
          if (mine) {
            this.cred = mine;
            this.renewAt = renewTime(mine, this.clock.now());
            me = mine.hash;
            hasMe = true;
          }
        }
        if (head.locked) {
          for (const m of r.members) {
            // A renewal adds no one; its signature is checked with every credential below.
            if (rosterIndex(head, m) < 0 && !this.renewsOneOf(offered.get(hex(m)), head, r)) throw new AlarmError(ErrLockedRoster, r.epoch, hex(m), 'added while the room was locked');
          }
        }
      }
      const creds = this.verifyMembers(r, offered);
      if (head && !hasMe) {
        // An honest gateway removes a device and admits another in separate epochs; one epoch doing both under
        // this client's identity is a substitution the removed device would otherwise never see.
        for (const m of r.members) {
          const c = creds.get(hex(m))!;
          if (rosterIndex(head, m) < 0 && sameIdentity(c.identity, this.identity)) {
            throw new AlarmError(ErrImpersonation, r.epoch, hex(m), `this device was replaced by ${deviceFingerprint(c.signingKey)} in one epoch`);
          }
        }
      }
      this.install(r, creds, this.renewals(head, r, creds), hasMe);
      if (!hasMe) return;
    }
  }

  private verifyMembers(r: Roster, offered: Map<string, Credential>): Map<string, Credential> {
    const me = hex(this.cred!.hash);
    const out = new Map<string, Credential>();
    const keys = new Map<string, string>();
    for (const hb of r.members) {
      const h = hex(hb);
      let cred = h === me ? this.cred! : this.creds.get(h);
      if (!cred) {
        cred = offered.get(h);
        if (!cred) throw new AlarmError(ErrCredentialMismatch, r.epoch, h, 'no credential hashes to this roster entry');
        if (!verifyCredential(cred, this.authority)) throw new AlarmError(ErrBadSignature, r.epoch, h, 'credential not signed by the authority key');
        if (cred.room !== this.room || cred.instance !== this.instance) throw new AlarmError(ErrContextMismatch, r.epoch, h, `credential for room ${JSON.stringify(cred.room)} instance ${JSON.stringify(cred.instance)}`);
      }
      if (!(cred.notAfter * 1000 > r.issuedMs)) throw new AlarmError(ErrCredentialExpired, r.epoch, h, 'credential expired before the epoch was issued');
      const newest = this.newest.get(hex(cred.signingKey));
      if (newest !== undefined && cred.notAfter < newest) {
        throw new AlarmError(ErrReplay, r.epoch, h, `credential of device ${deviceFingerprint(cred.signingKey)} expiring ${cred.notAfter} served after one expiring ${newest}`);
      }
      const k = hex(cred.signingKey);
      const other = keys.get(k);
      if (other !== undefined) {
        throw new AlarmError(ErrClone, r.epoch, h === me ? other : h, `device ${deviceFingerprint(cred.signingKey)} appears twice in the roster`);
      }
      keys.set(k, h);
      out.set(h, cred);
    }
    return out;
  }

  /** renewals maps each entry of r that renews an entry of head (which r no longer lists) to that entry. */
  private renewals(head: Roster | null, r: Roster, creds: Map<string, Credential>): Map<string, string> {
    const out = new Map<string, string>();
    if (!head) return out;
    for (const n of r.members) {
      if (rosterIndex(head, n) >= 0) continue;
      const o = head.members.find((o) => rosterIndex(r, o) < 0 && renews(creds.get(hex(n)), this.creds.get(hex(o))));
      if (o) out.set(hex(n), hex(o));
    }
    return out;
  }

  private renewsOneOf(cred: Credential | undefined, head: Roster, r: Roster): boolean {
    return head.members.some((o) => rosterIndex(r, o) < 0 && renews(cred, this.creds.get(hex(o))));
  }

  private install(r: Roster, creds: Map<string, Credential>, renewed: Map<string, string>, member: boolean): void {
    const now = this.clock.now();
    const prev = this.head;
    if (!member) {
      this.head = r;
      this.creds = creds;
      this.state = 'removed';
      this.wipe();
      return;
    }
    const me = hex(this.cred!.hash);
    for (const cred of creds.values()) {
      const k = hex(cred.signingKey);
      if (cred.notAfter > (this.newest.get(k) ?? 0)) this.newest.set(k, cred.notAfter);
    }
    const replaced = new Set<string>();
    for (const [h, o] of renewed) {
      // A renewal is the same device: its key package numbering and confirmation carry over, no change is reported.
      replaced.add(o);
      const seq = this.kpSeq.get(o);
      if (seq !== undefined) this.kpSeq.set(h, seq);
      this.kpSeq.delete(o);
      if (this.confirmed.delete(o)) this.confirmed.add(h);
      if (this.pending.delete(o)) this.pending.add(h);
    }
    for (const hb of r.members) {
      const h = hex(hb);
      const cred = creds.get(h)!;
      if (h === me || renewed.has(h) || (prev && rosterIndex(prev, hb) >= 0)) continue;
      this.kpSeq.delete(h); // a (re)joining member starts a new run of key packages
      const own = sameIdentity(cred.identity, this.identity);
      const fp = deviceFingerprint(cred.signingKey);
      if (own && this.ownDevices.some((k) => equal(k, cred.signingKey))) this.confirmed.add(h);
      else if (own && prev) {
        this.confirmed.add(h);
        this.record({ epoch: r.epoch, kind: 'own_device_added', member: h, displayName: cred.displayName, fingerprint: fp, unlocked: false });
      } else if (own) this.pending.add(h);
      if (prev) this.record({ epoch: r.epoch, kind: 'added', member: h, displayName: cred.displayName, fingerprint: fp, unlocked: !prev.locked });
    }
    if (prev) {
      for (const hb of prev.members) {
        if (rosterIndex(r, hb) >= 0 || replaced.has(hex(hb))) continue;
        const h = hex(hb);
        const cred = this.creds.get(h);
        this.record({ epoch: r.epoch, kind: 'removed', member: h, displayName: cred?.displayName ?? '', fingerprint: cred ? deviceFingerprint(cred.signingKey) : '', unlocked: false });
        this.pending.delete(h);
        this.confirmed.delete(h);
      }
      if (r.locked !== prev.locked) this.record({ epoch: r.epoch, kind: r.locked ? 'locked' : 'unlocked', member: '', displayName: '', fingerprint: '', unlocked: false });
    }
    if (this.current) {
      this.retire(this.current, now);
      this.current = null;
    }
    this.head = r;
    this.creds = creds;
    this.state = 'member';
    this.headSeen = now;
  }

  private record(c: Change): void {
    this.changes.push(c);
    if (this.changes.length > maxChanges) this.changes.splice(0, this.changes.length - maxChanges);
  }

  private retire(e: EpochState, now: number): void {
    if (!e.expires) {
      e.expires = now + this.grace;
      this.old.push(e);
    }
  }

  /** confirmDevice accepts an unconfirmed device of the user's identity ("yes, that is my phone"). */
  confirmDevice(fingerprint: string): void {
    for (const h of this.pending) {
      const c = this.creds.get(h);
      if (c && deviceFingerprint(c.signingKey) === fingerprint) {
        this.pending.delete(h);
        this.confirmed.add(h);
        this.notify();
        return;
      }
    }
    throw new Error(`e2ee: no unconfirmed device ${fingerprint}`);
  }

  /** rejectDevice reports that a device listed under the user's identity is not theirs: an alarm. */
  rejectDevice(fingerprint: string): AlarmError {
    for (const h of this.pending) {
      const c = this.creds.get(h);
      if (c && deviceFingerprint(c.signingKey) === fingerprint) {
        const a = new AlarmError(ErrImpersonation, this.head?.epoch ?? 0, h, `the user does not own device ${fingerprint}`);
        this.fail(a);
        this.notify();
        return a;
      }
    }
    throw new Error(`e2ee: no unconfirmed device ${fingerprint}`);
  }

  private async commit(head: Roster, gen: number): Promise<void> {
    const kps = parseKeyPackages(await this.transport.keyPackages(head.epoch));
    if (kps.length !== head.members.length) throw new AlarmError(ErrCredentialMismatch, head.epoch, '', `${kps.length} key packages for ${head.members.length} members`);
    const kems = this.checkKeyPackages(head, kps, this.clock.now());
    const { header, body, secret } = await this.sealCommit(head, gen, kps, kems);
    try {
      await this.transport.postCommit(head.epoch, body);
      if (this.adopt(head, header, newEpochKeys(secret, header, this.authority))) this.notify();
    } finally {
      wipe(secret);
    }
  }

  private checkKeyPackages(head: Roster, kps: KeyPackage[], now: number): number[] {
    const me = this.cred!.hash;
    const myKP = this.kps[this.kps.length - 1].kp;
    const kems: number[] = [];
    const errs: Error[] = [];
    head.members.forEach((h, i) => {
      if (equal(h, me)) {
        kems.push(myKP.kem);
        return;
      }
      try {
        this.checkKeyPackage(head, h, kps[i], now);
      } catch (e) {
        errs.push(e as Error);
      }
      kems.push(kps[i].kem);
    });
    for (const e of errs) if (isAlarm(e)) throw e; // alarms first, in roster order
    if (errs.length > 0) throw errs[0];
    return kems;
  }

  private checkKeyPackage(head: Roster, hb: Uint8Array, kp: KeyPackage, now: number): void {
    const h = hex(hb);
    const cred = this.creds.get(h)!;
    // Its holder did not renew it: nothing is sealed to it until the gateway drops it.
    if (!(cred.notAfter * 1000 > now)) throw new E2EEError(ErrCredentialExpired, `member ${h.slice(0, 16)}: credential expired at ${cred.notAfter}`);
    try {
      checkKeyPackageFor(kp, cred, now);
    } catch (e) {
      const k = kindOf(e);
      if (k === ErrCredentialExpired) throw new E2EEError(ErrCredentialExpired, `member ${h.slice(0, 16)}: ${(e as Error).message}`);
      const kind = k === ErrIdentityMismatch || k === ErrContextMismatch ? k : ErrBadSignature;
      throw new AlarmError(kind, head.epoch, h, `key package: ${(e as Error).message}`);
    }
    const last = this.kpSeq.get(h) ?? 0;
    if (kp.seq < last) throw new AlarmError(ErrStaleKeyPackage, head.epoch, h, `key package ${kp.seq} served after ${last}`);
    this.kpSeq.set(h, kp.seq);
    if (kp.kem === KEMX25519 && !this.allowClassic) {
      throw new E2EEError(ErrKEMNotAllowed, `member ${cred.displayName} (${deviceFingerprint(cred.signingKey)}) uses a classic KEM and this client requires post-quantum keys`);
    }
  }

  private async sealCommit(head: Roster, gen: number, kps: KeyPackage[], kems: number[]): Promise<{ header: CommitHeader; body: Uint8Array; secret: Uint8Array }> {
    const me = this.cred!.hash;
    const secret = crypto.getRandomValues(new Uint8Array(32));
    this.observeSecret?.(secret);
    const entries: CommitEntry[] = [];
    const leaves: Uint8Array[] = [];
    head.members.forEach((h, i) => {
      if (equal(h, me)) return;
      const kp = kps[i];
      const info = epochSecretInfo(this.room, this.instance, head.epoch, gen, head.hash, me, h, kp.hash);
      const sealed = seal(kp.kem, kp.kemKey, info, secret);
      entries.push({ recipient: h, keyPackage: kp.hash, sealed });
      leaves.push(leafHash(h, kp.hash, sealed));
    });
    const root = leaves.length > 0 ? merkleRoot(leaves) : new Uint8Array(32);
    const header = await signCommitHeader(this.device!, {
      room: this.room, instance: this.instance, epoch: head.epoch, generation: gen, rosterHash: head.hash, committer: me,
      suite: SFrameSuite, kems, leafCount: entries.length, root,
    });
    return { header, body: marshalCommit(header, entries), secret };
  }

  private async acceptSealedSecret(head: Roster, s: SealedSecret): Promise<void> {
    const h = s.header;
    const me = this.cred!.hash;
    const cur = this.current;
    const c = hex(h.committer);
    if (cur && equal(cur.keys.commit, h.hash)) return; // installed before
    if (h.room !== this.room || h.instance !== this.instance) throw new AlarmError(ErrContextMismatch, head.epoch, c, 'commit for another room or instance');
    if (h.epoch !== head.epoch) throw new AlarmError(ErrReplay, head.epoch, c, `commit of epoch ${h.epoch} served for epoch ${head.epoch}`);
    if (!equal(h.rosterHash, head.hash)) throw new AlarmError(ErrFork, head.epoch, c, 'committer sealed to another roster of our epoch');
    const committerIndex = rosterIndex(head, h.committer);
    if (committerIndex < 0) throw new AlarmError(ErrNotMember, head.epoch, c, 'commit from a non-member');
    if (equal(h.committer, me)) throw new AlarmError(ErrReplay, head.epoch, c, 'own commit served back');
    if (!verifyCommitHeader(h, this.creds.get(c)!.signingKey)) throw new AlarmError(ErrBadSignature, head.epoch, c, "commit not signed by the committer's device key");
    const myIndex = rosterIndex(head, me);
    const leaf = myIndex > committerIndex ? myIndex - 1 : myIndex;
    if (h.leafCount !== head.members.length - 1 || s.index !== leaf || h.kems.length !== head.members.length) {
      throw new AlarmError(ErrBadSignature, head.epoch, c, `leaf ${s.index} of ${h.leafCount}, expected ${leaf} of ${head.members.length - 1}`);
    }
    if (!verifyInclusion(leafHash(me, s.keyPackage, s.sealed), s.index, h.leafCount, s.proof, h.root)) {
      throw new AlarmError(ErrBadSignature, head.epoch, c, "sealed secret not covered by the committer's signature");
    }
    if (cur) {
      if (h.generation < cur.keys.generation) throw new AlarmError(ErrReplay, head.epoch, c, `generation ${h.generation} after ${cur.keys.generation}`);
      if (h.generation === cur.keys.generation) throw new AlarmError(ErrFork, head.epoch, c, `two commits for generation ${h.generation}`);
    }
    const now = this.clock.now();
    const expired = head.members.find((m) => !((this.creds.get(hex(m))?.notAfter ?? Infinity) * 1000 > now));
    // Whoever committed, a secret shared with a member whose credential expired is not used.
    if (expired) throw new E2EEError(ErrCredentialExpired, `member ${hex(expired).slice(0, 16)}: epoch secret not used`);
    if (h.suite !== SFrameSuite) throw new E2EEError(ErrMalformed, `commit uses SFrame suite 0x${h.suite.toString(16)}`);
    if (!this.allowClassic) {
      h.kems.forEach((k, i) => {
        if (k !== KEMXWing) throw new E2EEError(ErrKEMNotAllowed, `member ${hex(head.members[i]).slice(0, 16)} uses ${kemName(k)} and this client requires post-quantum keys`);
      });
    }
    const own = this.kps.find((k) => equal(k.kp.hash, s.keyPackage));
    if (!own) throw new E2EEError(ErrUndecryptable, 'sealed to a key package this device no longer holds');
    if (h.kems[myIndex] !== own.kp.kem) throw new AlarmError(ErrBadSignature, head.epoch, c, `commit lists KEM ${kemName(h.kems[myIndex])} for this device, its key package is ${kemName(own.kp.kem)}`);
    const info = epochSecretInfo(this.room, this.instance, head.epoch, h.generation, head.hash, h.committer, me, s.keyPackage);
    const secret = open(own.kem, info, s.sealed);
    try {
      if (secret.length !== 32) throw new E2EEError(ErrUndecryptable, `epoch secret of ${secret.length} bytes`);
      this.observeSecret?.(secret);
      const keys = newEpochKeys(secret, h, this.authority);
      // Key packages older than the one used are useless now: erase them.
      for (const k of this.kps) if (k.kp.seq < own.kp.seq) wipe(k.kem.privateKey);
      this.kps = this.kps.filter((k) => k.kp.seq >= own.kp.seq);
      const newest = this.kps[this.kps.length - 1] === own;
      if (!this.adopt(head, h, keys)) return;
      this.notify();
      if (newest) await this.refreshKeyPackage(true);
    } finally {
      wipe(secret);
    }
  }

  private adopt(head: Roster, h: CommitHeader, keys: EpochKeys): boolean {
    if (this.head !== head || this.state !== 'member') {
      wipeEpochKeys(keys);
      return false;
    }
    const now = this.clock.now();
    if (this.current) this.retire(this.current, now);
    this.current = { keys, roster: head, kems: h.kems.slice(), at: now, expires: 0 };
    return true;
  }

  private prune(): void {
    const now = this.clock.now();
    this.kps = this.kps.filter((k) => {
      const drop = k.superseded !== 0 && now >= k.superseded + this.grace;
      if (drop) wipe(k.kem.privateKey);
      return !drop;
    });
    this.old = this.old.filter((e) => {
      if (now < e.expires) return true;
      wipeEpochKeys(e.keys);
      return false;
    });
  }

  status(): Status {
    const st: Status = {
      state: this.state, epoch: 0, generation: 0, roster: '', locked: false, members: [], securityCode: '',
      changes: this.changes.slice(), unconfirmed: [], err: this.lastErr, alarm: this.halt,
    };
    if (!this.head) return st;
    st.epoch = this.head.epoch;
    st.roster = hex(this.head.hash);
    st.locked = this.head.locked;
    if (this.current) {
      st.securityCode = securityCode(this.current.keys.authenticator);
      st.generation = this.current.keys.generation;
    }
    const me = this.cred ? hex(this.cred.hash) : '';
    this.head.members.forEach((hb, i) => {
      const h = hex(hb);
      const cred = this.creds.get(h);
      const self = h === me;
      const m: Member = {
        credential: h, identity: { issuer: '', subject: '' }, displayName: '', role: 0, fingerprint: '', kem: 0, index: i, self, ownDevice: false, confirmed: false,
      };
      if (cred) {
        m.identity = cred.identity;
        m.displayName = cred.displayName;
        m.role = cred.role;
        m.fingerprint = deviceFingerprint(cred.signingKey);
        m.ownDevice = !self && sameIdentity(cred.identity, this.identity);
        m.confirmed = m.ownDevice && this.confirmed.has(h);
        if (this.pending.has(h)) st.unconfirmed.push(m.fingerprint);
      }
      if (this.current && i < this.current.kems.length) m.kem = this.current.kems[i];
      st.members.push(m);
    });
    return st;
  }

  private live(epoch: number, gen: number): EpochState | null {
    const now = this.clock.now();
    const e = this.current;
    if (e && e.keys.epoch === epoch && e.keys.generation === gen) return e;
    for (const o of this.old) if (o.keys.epoch === epoch && o.keys.generation === gen && now < o.expires) return o;
    return null;
  }

  /** encryptionKey is this sender's current SFrame key for one stream. */
  encryptionKey(stream: number): SFrameKey {
    this.usable();
    const e = this.current;
    if (!e) throw new E2EEError(ErrNoKey, 'no key');
    const i = rosterIndex(e.roster, this.cred!.hash);
    const base = baseKey(e.keys, i, stream);
    try {
      return deriveSFrameKey(kid(e.keys.epoch, e.keys.generation, i, stream), base);
    } finally {
      wipe(base);
    }
  }

  /** decryptionKey is the live SFrame key for a KID and the sender's credential hash. */
  decryptionKey(k: bigint): { key: SFrameKey; sender: string } {
    this.usable();
    const { epoch, generation, senderIndex, stream } = splitKID(k);
    const e = this.live(epoch, generation);
    if (!e || senderIndex >= e.roster.members.length) throw new E2EEError(ErrNoKey, `KID 0x${k.toString(16)}`);
    const base = baseKey(e.keys, senderIndex, stream);
    try {
      return { key: deriveSFrameKey(k, base), sender: hex(e.roster.members[senderIndex]) };
    } finally {
      wipe(base);
    }
  }

  /**
   * mediaKeys is, for the current epoch and generation, each member's base key for one stream, keyed by
   * credential hash: what a media layer that keys per participant (LiveKit) installs. Empty without a key.
   */
  mediaKeys(stream: number): { epoch: number; generation: number; keys: Map<string, Uint8Array> } | null {
    if (this.state !== 'member' || !this.current) return null;
    const e = this.current;
    const keys = new Map<string, Uint8Array>();
    e.roster.members.forEach((h, i) => keys.set(hex(h), baseKey(e.keys, i, stream)));
    return { epoch: e.keys.epoch, generation: e.keys.generation, keys };
  }

  /** renewIfDue renews this device's credential when its renewal time has come (docs/e2ee.md section 7.4). */
  private async renewIfDue(): Promise<void> {
    if (this.state !== 'member' || !this.renewAt || this.clock.now() < this.renewAt) return;
    const cur = this.cred!;
    this.renewAt = this.clock.now() + renewalRetryMs;
    const ch: Challenge = parseChallenge(await this.transport.challenge());
    if (ch.room !== this.room) throw new AlarmError(ErrContextMismatch, 0, '', `renewal challenge for room ${JSON.stringify(ch.room)}`);
    if (!sameIdentity(ch.identity, this.identity)) throw new AlarmError(ErrIdentityMismatch, 0, '', `gateway would renew this device as ${ch.identity.subject} (${ch.identity.issuer})`);
    if (ch.instance !== this.instance) return; // the meeting ended; the roster says so
    const own = await this.newKeyPackage(this.instance, this.identity);
    const reg = await newRegistration(this.device!, own.kp, ch);
    // Kept before it is sent: the gateway may renew with it even if its answer never arrives.
    this.kps.push(own);
    const cred = parseCredential(await this.transport.register(reg));
    const h = hex(cred.hash);
    if (!verifyCredential(cred, this.authority)) throw new AlarmError(ErrBadSignature, 0, h, 'renewed credential not signed by the authority key');
    if (!equal(cred.signingKey, this.device!.publicKey)) throw new AlarmError(ErrCredentialMismatch, 0, h, "renewed credential does not carry this device's key");
    if (!sameIdentity(cred.identity, this.identity)) throw new AlarmError(ErrIdentityMismatch, 0, h, `renewed credential certifies ${cred.identity.subject} (${cred.identity.issuer})`);
    if (!renews(cred, cur)) throw new E2EEError(ErrCredentialMismatch, 'renew: the new credential changes more than its expiry');
  }

  /**
   * run registers if needed and follows the meeting until signal aborts, the client is removed, or an alarm
   * halts it; it resolves with the reason.
   */
  async run(signal: AbortSignal): Promise<Error | null> {
    if (this.state === 'unregistered') await this.register();
    for (;;) {
      if (signal.aborted) return null;
      try {
        await this.sync();
      } catch (e) {
        const k = kindOf(e);
        if (isAlarm(e) || k === ErrHalted || k === ErrRemoved) return e as Error;
        await sleep(1000, signal);
        continue;
      }
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      signal.addEventListener('abort', onAbort);
      const timer = setTimeout(() => ctl.abort(), this.nextWake());
      try {
        await this.transport.wait(this.version, ctl.signal);
      } catch {
        if (!signal.aborted) await sleep(1000, signal);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      }
    }
  }

  private nextWake(): number {
    const now = this.clock.now();
    let wake = 25_000;
    const consider = (t: number) => {
      if (t) wake = Math.min(wake, Math.max(t - now, 10));
    };
    if (this.state === 'member') {
      if (!this.current) consider(this.headSeen + this.commitTimeout);
      else {
        consider(this.current.at + this.rekeyEvery);
        consider(this.current.at + this.rekeyEvery + this.commitTimeout);
      }
    }
    if (this.kps.length > 0) consider(this.kps[this.kps.length - 1].created + this.rekeyEvery);
    if (this.state === 'member') consider(this.renewAt);
    for (const e of this.old) consider(e.expires);
    return wake;
  }
}

const renewalRetryMs = 60_000;

/** renewTime is a uniformly random point between one half and three quarters of the lifetime seen from at (ms). */
function renewTime(cred: Credential, at: number): number {
  const life = cred.notAfter * 1000 - at;
  if (life <= 0) return at;
  return at + life / 2 + Math.random() * (life / 4);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export { compare };

// The meeting page for LiveKit rooms: meetguard's key exchange (web/src/e2ee) drives LiveKit's end-to-end
// media encryption. It shows the security code with its epoch.generation label, the roster from the verified
// chain grouped by person with device fingerprints, a banner on any alarm and the "you were removed" state.

import { Room, RoomEvent, Track, type RemoteParticipant, type Participant } from 'livekit-client';
import { Client, HTTPTransport, devices, fromHex, hex, kemName, type Status } from '../e2ee/index.js';
import { LiveKitStream, MeetguardKeyProvider, keyIndex } from './keyprovider.js';

export interface MeetingConfig {
  room: string;
  /** the gateway's e2ee authority key (hex), pinned out of band */
  authorityKey: string;
  /** LiveKit signalling URL (the gateway's room path) and the token to present (the gateway mints its own) */
  livekitURL: string;
  livekitToken: string;
  expectSubject?: string;
  expectIssuer?: string;
  /** test only: join LiveKit with E2EE but without meetguard's keys ("a bomber with a token"); it only watches */
  withoutKeys?: boolean;
  /** headers for every key-exchange request (a page uses its session cookie and ticket cookie instead) */
  headers?: Record<string, string>;
}

const $ = (id: string) => document.getElementById(id)!;
const topic = 'meetguard.e2ee';

class Meeting {
  private client: Client | null = null;
  private room: Room | null = null;
  private readonly keys = new MeetguardKeyProvider();
  private readonly credOf = new Map<string, string>(); // LiveKit identity → credential hash (hex)
  private readonly used = new Map<string, Set<number>>(); // identity → key indexes set
  private last: Status | null = null;
  private encryptionErrors = 0;
  private announced = false;
  private lastError = '';
  private received = 0;

  private noteError(e: unknown): void {
    this.lastError = String((e as Error)?.message ?? e);
  }
  private readonly abort = new AbortController();

  async start(cfg: MeetingConfig): Promise<void> {
    const room = new Room({
      adaptiveStream: false,
      dynacast: false,
      // `e2ee` rather than `encryption`: media is end-to-end encrypted, data messages are not, because the one data
      // message this page sends (its credential hash, public anyway) is how peers learn which key is whose.
      e2ee: { keyProvider: this.keys, worker: new Worker(new URL('e2ee-worker.js', import.meta.url), { type: 'module' }) },
    });
    this.room = room;
    room.on(RoomEvent.EncryptionError, () => {
      this.encryptionErrors++;
    });
    room.on(RoomEvent.DataReceived, (payload, participant, _kind, t) => {
      this.received++;
      if (t !== topic || !participant) return;
      try {
        const msg = JSON.parse(new TextDecoder().decode(payload));
        if (typeof msg.credential === 'string' && /^[0-9a-f]{64}$/.test(msg.credential)) {
          this.credOf.set(participant.identity, msg.credential);
          void this.installKeys();
        }
      } catch {
        /* not ours */
      }
    });
    room.on(RoomEvent.ParticipantConnected, () => void this.announce().catch((e) => this.noteError(e)));
    room.on(RoomEvent.TrackSubscribed, (track, _pub, participant) => this.attach(track, participant));
    await room.setE2EEEnabled(true);
    if (!cfg.withoutKeys) {
      const transport = new HTTPTransport({ gateway: '', room: cfg.room, headers: () => cfg.headers ?? {} });
      this.client = new Client({
        transport, authorityKey: fromHex(cfg.authorityKey), room: cfg.room,
        expectIdentity: cfg.expectSubject ? { subject: cfg.expectSubject, issuer: cfg.expectIssuer ?? '' } : undefined,
      });
      this.client.onStatus((st) => {
        this.last = st;
        this.render(st);
        void this.installKeys();
        if (!this.announced && st.state === 'member') void this.announce().catch((e) => this.noteError(e));
      });
      void this.client.run(this.abort.signal).then((reason) => {
        if (reason) this.render(this.client!.status(), reason);
      });
    } else {
      $('state').textContent = 'Joined without meetguard keys.';
    }
    await room.connect(cfg.livekitURL, cfg.livekitToken, { autoSubscribe: true, peerConnectionTimeout: 45_000 });
    await this.installKeys();
    if (!cfg.withoutKeys) await room.localParticipant.enableCameraAndMicrophone();
    // Data messages wait for the publisher connection, which the first published track opens.
    void this.announce().catch((e) => this.noteError(e));
  }

  private async announce(): Promise<void> {
    const cred = this.client?.credential();
    if (!cred || !this.room || this.room.state !== 'connected') return;
    this.announced = true;
    const msg = new TextEncoder().encode(JSON.stringify({ credential: hex(cred.hash) }));
    await this.room.localParticipant.publishData(msg, { reliable: true, topic });
  }

  private setUsed(identity: string, idx: number): void {
    let s = this.used.get(identity);
    if (!s) this.used.set(identity, (s = new Set()));
    s.add(idx);
  }

  // installKeys gives LiveKit the current epoch's key of every member it can name, and garbage for anyone
  // no longer a member; without a current key (removed, halted) every key it ever set is overwritten.
  private async installKeys(): Promise<void> {
    const room = this.room;
    const c = this.client;
    if (!room || !c) return;
    const mk = c.mediaKeys(LiveKitStream);
    const local = room.state === 'connected' ? room.localParticipant.identity : '';
    if (!mk) {
      const st = c.status();
      if (st.state === 'removed' || st.state === 'halted') for (const [id, s] of this.used) await this.keys.dropKey(id, s);
      return;
    }
    const idx = keyIndex(mk.epoch, mk.generation);
    const me = hex(c.credential()!.hash);
    const remote: [string, string][] = [...this.credOf.entries()];
    for (const [identity, cred] of remote) {
      const k = mk.keys.get(cred);
      if (k) {
        await this.keys.setKey(identity, k, idx);
        this.setUsed(identity, idx);
      } else if (this.used.has(identity)) {
        await this.keys.dropKey(identity, this.used.get(identity)!);
      }
    }
    if (local) {
      await this.keys.setKey(local, mk.keys.get(me)!, idx);
      this.setUsed(local, idx);
    }
    for (const k of mk.keys.values()) k.fill(0);
  }

  private attach(track: Track, participant: RemoteParticipant): void {
    if (track.kind !== Track.Kind.Video) return;
    const el = track.attach() as HTMLVideoElement;
    el.setAttribute('aria-label', `Video of ${participant.name || participant.identity}`);
    el.muted = true;
    const fig = document.createElement('figure');
    const cap = document.createElement('figcaption');
    cap.textContent = participant.name || participant.identity;
    fig.append(el, cap);
    $('tiles').append(fig);
  }

  private render(st: Status, reason?: Error): void {
    $('state').textContent = st.state === 'member' ? `Epoch ${st.epoch}.${st.generation}` : st.state;
    $('code-label').textContent = st.securityCode ? `epoch ${st.epoch}.${st.generation}` : '';
    $('code').textContent = st.securityCode || '—';
    const alarm = $('alarm');
    if (st.alarm) {
      alarm.hidden = false;
      alarm.textContent = `Security alarm (${st.alarm.kind}): the gateway deviated from the protocol. Media keys were dropped; leave the meeting and report it. ${st.alarm.detail}`;
    }
    const removed = $('removed');
    removed.hidden = st.state !== 'removed';
    if (st.state === 'removed') removed.textContent = 'You were removed from the meeting. Your media keys were dropped.';
    if (reason && !st.alarm && st.state !== 'removed') $('state').textContent = String(reason.message);
    const list = $('roster');
    list.replaceChildren();
    for (const group of devices(st)) {
      const li = document.createElement('li');
      const name = document.createElement('strong');
      name.textContent = group[0].displayName || group[0].identity.subject;
      li.append(name);
      const ul = document.createElement('ul');
      for (const m of group) {
        const d = document.createElement('li');
        const tags = [m.self ? 'this device' : '', m.ownDevice ? (m.confirmed ? 'your other device' : 'UNCONFIRMED') : ''].filter(Boolean).join(', ');
        d.textContent = `${m.fingerprint} · ${m.kem ? kemName(m.kem) : 'no key yet'}${tags ? ' · ' + tags : ''}`;
        ul.append(d);
      }
      li.append(ul);
      list.append(li);
    }
  }

  status(): Status | null {
    return this.last;
  }

  /** stats sums the inbound video counters of this page (for tests and the debug panel). */
  async stats(): Promise<{ framesDecoded: number; framesReceived: number; packetsReceived: number; encryptionErrors: number; remoteEncrypted: boolean[]; mapped: number; received: number; lastError: string; announced: boolean }> {
    let framesDecoded = 0;
    let framesReceived = 0;
    let packetsReceived = 0;
    const remoteEncrypted: boolean[] = [];
    for (const p of this.room?.remoteParticipants.values() ?? []) {
      for (const pub of (p as Participant).trackPublications.values()) {
        if (pub.kind !== Track.Kind.Video) continue;
        remoteEncrypted.push(pub.isEncrypted);
        const t = pub.track;
        const r = t && 'receiver' in t ? (t as unknown as { receiver?: RTCRtpReceiver }).receiver : undefined;
        if (!r) continue;
        const report = await r.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp') {
            framesDecoded += s.framesDecoded ?? 0;
            framesReceived += s.framesReceived ?? 0;
            packetsReceived += s.packetsReceived ?? 0;
          }
        });
      }
    }
    return { framesDecoded, framesReceived, packetsReceived, encryptionErrors: this.encryptionErrors, remoteEncrypted, mapped: this.credOf.size, received: this.received, lastError: this.lastError, announced: this.announced };
  }
}

const meeting = new Meeting();
declare global {
  interface Window {
    meetguardMeeting: Meeting;
  }
}
window.meetguardMeeting = meeting;

// The meeting page for LiveKit rooms: meetguard's key exchange (web/src/e2ee) drives LiveKit's end-to-end
// media encryption. It shows the security code with its epoch.generation label, the roster from the verified
// chain grouped by person with device fingerprints, a banner on any alarm and the "you were removed" state.
//
// The gateway's web layer renders the page (gateway/web/templates/meeting.html) and inlines this bundle, which
// its CSP admits by hash: so the script is a classic one (no import.meta), it reads what differs per request
// from data- attributes of #mg, its strings from the #mg-text JSON block, and LiveKit's E2EE worker source
// from the #mg-worker JSON block, started from a blob: URL (the CSP's only worker source).

import { Room, RoomEvent, Track, type RemoteParticipant, type RemoteTrackPublication, type Participant } from 'livekit-client';
import { Client, HTTPTransport, devices, fromHex, hex, kemName, type Status } from '../e2ee/index.js';
import { MeetguardKeyProvider } from './keyprovider.js';
import { KeyInstaller } from './install.js';
import { Announcer } from './broadcast.js';
import { AlarmReporter, type ShownAlarm } from './alarms.js';

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
  /** test only, with withoutKeys: publish camera and microphone in the clear (a client that ignores the room's e2ee mark) */
  clearMedia?: boolean;
  /** headers for every key-exchange request (a page uses its session cookie and ticket cookie instead) */
  headers?: Record<string, string>;
  /**
   * join the room through the rooms API once the device key is registered (a room that requires end-to-end
   * encryption admits nobody without one); the ticket cookies it sets admit the key exchange and the signalling.
   */
  joinRoom?: boolean;
}

/** The participant attribute of a LiveKit token the gateway minted for a room that requires e2ee. */
const e2eeAttribute = 'meetguard.e2ee';

const $ = (id: string) => document.getElementById(id)!;
const topic = 'meetguard.e2ee';

// t holds the page's strings in the reader's language (meeting.js.* of the gateway's catalog).
const t: Record<string, string> = JSON.parse(document.getElementById('mg-text')?.textContent || '{}');
const say = (key: string, ...args: string[]) => args.reduce((s, a) => s.replace('%s', a), t[key] ?? key);

// e2eeWorker starts LiveKit's E2EE worker from the source the page carries.
function e2eeWorker(): Worker {
  const src: string = JSON.parse($('mg-worker').textContent || '""');
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  return new Worker(url, { type: 'module' });
}

// pageConfig is what the gateway rendered into the page: the room, its pinned authority key, the signalling
// path of the room on the gateway (LiveKit is reached through the gateway's proxy, which mints the token) and
// the signed-in identity the credential must name.
function pageConfig(): MeetingConfig | null {
  const d = $('mg').dataset;
  if (!d.room || !d.authority || !d.signal) return null;
  const ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + d.signal;
  return {
    room: d.room, authorityKey: d.authority, livekitURL: ws,
    // The gateway replaces whatever token a client sends with one it mints after admission.
    livekitToken: 'minted-by-the-gateway',
    expectSubject: d.subject || undefined, expectIssuer: d.issuer || undefined,
    joinRoom: true,
  };
}

class Meeting {
  private client: Client | null = null;
  private room: Room | null = null;
  private readonly keys = new MeetguardKeyProvider();
  private readonly credOf = new Map<string, string>(); // LiveKit identity → credential hash (hex)
  private last: Status | null = null;
  private encryptionErrors = 0;
  private announced = false;
  private lastError = '';
  private received = 0;
  private e2eeRequired = false;
  private readonly clear = new Set<string>(); // identities that published a track without encryption
  private headers: Record<string, string> = {};
  private reporter: AlarmReporter | null = null; // reports every alarm the page shows to the gateway, once
  private halting: ShownAlarm | null = null; // the alarm that halted the key client
  private announcer: Announcer | null = null; // tells the host console in another tab the code and alarms
  // the key installs, one at a time (./install.ts)
  private readonly installer = new KeyInstaller(
    this.keys,
    () => (this.room && this.client ? { client: this.client, local: this.room.state === 'connected' ? this.room.localParticipant.identity : '', remote: this.credOf } : null),
    (e) => this.noteError(e),
  );

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
      ...(cfg.clearMedia ? {} : { e2ee: { keyProvider: this.keys, worker: e2eeWorker() } }),
    });
    this.room = room;
    this.announcer = new Announcer(cfg.room);
    this.headers = cfg.headers ?? {};
    this.reporter = new AlarmReporter(cfg.room, { headers: () => this.headers });
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
    room.on(RoomEvent.TrackSubscribed, (track, pub, participant) => this.attach(track, pub, participant));
    if (!cfg.clearMedia) await room.setE2EEEnabled(true);
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
      if (cfg.joinRoom) await this.join(cfg.room);
    } else {
      $('state').textContent = say('without_keys');
    }
    await room.connect(cfg.livekitURL, cfg.livekitToken, { autoSubscribe: true, peerConnectionTimeout: 45_000 });
    // The gateway's token says whether the room requires end-to-end encryption; this page always encrypts, and
    // shows (and counts) anyone who publishes in the clear, whose tracks it never plays.
    this.e2eeRequired = room.localParticipant.attributes[e2eeAttribute] === 'required';
    await this.installKeys();
    if (!cfg.withoutKeys || cfg.clearMedia) await room.localParticipant.enableCameraAndMicrophone();
    // Data messages wait for the publisher connection, which the first published track opens.
    void this.announce().catch((e) => this.noteError(e));
    // A message sent while a peer's own connection is still being set up is lost to it, and LiveKit does not
    // replay data messages: the mapping is sent again every few seconds (about a hundred bytes).
    const again = setInterval(() => {
      if (this.abort.signal.aborted || room.state === 'disconnected') clearInterval(again);
      else void this.announce().catch((e) => this.noteError(e));
    }, 3000);
  }

  // join waits for the device key's registration, then joins the room through the rooms API (same origin, the
  // session cookie, the CSRF header every cookie-authenticated state change needs).
  private async join(room: string): Promise<void> {
    const c = this.client!;
    while (!c.credential()) {
      const st = c.status();
      if (st.state === 'halted' || st.state === 'removed') throw new Error(say('state_' + st.state));
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await fetch(`/.meetguard/api/v1/rooms/${encodeURIComponent(room)}/join`, {
      method: 'POST', credentials: 'same-origin', body: '{}',
      headers: { 'Content-Type': 'application/json', 'Meetguard-CSRF': '1' },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.status !== 'admitted') throw new Error(body.message || say('not_admitted'));
  }

  private async announce(): Promise<void> {
    const cred = this.client?.credential();
    if (!cred || !this.room || this.room.state !== 'connected') return;
    this.announced = true;
    const msg = new TextEncoder().encode(JSON.stringify({ credential: hex(cred.hash) }));
    await this.room.localParticipant.publishData(msg, { reliable: true, topic });
  }

  // installKeys gives LiveKit the current epoch's keys (KeyInstaller: one install at a time, own key first).
  private installKeys(): Promise<void> {
    return this.installer.install();
  }

  private attach(track: Track, pub: RemoteTrackPublication, participant: RemoteParticipant): void {
    if (!pub.isEncrypted) {
      // A track in the clear is refused, not played: the server (or anyone with a token) could be its author.
      pub.setSubscribed(false);
      const first = !this.clear.has(participant.identity);
      this.clear.add(participant.identity);
      const warn = $('clear');
      warn.hidden = false;
      warn.textContent = say('clear_track', participant.name || participant.identity);
      // Shown as a warning, and an alarm for the operator: the SFU, or someone holding a token, sends media that no
      // member's key protects into an end-to-end encrypted room. The reporter sends one clear_media report per page
      // (the first sender's), from a budget of its own: senders under many identities cannot use up the reports
      // a halting key alarm needs.
      if (first) void this.reporter?.report({ kind: 'clear_media', epoch: this.last?.epoch ?? 0, detail: `unencrypted track from LiveKit participant ${participant.identity}` });
      return;
    }
    if (track.kind !== Track.Kind.Video) return;
    const el = track.attach() as HTMLVideoElement;
    el.setAttribute('aria-label', say('video_of', participant.name || participant.identity));
    el.muted = true;
    const fig = document.createElement('figure');
    const cap = document.createElement('figcaption');
    cap.textContent = participant.name || participant.identity;
    fig.append(el, cap);
    $('tiles').append(fig);
  }

  private render(st: Status, reason?: Error): void {
    $('state').textContent = st.state === 'member' ? say('epoch', `${st.epoch}.${st.generation}`) : say('state_' + st.state);
    $('code-label').textContent = st.securityCode ? `(${say('epoch', `${st.epoch}.${st.generation}`)})` : '';
    $('code').textContent = st.securityCode || '—';
    this.announcer?.update(st);
    const alarm = $('alarm');
    if (st.alarm) {
      alarm.hidden = false;
      alarm.textContent = say('alarm', st.alarm.kind, st.alarm.detail);
      this.halting = st.alarm;
      void this.reporter?.report(st.alarm);
    }
    const removed = $('removed');
    removed.hidden = st.state !== 'removed';
    if (st.state === 'removed') removed.textContent = say('removed');
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
        const tags = [m.self ? say('this_device') : '', m.ownDevice ? (m.confirmed ? say('other_device') : say('unconfirmed')) : ''].filter(Boolean).join(', ');
        d.textContent = `${m.fingerprint} · ${m.kem ? kemName(m.kem) : say('no_key')}${tags ? ' · ' + tags : ''}`;
        if (m.ownDevice && !m.self && !m.confirmed && st.state === 'member') d.append(' ', ...this.deviceButtons(m.fingerprint));
        ul.append(d);
      }
      li.append(ul);
      list.append(li);
    }
  }

  // deviceButtons ask the user about a device listed under their own identity that they have not confirmed: it
  // is theirs (another tab, their phone), or it is not, which is an alarm (someone holds a credential for them).
  private deviceButtons(fingerprint: string): HTMLButtonElement[] {
    const c = this.client!;
    const mk = (label: string, cls: string, act: () => void) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = cls;
      b.textContent = label;
      b.setAttribute('aria-label', `${label}: ${fingerprint}`);
      b.dataset.fingerprint = fingerprint;
      b.addEventListener('click', act);
      return b;
    };
    return [
      mk(say('device_mine'), 'secondary confirm-device', () => {
        c.confirmDevice(fingerprint);
        this.render(c.status());
      }),
      mk(say('device_not_mine'), 'danger reject-device', () => {
        c.rejectDevice(fingerprint);
        void this.installKeys();
        this.render(c.status());
      }),
    ];
  }

  status(): Status | null {
    return this.last;
  }

  /** alarmReported is the HTTP status of the report of the alarm that halted this page's key client (0: none sent). */
  alarmReported(): number {
    return this.halting ? (this.reporter?.status(this.halting) ?? 0) : 0;
  }

  /** alarmsReported is how many alarm reports of this page the gateway took (or refused for good). */
  alarmsReported(): number {
    return this.reporter?.sent ?? 0;
  }

  /** stats sums the inbound video counters of this page (for tests and the debug panel). */
  async stats(): Promise<{ framesDecoded: number; framesReceived: number; packetsReceived: number; encryptionErrors: number; remoteEncrypted: boolean[]; mapped: number; received: number; lastError: string; announced: boolean; e2eeRequired: boolean; clear: string[]; keyedAt: Record<string, number> }> {
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
    return { framesDecoded, framesReceived, packetsReceived, encryptionErrors: this.encryptionErrors, remoteEncrypted, mapped: this.credOf.size, received: this.received, lastError: this.lastError, announced: this.announced, e2eeRequired: this.e2eeRequired, clear: [...this.clear], keyedAt: Object.fromEntries(this.installer.keyedAt) };
  }
}

const meeting = new Meeting();
declare global {
  interface Window {
    meetguardMeeting: Meeting;
  }
}
window.meetguardMeeting = meeting;

// A page rendered for a signed-in member starts by itself, unless its address ends in #manual (tests start such
// a page with window.meetguardMeeting.start and a configuration of their own).
const auto = pageConfig();
if (auto && $('mg').dataset.autostart === '1' && location.hash !== '#manual') void meeting.start(auto).catch((e) => ($('state').textContent = String((e as Error)?.message ?? e)));

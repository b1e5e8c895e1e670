// The demo app's room page (gateway/web/templates/demoapp.html): presence and chat over the app's WebSocket
// and, where the gateway runs meetguard's key exchange for the room, chat encrypted end to end with SFrame
// (./chat.ts) under the keys of web/src/e2ee, with the same security-code panel, alarm banner and "you were
// removed" state as the meeting page. The app only relays ciphertext; a message names its sender by the key
// that opened it, never by what the app says.
//
// Like the meeting page, the gateway inlines this bundle and its CSP admits it by hash: a classic script that
// reads the room from #mg's data- attributes and its strings from the #mg-text and #mg-chat-text JSON blocks.

import { Client, HTTPTransport, type Status } from '../e2ee/index.js';
import { Announcer } from '../meeting/broadcast.js';
import { AlarmReporter, type ShownAlarm } from '../meeting/alarms.js';
import { ChatCipher, fromBase64URL, toBase64URL } from './chat.js';

interface Presence {
  id: string;
  name: string;
  email?: string;
  role?: string;
  verified?: boolean;
}
interface AppEvent {
  type: string;
  you?: Presence;
  roster?: Presence[];
  member?: Presence;
  text?: string;
  data?: string;
}

const $ = (id: string) => document.getElementById(id)!;
const t: Record<string, string> = JSON.parse($('mg-text').textContent || '{}');
const tc: Record<string, string> = JSON.parse(document.getElementById('mg-chat-text')?.textContent || '{}');
const say = (key: string, ...args: string[]) => args.reduce((s, a) => s.replace('%s', a), tc[key] ?? key);

type Mode = 'starting' | 'on' | 'off';

class DemoRoom {
  private readonly roster = new Map<string, Presence>();
  private me: Presence | null = null;
  private ws: WebSocket | null = null;
  private retry = 0;
  private mode: Mode = 'starting';
  private client: Client | null = null;
  private cipher: ChatCipher | null = null;
  private last: Status | null = null;
  private readonly abort = new AbortController();
  private announcer: Announcer | null = null;
  /** reports every alarm the panel shows to the gateway, once (cookie-authenticated, same origin) */
  private readonly reporter: AlarmReporter;
  private shown: ShownAlarm | null = null;
  /** what this page opened and what it could not (for the tests and the debug panel) */
  readonly opened: { text: string; sender: string }[] = [];
  unreadable = 0;

  constructor(private readonly room: string) {
    this.reporter = new AlarmReporter(room);
  }

  start(): void {
    $('chat').addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.connect();
    void this.startKeys();
  }

  // startKeys joins the room's key exchange; without one (the gateway runs none for this room, or refuses
  // this caller) the chat stays as it was, in the clear, and the panel says so.
  private async startKeys(): Promise<void> {
    const transport = new HTTPTransport({ gateway: '', room: this.room });
    let authority: Uint8Array;
    try {
      // The key is taken from the gateway that serves this page (and its script): pinning it here would add
      // nothing. What protects the chat is the security code that members compare.
      authority = await transport.authority();
    } catch {
      this.setMode('off');
      return;
    }
    const c = new Client({ transport, authorityKey: authority, room: this.room });
    this.client = c;
    this.cipher = new ChatCipher(c, this.room);
    this.announcer = new Announcer(this.room);
    c.onStatus((st) => {
      this.last = st;
      if (this.mode === 'starting' && st.state !== 'unregistered') this.setMode('on');
      this.render(st);
    });
    try {
      await c.register();
    } catch (e) {
      if (c.status().state === 'halted') this.render(c.status());
      else {
        this.client = null;
        this.cipher = null;
        this.setMode('off', String((e as Error)?.message ?? e));
        return;
      }
    }
    this.setMode('on');
    const reason = await c.run(this.abort.signal);
    this.render(c.status(), reason);
  }

  private setMode(m: Mode, why = ''): void {
    this.mode = m;
    const st = $('e2ee-state');
    if (m === 'off') {
      st.textContent = say('off') + (why ? ' (' + why + ')' : '');
      $('code').textContent = '—';
    } else if (m === 'on' && !this.last?.securityCode) st.textContent = say('waiting');
  }

  private render(st: Status, reason?: Error | null): void {
    const label = `${st.epoch}.${st.generation}`;
    $('e2ee-state').textContent =
      st.state === 'member' && st.securityCode ? say('on', String(st.members.length)) : say('state_' + st.state);
    $('code').textContent = st.securityCode || '—';
    $('code-label').textContent = st.securityCode ? `(${say('epoch', label)})` : '';
    this.announcer?.update(st);
    const alarm = $('e2ee-alarm');
    alarm.hidden = !st.alarm;
    if (st.alarm) {
      alarm.textContent = say('alarm', st.alarm.kind, st.alarm.detail);
      this.shown = st.alarm;
      void this.reporter.report(st.alarm);
    }
    const removed = $('e2ee-removed');
    removed.hidden = st.state !== 'removed';
    if (st.state === 'removed') removed.textContent = say('removed');
    if (reason && !st.alarm && st.state !== 'removed') $('e2ee-state').textContent = String(reason.message);
  }

  private send(): void {
    const input = $('text') as HTMLInputElement;
    const text = input.value;
    if (!text.trim() || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.mode === 'off') {
      this.ws.send(JSON.stringify({ type: 'chat', text }));
      input.value = '';
      return;
    }
    // With a key exchange, nothing is ever sent in the clear: without a key yet (or any more), nothing is sent.
    let frame: Uint8Array;
    try {
      frame = this.cipher!.seal(text);
    } catch {
      this.note(say('no_key'));
      return;
    }
    this.ws.send(JSON.stringify({ type: 'sealed', data: toBase64URL(frame) }));
    input.value = '';
  }

  /** open decrypts one relayed message (base64url) or says why not; the page's own use and the tests'. */
  open(data: string): { text: string; sender: string; name: string } | { error: string } {
    if (!this.cipher) return { error: 'no key exchange' };
    try {
      const m = this.cipher.open(fromBase64URL(data));
      const who = this.last?.members.find((x) => x.credential === m.sender);
      return { ...m, name: who ? who.displayName || who.identity.subject : m.sender.slice(0, 16) };
    } catch (e) {
      return { error: String((e as Error)?.message ?? e) };
    }
  }

  private received(ev: AppEvent): void {
    switch (ev.type) {
      case 'welcome':
        this.me = ev.you ?? null;
        this.roster.clear();
        for (const m of ev.roster ?? []) this.roster.set(m.id, m);
        this.draw();
        break;
      case 'joined':
        this.roster.set(ev.member!.id, ev.member!);
        this.draw();
        this.note(t.joined.replace('%s', ev.member!.name));
        break;
      case 'left':
        this.roster.delete(ev.member!.id);
        this.draw();
        this.note(t.left.replace('%s', ev.member!.name));
        break;
      case 'chat':
        // In the clear: shown as such when this room's chat is meant to be encrypted.
        this.line(ev.member!.name + ': ' + ev.text, this.mode === 'off' ? '' : say('clear'));
        break;
      case 'sealed': {
        const r = this.open(ev.data ?? '');
        if ('error' in r) {
          this.unreadable++;
          this.note(say('unreadable', ev.member?.name ?? ''));
        } else {
          this.opened.push({ text: r.text, sender: r.sender });
          this.line(r.name + ': ' + r.text, say('sealed'));
        }
        break;
      }
      case 'error':
        this.note(ev.text ?? '');
        break;
    }
  }

  private row(m: Presence): HTMLLIElement {
    const li = document.createElement('li');
    const name = document.createElement('strong');
    name.textContent = m.name + (this.me && m.id === this.me.id ? t.you : '');
    const meta = document.createElement('div');
    meta.className = 'muted small';
    meta.textContent = [m.email, m.role, m.verified ? t.verified : ''].filter(Boolean).join(' · ');
    li.append(name, meta);
    return li;
  }

  private draw(): void {
    $('roster').replaceChildren(...[...this.roster.values()].map((m) => this.row(m)));
    $('count').textContent = String(this.roster.size);
  }

  private line(text: string, tag: string): void {
    const li = document.createElement('li');
    li.textContent = text;
    if (tag) {
      const s = document.createElement('span');
      s.className = 'muted small';
      s.textContent = ' · ' + tag;
      li.append(s);
    }
    this.append(li);
  }

  private note(text: string): void {
    const li = document.createElement('li');
    li.textContent = text;
    li.className = 'note';
    this.append(li);
  }

  private append(li: HTMLLIElement): void {
    const log = $('log');
    log.append(li);
    log.scrollTop = log.scrollHeight;
  }

  // gone ends the page's life in the room: no more reconnecting (a gateway closes a removed participant's
  // socket with 4001, a banned one's with 4003; 4005, a role change, reconnects at once).
  private gone(text: string): void {
    $('status').textContent = text;
    ($('text') as HTMLInputElement).disabled = true;
    this.note(text);
  }

  private connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + location.pathname.replace(/\/+$/, '') + '/ws');
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      $('status').textContent = t.connected;
    };
    ws.onmessage = (e) => {
      try {
        this.received(JSON.parse(e.data));
      } catch {
        /* not an event of this app */
      }
    };
    ws.onclose = (e) => {
      this.roster.clear();
      this.draw();
      if (e.code === 4001 || e.code === 4003) {
        this.gone(t.removed);
        return;
      }
      // 4005: a host changed this person's role; the admission stands and the next connection carries the new role.
      if (e.code === 4005) {
        this.retry = 0;
        $('status').textContent = t.reconnecting;
        setTimeout(() => this.connect(), 100);
        return;
      }
      if (e.code === 1008 || e.code === 1001) {
        $('status').textContent = t.disconnected + (e.reason || t.closed);
        return;
      }
      if (++this.retry > 5) {
        this.gone(t.reload);
        return;
      }
      $('status').textContent = t.reconnecting;
      setTimeout(() => this.connect(), 500 * 2 ** this.retry);
    };
  }

  /** alarmReported is the HTTP status of the report of the alarm the panel shows (0: none, or not answered yet). */
  alarmReported(): number {
    return this.shown ? this.reporter.status(this.shown) : 0;
  }

  /** status is the key client's last status (null without a key exchange). */
  status(): (Status & { mode: Mode }) | { mode: Mode } {
    return this.last ? { ...this.last, mode: this.mode } : { mode: this.mode };
  }
}

const d = $('mg').dataset;
const page = new DemoRoom(d.room ?? '');
declare global {
  interface Window {
    meetguardChat: DemoRoom;
  }
}
window.meetguardChat = page;
page.start();

// Tells the host console (gateway/web/static/console.js) open in another tab of the same browser what only a
// client knows: the room's security code with its epoch.generation label and the alarm that halted the client.
// BroadcastChannel reaches only same-origin documents of this browser profile. What is posted is public to the
// room's members (the code is meant to be read aloud; an alarm names its kind); never a key, secret or credential.

/** The channel the console listens on. */
export const channelName = 'meetguard-e2ee';

/** What the page posts: {room, epoch, code, alarms}; `alarm` (the first kind) is what the console reads. */
export interface E2EENotice {
  room: string;
  epoch: string; // "epoch.generation", "" before the first epoch
  code: string; // security code, "" before the first epoch
  alarms: string[]; // alarm kinds raised by this client
  alarm: string; // alarms[0] or ""
}

/** The part of a channel this module uses (BroadcastChannel, or a stand-in where it does not exist). */
export interface Channel {
  postMessage(m: unknown): void;
  addEventListener(type: 'message', fn: (ev: { data: unknown }) => void): void;
  close(): void;
}

// Announcer posts a notice whenever what it would post changes, and answers a console that asks
// ({ask: room}, sent when the console opens after the meeting page) with the last notice.
export class Announcer {
  private last = '';
  private notice: E2EENotice | null = null;

  constructor(
    private readonly room: string,
    private readonly ch: Channel | null = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channelName) : null,
  ) {
    this.ch?.addEventListener('message', (ev) => {
      const d = ev.data as { ask?: unknown } | null;
      if (d && d.ask === this.room && this.notice) this.ch?.postMessage(this.notice);
    });
  }

  /** update posts {room, epoch, code, alarms} if it differs from the last one posted; returns whether it posted. */
  update(s: { epoch: number; generation: number; securityCode: string; alarm: { kind: string } | null }): boolean {
    const alarms = s.alarm ? [String(s.alarm.kind)] : [];
    const n: E2EENotice = {
      room: this.room,
      epoch: s.securityCode ? `${s.epoch}.${s.generation}` : '',
      code: s.securityCode || '',
      alarms,
      alarm: alarms[0] ?? '',
    };
    const key = JSON.stringify(n);
    if (key === this.last || !this.ch) return false;
    this.last = key;
    this.notice = n;
    this.ch.postMessage(n);
    return true;
  }

  close(): void {
    this.ch?.close();
  }
}

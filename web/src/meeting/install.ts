// KeyInstaller gives LiveKit's E2EE worker, through the page's key provider, the keys of meetguard's current
// epoch: this page's own sending key first, then the key of every member it can name, and garbage for anyone no
// longer a member; without a current key (removed, halted) every key it ever set is overwritten.
//
// Installs run one at a time, each reading the client's keys when it starts. Setting a key is asynchronous
// (the key material is imported first), so two interleaved installs could otherwise finish out of order: an
// install of the previous epoch finishing last would set this page's sending key back to that epoch's, which a
// member just removed still holds.

import { hex } from '../e2ee/bytes.js';
import { LiveKitStream, keyIndex } from './keyindex.js';

/** KeySink is where keys go: the page's MeetguardKeyProvider. */
export interface KeySink {
  setKey(identity: string, raw: Uint8Array, index: number): Promise<void>;
  dropKey(identity: string, indexes: Iterable<number>): Promise<void>;
}

/** KeySource is the part of the key client an install reads. */
export interface KeySource {
  mediaKeys(stream: number): { epoch: number; generation: number; keys: Map<string, Uint8Array> } | null;
  status(): { state: string };
  credential(): { hash: Uint8Array } | null;
}

/** InstallView is what an install reads when it starts. */
export interface InstallView {
  client: KeySource;
  /** this page's LiveKit identity, '' while it is not connected */
  local: string;
  /** LiveKit identity → credential hash (hex), as the other pages announced them */
  remote: ReadonlyMap<string, string>;
}

export class KeyInstaller {
  /** identity → every key index this page set for it (all overwritten on removal) */
  readonly used = new Map<string, Set<number>>();
  /** "epoch.generation" → when this page's sending key of it was set (ms), the 16 newest */
  readonly keyedAt = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly keys: KeySink,
    private readonly view: () => InstallView | null,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** install queues an install behind the ones already queued; it resolves once this one is done. */
  install(): Promise<void> {
    this.chain = this.chain.then(() => this.installNow()).catch((e) => this.onError(e));
    return this.chain;
  }

  private setUsed(identity: string, idx: number): void {
    let s = this.used.get(identity);
    if (!s) this.used.set(identity, (s = new Set()));
    s.add(idx);
  }

  private async installNow(): Promise<void> {
    const v = this.view();
    if (!v) return;
    const c = v.client;
    const mk = c.mediaKeys(LiveKitStream);
    if (!mk) {
      const st = c.status();
      if (st.state === 'removed' || st.state === 'halted') for (const [id, s] of this.used) await this.keys.dropKey(id, s);
      return;
    }
    const idx = keyIndex(mk.epoch, mk.generation);
    const me = hex(c.credential()!.hash);
    // This page's own sending key first: from then on what it sends is sealed from anyone just removed.
    if (v.local) {
      await this.keys.setKey(v.local, mk.keys.get(me)!, idx);
      this.setUsed(v.local, idx);
      const label = `${mk.epoch}.${mk.generation}`;
      if (!this.keyedAt.has(label)) {
        this.keyedAt.set(label, Date.now());
        if (this.keyedAt.size > 16) this.keyedAt.delete(this.keyedAt.keys().next().value!);
      }
    }
    for (const [identity, cred] of [...v.remote.entries()]) {
      const k = mk.keys.get(cred);
      if (k) {
        await this.keys.setKey(identity, k, idx);
        this.setUsed(identity, idx);
      } else if (this.used.has(identity)) {
        await this.keys.dropKey(identity, this.used.get(identity)!);
      }
    }
    for (const k of mk.keys.values()) k.fill(0);
  }
}

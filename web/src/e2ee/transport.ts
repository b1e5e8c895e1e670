// The client side of docs/e2ee.md section 11: every endpoint over fetch, binary bodies, errors mapped back
// to the kinds the client branches on. Like the Go HTTPTransport, no answer can make the client believe it
// raised an alarm, was removed or halted: only its own checks decide those.

import { E2EEError, ErrConflict, ErrHTTP, ErrMalformed, ErrNoRoster, ErrNotMember, ErrRateLimited, ErrStaleEpoch } from './errors.js';

export interface Transport {
  challenge(): Promise<Uint8Array>;
  register(registration: Uint8Array): Promise<Uint8Array>;
  roster(since: number): Promise<Uint8Array>;
  postKeyPackage(keyPackage: Uint8Array): Promise<void>;
  keyPackages(epoch: number): Promise<Uint8Array>;
  postCommit(epoch: number, commit: Uint8Array): Promise<void>;
  sealedKeys(epoch: number): Promise<Uint8Array>;
  /** wait resolves once the gateway's change counter exceeds after, or when signal aborts (then with after). */
  wait(after: number, signal: AbortSignal): Promise<number>;
}

export function apiPath(room: string): string {
  return '/.meetguard/api/v1/rooms/' + encodeURIComponent(room) + '/e2ee/';
}

// The codes of ErrorStatus (docs/e2ee.md section 11) the client branches on keep their names as kinds.
const knownCodes = new Set([
  'malformed', 'unsupported_kem', 'nonce', 'bad_signature', 'wrong_sender', 'kem_not_allowed', 'not_member', 'context_mismatch',
  'unknown_credential', 'unknown_epoch', 'no_roster', 'stale_epoch', 'replay', 'fork', 'locked', 'conflict', 'room_full',
  'credential_expired', 'identity_mismatch', 'rate_limited',
]);

/** HTTPError is a gateway refusal; kind is the gateway-side condition it stands for, if known. */
export class HTTPError extends E2EEError {
  constructor(
    readonly op: string,
    readonly status: number,
    readonly code: string,
    kind: string,
    message: string,
  ) {
    super(kind || ErrHTTP, `${op}: HTTP ${status}${code ? ' ' + code : ''}${message ? ': ' + message : ''}`);
    this.name = 'HTTPError';
  }
}

function classify(op: string, status: number, code: string): string {
  if (code && knownCodes.has(code)) return code;
  if (op === 'roster' && status === 403) return ErrNotMember;
  if (op === 'roster' && status === 404) return ErrNoRoster;
  if ((op === 'keys' || op === 'keypackages') && status === 409) return ErrStaleEpoch;
  if (op === 'commits' && status === 409) return ErrConflict;
  if (status === 429) return ErrRateLimited;
  return '';
}

function printable(s: unknown, limit: number): string {
  if (typeof s !== 'string') return '';
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '').slice(0, limit);
}

/** TicketHeader carries an app's room ticket on a request, and on an answer the gateway's renewal of it once half
 * its life is gone (docs/api.md, "Tickets"). Pages hold their ticket in cookies, which the gateway renews itself. */
export const TicketHeader = 'Meetguard-Ticket';

/** maxTicketLen bounds a renewed ticket taken from an answer (a gateway ticket is about 100 characters). */
const maxTicketLen = 1024;

/** validTicket accepts what a gateway ticket looks like: unpadded base64url, at most maxTicketLen characters. */
function validTicket(s: string | null): s is string {
  return s !== null && s.length > 0 && s.length <= maxTicketLen && /^[A-Za-z0-9_-]+$/.test(s);
}

export interface HTTPTransportOptions {
  /** gateway origin, e.g. https://meet.example.com; '' for the page's own origin */
  gateway: string;
  room: string;
  /** headers for each request (bearer token, room ticket); called every time, so they can be refreshed. A room
   * ticket lasts minutes and a meeting longer: when an answer carries the gateway's renewal of the ticket these
   * headers set (TicketHeader), the transport sends the renewal in its place from then on, so a ticket set once at
   * join keeps working for as long as the admission stands; a ticket the headers change is sent as is. */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  /** credentials mode of fetch: 'same-origin' in a page (session cookie), 'omit' for bearer callers */
  credentials?: RequestCredentials;
  maxWaitMs?: number;
  requestTimeoutMs?: number;
  maxResponseBytes?: number;
  fetch?: typeof fetch;
}

export class HTTPTransport implements Transport {
  private readonly base: string;
  private readonly maxWait: number;
  private readonly timeout: number;
  private readonly maxBytes: number;
  private readonly f: typeof fetch;
  /** the newest renewal the gateway sent of the ticket headers() sets */
  private renewal: { of: string; to: string } | null = null;

  constructor(private readonly o: HTTPTransportOptions) {
    if (!o.room) throw new Error('e2ee: HTTPTransport: room is required');
    if (o.gateway) {
      const u = new URL(o.gateway);
      const loopback = u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost';
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) throw new Error('e2ee: HTTPTransport: gateway must be https (http only on loopback)');
    }
    this.base = (o.gateway ? o.gateway.replace(/\/+$/, '') : '') + apiPath(o.room);
    this.maxWait = o.maxWaitMs ?? 25_000;
    this.timeout = o.requestTimeoutMs ?? 30_000;
    this.maxBytes = o.maxResponseBytes ?? 16 << 20;
    this.f = o.fetch ?? fetch.bind(globalThis);
  }

  private async call(op: string, method: string, query: string, body: Uint8Array | null, timeoutMs: number, signal?: AbortSignal): Promise<{ status: number; body: Uint8Array }> {
    const headers: Record<string, string> = { ...(this.o.headers ? await this.o.headers() : {}) };
    if (body) headers['Content-Type'] = 'application/octet-stream';
    const ticketKey = Object.keys(headers).find((k) => k.toLowerCase() === TicketHeader.toLowerCase());
    const sent = ticketKey !== undefined ? headers[ticketKey] : '';
    if (ticketKey !== undefined && sent && this.renewal?.of === sent) headers[ticketKey] = this.renewal.to;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onAbort = () => ctl.abort();
    signal?.addEventListener('abort', onAbort);
    try {
      const resp = await this.f(this.base + op + (query ? '?' + query : ''), {
        method, headers, body: body as BodyInit | null, signal: ctl.signal, credentials: this.o.credentials ?? 'same-origin', cache: 'no-store',
      });
      const renewed = resp.headers.get(TicketHeader);
      // Keyed by what headers() set, not by what was sent: renewals of renewals all replace the app's ticket.
      if (sent && validTicket(renewed)) this.renewal = { of: sent, to: renewed };
      const buf = new Uint8Array(await resp.arrayBuffer());
      if (buf.length > this.maxBytes) throw new E2EEError(ErrMalformed, `${op}: answer larger than ${this.maxBytes} bytes`);
      if (resp.status >= 300 && !(op === 'wait' && resp.status === 204)) {
        let code = '';
        let message = '';
        try {
          const j = JSON.parse(new TextDecoder().decode(buf.subarray(0, 4096)));
          code = printable(j.error, 64);
          message = printable(j.message, 256);
        } catch {
          /* the status alone decides */
        }
        throw new HTTPError(op, resp.status, code, classify(op, resp.status, code), message);
      }
      return { status: resp.status, body: buf };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async authority(): Promise<Uint8Array> {
    const r = await this.call('authority', 'GET', '', null, this.timeout);
    if (r.body.length !== 32) throw new E2EEError(ErrMalformed, `authority: ${r.body.length} bytes, want 32`);
    return r.body;
  }
  async challenge(): Promise<Uint8Array> {
    return (await this.call('nonce', 'POST', '', new Uint8Array(0), this.timeout)).body;
  }
  async register(registration: Uint8Array): Promise<Uint8Array> {
    return (await this.call('register', 'POST', '', registration, this.timeout)).body;
  }
  async roster(since: number): Promise<Uint8Array> {
    return (await this.call('roster', 'GET', `since=${since}`, null, this.timeout)).body;
  }
  async postKeyPackage(kp: Uint8Array): Promise<void> {
    await this.call('keypackages', 'POST', '', kp, this.timeout);
  }
  async keyPackages(epoch: number): Promise<Uint8Array> {
    return (await this.call('keypackages', 'GET', `epoch=${epoch}`, null, this.timeout)).body;
  }
  async postCommit(epoch: number, commit: Uint8Array): Promise<void> {
    await this.call('commits', 'POST', `epoch=${epoch}`, commit, this.timeout);
  }
  async sealedKeys(epoch: number): Promise<Uint8Array> {
    return (await this.call('keys', 'GET', `epoch=${epoch}`, null, this.timeout)).body;
  }
  async wait(after: number, signal: AbortSignal): Promise<number> {
    while (!signal.aborted) {
      const waitMs = this.maxWait;
      let r: { status: number; body: Uint8Array };
      try {
        r = await this.call('wait', 'GET', `after=${after}&wait=${waitMs}ms`, null, waitMs + this.timeout, signal);
      } catch (e) {
        if (signal.aborted) return after;
        throw e;
      }
      if (r.status === 204) continue;
      if (r.body.length !== 8) throw new E2EEError(ErrMalformed, `wait: ${r.body.length} bytes, want 8`);
      const v = Number(new DataView(r.body.buffer, r.body.byteOffset, 8).getBigUint64(0));
      if (v > after) return v;
    }
    return after;
  }
}

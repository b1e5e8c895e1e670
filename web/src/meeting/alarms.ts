// The report of an alarm a page shows, to the gateway's POST …/e2ee/alarms (docs/e2ee.md sections 11 and 14):
// the operator sees it (audit record e2ee.client_alarm, metric meetguard_e2ee_alarms_total). Both the meeting
// page and the demo app's room page use it.
//
// Only four fields ever leave the page, each checked here as the gateway parses them (ParseClientAlarm): the
// alarm's kind, the epoch, the credential hash it names (public: every member's roster lists it) and the text the
// page shows, with every character the gateway would not print (controls, format characters, line breaks, every
// space but U+0020, unassigned code points) turned into a space and cut to fit. Never a status object, a key or a
// secret.

/** What a page shows of an alarm: the client's AlarmError, or an alarm of the page itself (media in the clear). */
export interface ShownAlarm {
  kind: string;
  epoch?: number;
  /** hex credential hash the alarm names, if any */
  member?: string;
  detail?: string;
}

/** The gateway's limits: 5 reports per caller and room (then one a minute), a detail of at most 512 bytes. */
export const maxReports = 5;
const maxDetailBytes = 512;

/** The page's own alarm: a track in the clear. Anyone with a LiveKit token can cause it, under any identity. */
export const clearMedia = 'clear_media';
/**
 * How many reports of each budget leave one page: one clear_media report (naming the first sender) and the rest of
 * the gateway's allowance for the key client's alarms, so that tracks in the clear from many identities can never
 * use up the reports a halting alarm (clone, fork, bad_signature...) needs.
 */
export const maxClearMediaReports = 1;
export const maxKeyAlarmReports = maxReports - maxClearMediaReports;

/** Retries of a report the gateway could not take for now (503, 429, network error), and their delays. */
export const maxAttempts = 5;
const firstDelayMs = 2_000;
const maxDelayMs = 60_000;

const kindRE = /^[a-z][a-z0-9_]{0,31}$/;
const memberRE = /^[0-9a-f]{64}$/;

/** alarmBody is the JSON body of a report of a: the four fields the gateway accepts, nothing else. */
export function alarmBody(a: ShownAlarm): string {
  const body: { kind: string; epoch: number; member?: string; detail?: string } = {
    // A kind the gateway would refuse is reported as "other" rather than lost.
    kind: kindRE.test(a.kind) ? a.kind : 'other',
    epoch: Number.isSafeInteger(a.epoch) && a.epoch! >= 0 ? a.epoch! : 0,
  };
  if (a.member && memberRE.test(a.member)) body.member = a.member;
  const detail = printable(a.detail ?? '');
  if (detail) body.detail = detail;
  return JSON.stringify(body);
}

// printable replaces what the gateway would not keep in a detail (what Go's unicode.IsPrint refuses: every
// "other" and separator character but the ASCII space) by spaces and cuts it, on a character boundary, to the
// gateway's byte limit. The vectors in gateway/e2eeapi/testdata/alarm-vectors.json hold both sides to it.
function printable(s: string): string {
  const enc = new TextEncoder();
  let out = '';
  let bytes = 0;
  for (const c of s) {
    const ch = /[\p{C}\p{Z}]/u.test(c) ? ' ' : c;
    const n = enc.encode(ch).length;
    if (bytes + n > maxDetailBytes) break;
    out += ch;
    bytes += n;
  }
  return out.trim();
}

export interface ReporterOptions {
  /** headers of every report (a page authenticated by its cookies needs none) */
  headers?: () => Record<string, string>;
  /** the fetch to use; default the global one */
  fetch?: typeof fetch;
  /** waits ms before a retry; default a timer */
  sleep?: (ms: number) => Promise<void>;
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) as milliseconds, or -1.
function retryAfter(v: string | null): number {
  if (!v) return -1;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? -1 : Math.max(0, at - Date.now());
}

// final: an answer after which the report is not sent again. 2xx: recorded. 400: the gateway refuses the body
// itself, and will refuse it again.
const final = (status: number) => (status >= 200 && status < 300) || status === 400;
// temporary: an answer after which the same report may succeed (audit log down, rate limit, no answer).
const temporary = (status: number) => status === 503 || status === 429 || status === -1;

/**
 * AlarmReporter reports each alarm a page shows once: the page calls report on every render, and an alarm
 * shown again (same kind, epoch, member and text) is not sent again once the gateway took it (2xx) or refused its
 * body (400). A report the gateway could not take for now (503, 429, no answer) is retried, at most maxAttempts
 * times with growing delays (the gateway's Retry-After if it gives one), and may be sent again on a later render.
 * Budgets bound what leaves one page: one clear_media report, and maxKeyAlarmReports of the key client's alarms.
 */
export class AlarmReporter {
  /** reports done (2xx or 400) or under way, by body */
  private readonly taken = new Map<string, 'pending' | 'done'>();
  private readonly results = new Map<string, number>();
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private requests = 0;

  constructor(
    private readonly room: string,
    private readonly o: ReporterOptions = {},
  ) {
    this.fetch = o.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  // used is how many reports of a budget are done or under way.
  private used(clear: boolean): number {
    let n = 0;
    for (const body of this.taken.keys()) if ((JSON.parse(body).kind === clearMedia) === clear) n++;
    return n;
  }

  /**
   * report sends a; it resolves to the gateway's last HTTP status, -1 if no request was answered, 0 if not sent
   * (already reported or under way, or over its budget).
   */
  async report(a: ShownAlarm): Promise<number> {
    const body = alarmBody(a);
    if (this.taken.has(body)) return 0;
    const clear = JSON.parse(body).kind === clearMedia;
    if (this.used(clear) >= (clear ? maxClearMediaReports : maxKeyAlarmReports)) return 0;
    this.taken.set(body, 'pending');
    let status = -1;
    for (let attempt = 1; ; attempt++) {
      let wait = -1;
      status = -1;
      try {
        this.requests++;
        const res = await this.fetch(`/.meetguard/api/v1/rooms/${encodeURIComponent(this.room)}/e2ee/alarms`, {
          method: 'POST',
          credentials: 'same-origin',
          body,
          headers: { ...(this.o.headers?.() ?? {}), 'Content-Type': 'application/json' },
        });
        status = res.status;
        wait = retryAfter(res.headers.get('Retry-After'));
      } catch {
        // No answer: the network or the gateway is down; tried again below.
      }
      this.results.set(body, status);
      if (final(status)) {
        this.taken.set(body, 'done');
        return status;
      }
      if (!temporary(status) || attempt >= maxAttempts) break;
      const backoff = Math.min(maxDelayMs, firstDelayMs * 2 ** (attempt - 1));
      await this.sleep(wait >= 0 ? Math.min(maxDelayMs, wait) : backoff);
    }
    // Not taken: the alarm stays on the page, and a later render reports it again.
    this.taken.delete(body);
    return status;
  }

  /** status is the gateway's last answer to the report of a (0: not sent yet, -1: no answer). */
  status(a: ShownAlarm): number {
    return this.results.get(alarmBody(a)) ?? 0;
  }

  /** sent is how many reports the gateway took or refused for good (2xx or 400). */
  get sent(): number {
    let n = 0;
    for (const v of this.taken.values()) if (v === 'done') n++;
    return n;
  }

  /** requests is how many requests this page made, retries included. */
  get requestsMade(): number {
    return this.requests;
  }
}

// The report of an alarm a page shows, to the gateway's POST …/e2ee/alarms (docs/e2ee.md sections 11 and 14):
// the operator sees it (audit record e2ee.client_alarm, metric meetguard_e2ee_alarms_total). Both the meeting
// page and the demo app's room page use it.
//
// Only four fields ever leave the page, each checked here as the gateway parses them (ParseClientAlarm): the
// alarm's kind, the epoch, the credential hash it names (public: every member's roster lists it) and the text the
// page shows, without control characters and cut to fit. Never a status object, a key or a secret.

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

// printable replaces what the gateway refuses in a detail (anything not printable) by spaces and cuts it, on a
// character boundary, to the gateway's byte limit.
function printable(s: string): string {
  const enc = new TextEncoder();
  let out = '';
  let bytes = 0;
  for (const c of s) {
    const ch = /[\p{C}\p{Zl}\p{Zp}]/u.test(c) ? ' ' : c;
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
}

/**
 * AlarmReporter reports each alarm a page shows once: the page calls report on every render, and an alarm
 * shown again (same kind, epoch, member and text) is not sent again. At most maxReports leave one page, the
 * gateway's own allowance per caller and room: a page that keeps finding new alarms cannot flood the log.
 */
export class AlarmReporter {
  private readonly seen = new Set<string>();
  private readonly results = new Map<string, number>();
  private readonly fetch: typeof fetch;

  constructor(
    private readonly room: string,
    private readonly o: ReporterOptions = {},
  ) {
    this.fetch = o.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  }

  /** report sends a once; it resolves to the gateway's HTTP status, -1 if the request failed, 0 if not sent. */
  async report(a: ShownAlarm): Promise<number> {
    const body = alarmBody(a);
    if (this.seen.has(body) || this.seen.size >= maxReports) return 0;
    this.seen.add(body);
    let status = -1;
    try {
      const res = await this.fetch(`/.meetguard/api/v1/rooms/${encodeURIComponent(this.room)}/e2ee/alarms`, {
        method: 'POST',
        credentials: 'same-origin',
        body,
        headers: { ...(this.o.headers?.() ?? {}), 'Content-Type': 'application/json' },
      });
      status = res.status;
    } catch {
      // Not reported; the alarm stays on the page.
    }
    this.results.set(body, status);
    return status;
  }

  /** status is the gateway's answer to the report of a (0: not sent or not answered yet). */
  status(a: ShownAlarm): number {
    return this.results.get(alarmBody(a)) ?? 0;
  }

  /** sent is how many reports this page has sent. */
  get sent(): number {
    return this.seen.size;
  }
}

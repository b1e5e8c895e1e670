// The pages' alarm reports (src/meeting/alarms.ts) against a real HTTP server on loopback that reads them as
// the gateway's POST …/e2ee/alarms does (one JSON object of kind, epoch, member, detail; nothing else) and
// answers 400 to a body the gateway would refuse or have to clean. Its rules are held to the gateway's own by the
// vectors in gateway/e2eeapi/testdata/alarm-vectors.json, which the Go test TestAlarmVectors reads too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { build } from 'esbuild';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'mg-alarms-')), 'alarms.mjs');
await build({ entryPoints: [join(here, '..', 'src', 'meeting', 'alarms.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error' });
const { AlarmReporter, alarmBody, maxReports, maxKeyAlarmReports, maxAttempts } = await import(pathToFileURL(out).href);
const vectors = JSON.parse(readFileSync(join(here, '..', '..', 'gateway', 'e2eeapi', 'testdata', 'alarm-vectors.json'), 'utf8'));

const member = 'ab'.repeat(32);
const allowed = new Set(['kind', 'epoch', 'member', 'detail']);

// verbatim is the gateway's rule for a detail it records as sent: every character one Go's unicode.IsPrint
// accepts (letters, marks, numbers, punctuation, symbols, and U+0020 as the only space). The gateway replaces
// anything else by a space, so a page that sends it records other text than it shows.
const verbatim = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;

// check reads a body as the gateway's ParseClientAlarm does; it returns the reason the page's body is wrong, or ''.
function check(text) {
  let b;
  try {
    b = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'not an object';
  const extra = Object.keys(b).filter((k) => !allowed.has(k));
  if (extra.length) return `unknown members ${extra}`;
  if (typeof b.kind !== 'string' || !/^[a-z][a-z0-9_]{0,31}$/.test(b.kind)) return 'kind';
  if (b.epoch !== undefined && !(Number.isInteger(b.epoch) && b.epoch >= 0)) return 'epoch';
  if (b.member !== undefined && (typeof b.member !== 'string' || !/^[0-9a-f]{64}$/.test(b.member))) return 'member';
  if (b.detail !== undefined) {
    if (typeof b.detail !== 'string') return 'detail';
    if (new TextEncoder().encode(b.detail).length > 512) return 'detail longer than 512 bytes';
    if (!verbatim.test(b.detail)) return `detail not printable: ${JSON.stringify(b.detail)}`;
  }
  return '';
}

// gateway is a loopback server that records every request and answers as check finds the body (204 or 400), or
// with the statuses of answers, one per request, while it lasts; fetch sends the page's same-origin requests (a
// relative URL) to it.
async function gateway(answers = []) {
  const got = [];
  const srv = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const wrong = check(body);
      got.push({ method: req.method, url: req.url, type: req.headers['content-type'], auth: req.headers.authorization, body, wrong });
      const next = answers.shift();
      if (next) {
        res.statusCode = next.status;
        if (next.retryAfter) res.setHeader('Retry-After', next.retryAfter);
      } else res.statusCode = wrong ? 400 : 204;
      res.end();
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return {
    got,
    fetch: (url, init) => fetch(base + url, init),
    close: () => new Promise((r) => srv.close(r)),
  };
}

// sleeps records the delays a reporter asks for, and lets it go on at once (no timing in these tests).
function sleeps() {
  const asked = [];
  return { asked, sleep: async (ms) => void asked.push(ms) };
}

test("the loopback gateway's rules are the gateway's (shared vectors)", () => {
  assert.ok(vectors.bodies.length > 10);
  for (const v of vectors.bodies) {
    // The gateway accepts and keeps as sent exactly what check passes.
    const keptAsSent = v.ok && v.detail === (JSON.parse(v.body).detail ?? '');
    assert.equal(check(v.body) === '', keptAsSent, `${v.name}: ${check(v.body)}`);
  }
});

test('the page builds the body each shown vector names, which the gateway keeps as sent', async () => {
  const gw = await gateway();
  try {
    for (const v of vectors.shown) {
      const body = alarmBody(v.alarm);
      assert.deepEqual(JSON.parse(body), v.body, v.name);
      assert.equal(check(body), '', v.name);
      // Through a reporter of its own (each has its budgets), to the loopback gateway.
      const r = new AlarmReporter('room', { fetch: gw.fetch });
      assert.equal(await r.report(v.alarm), 204, v.name);
    }
  } finally {
    await gw.close();
  }
});

test('a LiveKit identity with a no-break space or an ideographic space still gets its clear_media report through', async () => {
  const gw = await gateway();
  try {
    for (const id of ['tru\u00a0dy', 'tru\u3000dy', 'tru\u202fdy', '\u2028trudy\u0085']) {
      const r = new AlarmReporter('room', { fetch: gw.fetch });
      const st = await r.report({ kind: 'clear_media', epoch: 1, detail: `unencrypted track from LiveKit participant ${id}` });
      assert.equal(st, 204, `${JSON.stringify(id)}: ${gw.got.at(-1).wrong}`);
    }
  } finally {
    await gw.close();
  }
});

test('reports each alarm once, however often the page shows it, with the fields the gateway reads', async () => {
  const gw = await gateway();
  try {
    const r = new AlarmReporter('stand up', { fetch: gw.fetch, headers: () => ({ Authorization: 'Bearer t' }) });
    const a = { kind: 'clone', epoch: 7, member, detail: 'device SHA256:abc appears twice in the roster' };
    // A page renders on every status change: the same alarm comes back each time.
    const statuses = await Promise.all([r.report(a), r.report(a), r.report({ ...a })]);
    assert.deepEqual(statuses.sort(), [0, 0, 204]);
    assert.equal(gw.got.length, 1);
    const [req] = gw.got;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/.meetguard/api/v1/rooms/stand%20up/e2ee/alarms');
    assert.equal(req.type, 'application/json');
    assert.equal(req.auth, 'Bearer t');
    assert.deepEqual(JSON.parse(req.body), { kind: 'clone', epoch: 7, member, detail: a.detail });
    assert.equal(r.status(a), 204);
    // Another alarm is reported too.
    assert.equal(await r.report({ kind: 'clear_media', epoch: 7, detail: 'unencrypted track from LiveKit participant trudy' }), 204);
    assert.equal(gw.got.length, 2);
    assert.equal(r.sent, 2);
  } finally {
    await gw.close();
  }
});

test('sends at most the gateway allowance of reports from one page', async () => {
  const gw = await gateway();
  try {
    const r = new AlarmReporter('room', { fetch: gw.fetch });
    for (let i = 0; i < 3 * maxReports; i++) await r.report({ kind: 'fork', epoch: i, detail: `alarm ${i}` });
    for (let i = 0; i < 3 * maxReports; i++) await r.report({ kind: 'clear_media', epoch: i, detail: `sender ${i}` });
    assert.equal(maxReports, 5, 'the gateway allows 5 reports per caller and room (gateway/e2eeapi/alarm.go)');
    assert.equal(gw.got.length, maxReports);
    assert.equal(r.sent, maxReports);
  } finally {
    await gw.close();
  }
});

test('tracks in the clear from many identities cannot use up the reports a halting alarm needs', async () => {
  const gw = await gateway();
  try {
    const r = new AlarmReporter('room', { fetch: gw.fetch });
    // Anyone with a LiveKit token publishes in the clear under as many identities as they like.
    const first = await r.report({ kind: 'clear_media', epoch: 1, detail: 'unencrypted track from LiveKit participant trudy0' });
    assert.equal(first, 204);
    for (let i = 1; i < 3 * maxReports; i++) {
      assert.equal(await r.report({ kind: 'clear_media', epoch: 1, detail: `unencrypted track from LiveKit participant trudy${i}` }), 0);
    }
    // The key client then halts: each halting alarm is still reported.
    for (const kind of ['clone', 'fork', 'bad_signature']) assert.equal(await r.report({ kind, epoch: 2, member }), 204, kind);
    const clear = gw.got.filter((g) => JSON.parse(g.body).kind === 'clear_media');
    assert.equal(clear.length, 1, 'one clear_media report per page');
    assert.match(JSON.parse(clear[0].body).detail, /trudy0$/, 'naming the first sender');
    assert.deepEqual(gw.got.slice(1).map((g) => JSON.parse(g.body).kind), ['clone', 'fork', 'bad_signature']);
    assert.ok(maxKeyAlarmReports + 1 <= maxReports, 'both budgets fit in the gateway allowance');
  } finally {
    await gw.close();
  }
});

test('the body carries nothing but the alarm, within the gateway limits', async () => {
  // What a page holds beside the alarm, if it ever passed more than the alarm: none of it may travel.
  const secret = '00112233445566778899aabbccddeeff';
  const shown = Object.assign(new Error('e2ee: clone'), {
    kind: 'clone', epoch: 3, member, detail: 'two\nentries\u0000\u202e one key' + ' é'.repeat(400),
    keys: new Map([[member, secret]]), epochSecret: secret, securityCode: '12345 67890', alarm: true,
  });
  const body = JSON.parse(alarmBody(shown));
  assert.deepEqual(Object.keys(body).filter((k) => !allowed.has(k)), []);
  assert.ok(!JSON.stringify(body).includes(secret) && !JSON.stringify(body).includes('12345 67890'));
  assert.ok(!/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/.test(body.detail), JSON.stringify(body.detail));
  assert.ok(new TextEncoder().encode(body.detail).length <= 512, `${new TextEncoder().encode(body.detail).length} bytes`);
  assert.ok(body.detail.startsWith('two entries'));

  // Fields the gateway would refuse are dropped or named as the gateway accepts them, never sent as they came.
  assert.deepEqual(JSON.parse(alarmBody({ kind: 'Bad Kind!', epoch: -1, member: 'not-a-hash' })), { kind: 'other', epoch: 0 });
  assert.deepEqual(JSON.parse(alarmBody({ kind: 'gap', epoch: 2, member: member.toUpperCase(), detail: '  ' })), { kind: 'gap', epoch: 2 });
});

test('a report the gateway never answered is retried with growing delays, then sent again on a later render', async () => {
  const gw = await gateway();
  await gw.close(); // nothing listens any more
  const { asked, sleep } = sleeps();
  const r = new AlarmReporter('room', { fetch: gw.fetch, sleep });
  const a = { kind: 'fork', epoch: 1 };
  assert.equal(await r.report(a), -1);
  assert.equal(r.status(a), -1);
  assert.equal(r.requestsMade, maxAttempts, 'bounded retries');
  assert.equal(asked.length, maxAttempts - 1);
  for (let i = 1; i < asked.length; i++) assert.ok(asked[i] > asked[i - 1] && asked[i] <= 60_000, `${asked}`);
  // Not remembered as reported: the next render tries again (and the gateway is back).
  const back = await gateway();
  try {
    const r2 = new AlarmReporter('room', { fetch: back.fetch, sleep });
    assert.equal(await r2.report(a), 204);
    back.got.length = 0;
    // Once taken, it is not sent again.
    assert.equal(await r2.report(a), 0);
    assert.equal(back.got.length, 0);
  } finally {
    await back.close();
  }
  assert.equal(r.sent, 0);
});

test('a report the gateway could not take for now (503, 429) is sent again, honouring Retry-After', async () => {
  const gw = await gateway([{ status: 503 }, { status: 429, retryAfter: '7' }]);
  try {
    const { asked, sleep } = sleeps();
    const r = new AlarmReporter('room', { fetch: gw.fetch, sleep });
    const a = { kind: 'clone', epoch: 4, member, detail: 'a device with my key joined twice' };
    assert.equal(await r.report(a), 204);
    assert.equal(gw.got.length, 3);
    assert.ok(gw.got.every((g) => g.body === gw.got[0].body));
    assert.equal(asked[1], 7_000, `delays ${asked}`);
    assert.equal(r.status(a), 204);
    assert.equal(r.sent, 1);
    assert.equal(await r.report(a), 0);
    assert.equal(gw.got.length, 3);
  } finally {
    await gw.close();
  }
});

test('a report refused as malformed (400) is not sent again; one refused otherwise is not retried at once', async () => {
  const gw = await gateway([{ status: 400 }, { status: 403 }]);
  try {
    const { asked, sleep } = sleeps();
    const r = new AlarmReporter('room', { fetch: gw.fetch, sleep });
    const a = { kind: 'clone', epoch: 1 };
    assert.equal(await r.report(a), 400);
    assert.equal(await r.report(a), 0);
    const b = { kind: 'fork', epoch: 1 };
    assert.equal(await r.report(b), 403);
    assert.deepEqual(asked, []);
    assert.equal(gw.got.length, 2);
  } finally {
    await gw.close();
  }
});

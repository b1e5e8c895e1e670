// The pages' alarm reports (src/meeting/alarms.ts) against a real HTTP server on loopback that reads them as
// the gateway's POST …/e2ee/alarms does (one JSON object of kind, epoch, member, detail; nothing else).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'mg-alarms-')), 'alarms.mjs');
await build({ entryPoints: [join(here, '..', 'src', 'meeting', 'alarms.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error' });
const { AlarmReporter, alarmBody, maxReports } = await import(pathToFileURL(out).href);

// gateway is a loopback server that records every request and answers 204; fetch sends the page's
// same-origin requests (a relative URL) to it.
async function gateway() {
  const got = [];
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, type: req.headers['content-type'], auth: req.headers.authorization, body });
      res.statusCode = 204;
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

const member = 'ab'.repeat(32);
const allowed = new Set(['kind', 'epoch', 'member', 'detail']);

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
    assert.equal(maxReports, 5, 'the gateway allows 5 reports per caller and room (gateway/e2eeapi/alarm.go)');
    assert.equal(gw.got.length, maxReports);
    assert.equal(r.sent, maxReports);
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

test('a report the gateway never answered is said so, and is not sent again', async () => {
  const gw = await gateway();
  await gw.close(); // nothing listens any more
  const r = new AlarmReporter('room', { fetch: gw.fetch });
  const a = { kind: 'fork', epoch: 1 };
  assert.equal(await r.report(a), -1);
  assert.equal(r.status(a), -1);
  assert.equal(await r.report(a), 0);
});

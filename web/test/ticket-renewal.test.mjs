// An app's room ticket (the Meetguard-Ticket header its headers() set once at join) lasts minutes and a meeting
// longer; the gateway's e2ee endpoints answer a member's request with a renewal of the ticket once half its life
// is gone (docs/api.md "Tickets", docs/e2ee.md section 11). The HTTPTransport must send the renewal in place of
// the ticket the app set, as the Go transport does, or every request of the app is refused 403 not_member once
// its first ticket expires. An HTTP server on 127.0.0.1 answers as the gateway does, here with the renewals the
// test chooses: malformed or oversized ones are ignored, and a ticket the app changes itself is sent as is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { loadE2EE } from '../testlib/build.mjs';

const m = await loadE2EE();

// gateway serves each request with the renewal answer() names (none for ''), recording the tickets it was sent.
async function gateway(t, answer) {
  const got = [];
  const srv = createServer((req, res) => {
    got.push(req.headers['meetguard-ticket'] ?? '');
    const renewal = answer();
    if (renewal) res.setHeader('Meetguard-Ticket', renewal);
    req.resume();
    req.on('end', () => {
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => srv.close(resolve)));
  return { url: `http://127.0.0.1:${srv.address().port}`, got };
}

test('the transport sends the gateway\'s renewal in place of the ticket its headers set', async (t) => {
  let renewal = '';
  let held = 'joined';
  const g = await gateway(t, () => renewal);
  const tr = new m.HTTPTransport({ gateway: g.url, room: 'standup', credentials: 'omit',
    headers: () => ({ Authorization: 'Bearer token', 'Meetguard-Ticket': held }) });
  const step = async (r) => {
    renewal = r;
    await tr.postKeyPackage(new Uint8Array([1]));
  };
  await step('renewed1');
  await step('renewed2'); // a renewal of the renewal
  await step('not a ticket, ignored');
  await step('A'.repeat(1025));
  await step('');
  held = 'joined-again'; // the app changes its ticket itself: sent as is
  await step('');
  assert.deepEqual(g.got, ['joined', 'renewed1', 'renewed2', 'renewed2', 'renewed2', 'joined-again']);
});

test('headers in any case are renewed, and a caller without a ticket header gets none', async (t) => {
  const g = await gateway(t, () => 'renewed');
  const lower = new m.HTTPTransport({ gateway: g.url, room: 'standup', headers: () => ({ 'meetguard-ticket': 'joined' }) });
  await lower.postKeyPackage(new Uint8Array([1]));
  await lower.postKeyPackage(new Uint8Array([1]));
  const page = new m.HTTPTransport({ gateway: g.url, room: 'standup' }); // a page: its ticket is a cookie
  await page.postKeyPackage(new Uint8Array([1]));
  await page.postKeyPackage(new Uint8Array([1]));
  assert.deepEqual(g.got, ['joined', 'renewed', '', '']);
});

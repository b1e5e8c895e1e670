// The meeting page's notice to the host console (src/meeting/broadcast.ts) on the real BroadcastChannel of
// Node (same semantics as the browser's: other channels of the same name receive, the sender does not).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'mg-bc-')), 'broadcast.mjs');
await build({ entryPoints: [join(here, '..', 'src', 'meeting', 'broadcast.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error' });
const { Announcer, channelName } = await import(pathToFileURL(out).href);

// listen collects what a console on the channel receives.
function listen() {
  const got = [];
  const ch = new BroadcastChannel(channelName);
  ch.onmessage = (ev) => got.push(ev.data);
  return { got, ch };
}
const settle = () => new Promise((r) => setTimeout(r, 50));
// until waits for a condition of delivered messages (delivery is asynchronous), without a deadline of its own:
// node --test's timeout ends a test that never sees it.
async function until(cond) {
  while (!cond()) await settle();
}

const st = (o) => ({ epoch: 0, generation: 0, securityCode: '', alarm: null, ...o });

test('posts room, epoch, code and alarms when they change, once per change, and nothing secret', async () => {
  const con = listen();
  const a = new Announcer('standup');
  try {
    assert.equal(a.update(st({})), true);
    assert.equal(a.update(st({})), false, 'unchanged status posted again');
    assert.equal(a.update(st({ epoch: 3, generation: 1, securityCode: '12345 67890' })), true);
    assert.equal(a.update(st({ epoch: 3, generation: 1, securityCode: '12345 67890' })), false);
    // A status carries members, roster and keys in real life: none of it may travel.
    const full = st({ epoch: 3, generation: 1, securityCode: '12345 67890', alarm: { kind: 'impersonation', detail: 'member ab', key: new Uint8Array(32) }, members: [{ kem: 1 }], roster: 'ff' });
    assert.equal(a.update(full), true);
    await until(() => con.got.length === 3);
    assert.deepEqual(con.got, [
      { room: 'standup', epoch: '', code: '', alarms: [], alarm: '' },
      { room: 'standup', epoch: '3.1', code: '12345 67890', alarms: [], alarm: '' },
      { room: 'standup', epoch: '3.1', code: '12345 67890', alarms: ['impersonation'], alarm: 'impersonation' },
    ]);
  } finally {
    a.close();
    con.ch.close();
  }
});

test('a console opened later asks for the last notice; asks for another room are not answered', async () => {
  const a = new Announcer('standup');
  const con = listen();
  try {
    a.update(st({ epoch: 2, generation: 0, securityCode: '11111 22222' }));
    await until(() => con.got.length === 1);
    con.ch.postMessage({ ask: 'other-room' });
    con.ch.postMessage({ ask: 'standup' });
    await until(() => con.got.length === 2);
    await settle();
    assert.deepEqual(con.got, [
      { room: 'standup', epoch: '2.0', code: '11111 22222', alarms: [], alarm: '' },
      { room: 'standup', epoch: '2.0', code: '11111 22222', alarms: [], alarm: '' },
    ]);
  } finally {
    a.close();
    con.ch.close();
  }
});

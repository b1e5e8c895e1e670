// join.mjs runs the TypeScript client under Node against a real gateway, for Go tests
// (gateway/e2eeapi TestGateway_WebClientAndGoClientShareKeys). Configuration comes from the environment:
// MG_GATEWAY, MG_ROOM, MG_TOKEN, MG_TICKET, MG_AUTHORITY (hex), MG_EXPECT_SUB, MG_EXPECT_ISS. It prints one
// JSON line per status change (with a frame it protected under its current key), and answers each stdin
// line "decrypt <hex>" with {"decrypted": <utf-8>} or {"decrypt_error": kind}.
import { createInterface } from 'node:readline';
import { loadE2EE } from './build.mjs';

const m = await loadE2EE();
const env = process.env;
const transport = new m.HTTPTransport({
  gateway: env.MG_GATEWAY,
  room: env.MG_ROOM,
  credentials: 'omit',
  maxWaitMs: 2000,
  headers: () => ({ Authorization: 'Bearer ' + env.MG_TOKEN, 'Meetguard-Ticket': env.MG_TICKET }),
});
const client = new m.Client({
  transport,
  authorityKey: m.fromHex(env.MG_AUTHORITY),
  room: env.MG_ROOM,
  expectIdentity: { issuer: env.MG_EXPECT_ISS ?? '', subject: env.MG_EXPECT_SUB ?? '' },
});
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let last = '';
let ctr = 0n;
client.onStatus((st) => {
  const key = [st.state, st.roster, st.securityCode, st.alarm?.kind].join('|');
  if (key === last) return;
  last = key;
  let frame = '';
  if (st.securityCode) {
    const k = client.encryptionKey(0);
    ctr += 1n;
    frame = m.hex(m.sframeProtect(k, ctr, new TextEncoder().encode('interop'), new TextEncoder().encode(`from node at epoch ${st.epoch}`)));
  }
  out({
    state: st.state, epoch: st.epoch, generation: st.generation, code: st.securityCode, frame,
    members: st.members.map((x) => ({ subject: x.identity.subject, fingerprint: x.fingerprint, self: x.self, kem: x.kem })),
    alarm: st.alarm ? st.alarm.kind : '',
  });
});
const rl = createInterface({ input: process.stdin });
rl.on('close', () => process.exit(0));
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd !== 'decrypt') return;
  try {
    const frame = m.fromHex(arg);
    const { kid } = m.parseSFrameHeader(frame);
    const { key, sender } = client.decryptionKey(kid);
    out({ decrypted: new TextDecoder().decode(m.sframeUnprotect(key, new TextEncoder().encode('interop'), frame)), sender });
  } catch (e) {
    out({ decrypt_error: e.kind ?? String(e) });
  }
});
const ctl = new AbortController();
process.on('SIGTERM', () => process.exit(0));
const reason = await client.run(ctl.signal);
out({ exit: reason ? reason.kind ?? String(reason) : 'aborted', state: client.status().state });
// Keep answering decrypt requests (a removed client must open nothing) until stdin closes.

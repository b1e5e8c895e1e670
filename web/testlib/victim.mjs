// victim.mjs runs the TypeScript client under Node, one command at a time, for the Go evil-gateway tests
// (crypto/e2ee TestWebClient_EvilGateway*): the gateway is the real Authority behind a transport that
// rewrites answers, served over HTTP on 127.0.0.1. Environment: MG_GATEWAY, MG_ROOM, MG_AUTHORITY (hex),
// MG_EXPECT_SUB, MG_EXPECT_ISS. Each stdin line is JSON {cmd, now, arg}; "now" (Unix ms) sets the client's
// clock, so it follows the Go test's fake clock. Each command is answered by one JSON line.
import { createInterface } from 'node:readline';
import { loadE2EE } from './build.mjs';

const m = await loadE2EE();
const env = process.env;
let now = 0;
const client = new m.Client({
  transport: new m.HTTPTransport({ gateway: env.MG_GATEWAY, room: env.MG_ROOM, credentials: 'omit' }),
  authorityKey: m.fromHex(env.MG_AUTHORITY),
  room: env.MG_ROOM,
  expectIdentity: { issuer: env.MG_EXPECT_ISS ?? '', subject: env.MG_EXPECT_SUB ?? '' },
  clock: { now: () => now },
});

function report(err) {
  const st = client.status();
  let encryptErr = '';
  try {
    client.encryptionKey(0);
  } catch (e) {
    encryptErr = e.kind ?? String(e);
  }
  return {
    ok: !err, kind: err ? err.kind ?? String(err) : '', alarm: !!(err && err.alarm), member: err && err.alarm ? err.member : '',
    message: err ? String(err.message) : '', state: st.state, epoch: st.epoch, generation: st.generation, code: st.securityCode,
    unconfirmed: st.unconfirmed, encrypt_error: encryptErr, credential: client.credential() ? m.hex(client.credential().hash) : '',
    device: client.deviceKey() ? m.hex(client.deviceKey()) : '',
  };
}

const queue = [];
let busy = false;
async function handle(line) {
  const c = JSON.parse(line);
  if (c.now) now = c.now;
  let err = null;
  try {
    switch (c.cmd) {
      case 'register':
        await client.register();
        break;
      case 'sync':
        await client.sync();
        break;
      case 'reject':
        err = client.rejectDevice(c.arg);
        break;
      case 'status':
        break;
      default:
        throw new Error('unknown command ' + c.cmd);
    }
  } catch (e) {
    err = e;
  }
  process.stdout.write(JSON.stringify(report(err)) + '\n');
}
const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  queue.push(line);
  if (busy) return;
  busy = true;
  while (queue.length) await handle(queue.shift());
  busy = false;
});
rl.on('close', () => process.exit(0));

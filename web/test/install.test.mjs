// The meeting page's key installs (src/meeting/install.ts) with a key sink that records what LiveKit would be
// given, in the order it takes effect, and a key client whose epoch the test moves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'mg-install-')), 'install.mjs');
await build({ entryPoints: [join(here, '..', 'src', 'meeting', 'install.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error' });
const { KeyInstaller } = await import(pathToFileURL(out).href);

const hexOf = (b) => Buffer.from(b).toString('hex');
const cred = (n) => n.repeat(64); // a credential hash, hex
const me = cred('a');
const bob = cred('b');
const carol = cred('c');
// keyOf is the key of a member in an epoch: 32 bytes naming both, so the test can tell which was installed.
const keyOf = (member, epoch) => new Uint8Array(32).fill(epoch * 16 + member.charCodeAt(0) - 96);

// client is a key client at an epoch with members; the test moves it.
function client(epoch, members) {
  const c = {
    epoch, members, state: 'member',
    mediaKeys: () => (c.state !== 'member' ? null : { epoch: c.epoch, generation: 0, keys: new Map(c.members.map((m) => [m, keyOf(m, c.epoch)])) }),
    status: () => ({ state: c.state }),
    credential: () => ({ hash: Buffer.from(me, 'hex') }),
  };
  return c;
}

// sink records each key when its install takes effect; a key is held back while gate is set, as importing the
// key material can take longer for one install than for the next.
function sink() {
  const s = {
    applied: [], gate: null, calls: 0,
    async setKey(identity, raw, index) {
      s.calls++;
      const key = hexOf(raw); // read now: the installer wipes its copies once done
      if (s.gate) await s.gate;
      s.applied.push({ identity, key, index });
    },
    async dropKey(identity, indexes) {
      for (const i of indexes) s.applied.push({ identity, key: 'random', index: i });
    },
  };
  return s;
}

const sending = (s, local) => s.applied.filter((a) => a.identity === local).at(-1);

test('installs run one at a time: an older install finishing late never puts back the previous sending key', async () => {
  const keys = sink();
  const c = client(1, [me, bob, carol]);
  const remote = new Map([['lk-bob', bob], ['lk-carol', carol]]);
  const inst = new KeyInstaller(keys, () => ({ client: c, local: 'lk-me', remote }), (e) => assert.fail(e));

  // Epoch 1's install is slow to set the page's own key...
  let release;
  keys.gate = new Promise((r) => (release = r));
  const first = inst.install();
  while (keys.calls === 0) await new Promise((r) => setImmediate(r)); // it has read epoch 1 and is setting its key
  // ...while bob is removed: epoch 2, whose install is quick.
  c.epoch = 2;
  c.members = [me, carol];
  const second = inst.install();
  setTimeout(() => {
    keys.gate = null;
    release();
  }, 50);
  await Promise.all([first, second]);

  assert.equal(sending(keys, 'lk-me').key, hexOf(keyOf(me, 2)), "the page's sending key is not the new epoch's (bob still holds the old one)");
  // Each install in turn, and within one the page's own key first.
  assert.deepEqual(keys.applied.map((a) => `${a.identity}@${a.key === 'random' ? 'random' : a.key.slice(0, 2)}`), [
    'lk-me@11', 'lk-bob@12', 'lk-carol@13',
    'lk-me@21', 'lk-bob@random', 'lk-carol@23',
  ]);
});

test('an install that fails is reported and does not stop the next', async () => {
  const keys = sink();
  const c = client(1, [me]);
  const errors = [];
  const inst = new KeyInstaller(keys, () => ({ client: c, local: 'lk-me', remote: new Map() }), (e) => errors.push(e));
  const setKey = keys.setKey;
  keys.setKey = async () => {
    throw new Error('worker gone');
  };
  await inst.install();
  keys.setKey = setKey;
  c.epoch = 2;
  await inst.install();
  assert.equal(errors.length, 1);
  assert.equal(sending(keys, 'lk-me').key, hexOf(keyOf(me, 2)));
});

test('once the client is removed, every key the page ever set is overwritten', async () => {
  const keys = sink();
  const c = client(1, [me, bob]);
  const inst = new KeyInstaller(keys, () => ({ client: c, local: 'lk-me', remote: new Map([['lk-bob', bob]]) }), (e) => assert.fail(e));
  await inst.install();
  c.epoch = 2;
  await inst.install();
  c.state = 'removed';
  keys.applied.length = 0;
  await inst.install();
  const dropped = keys.applied.map((a) => `${a.identity}#${a.index}@${a.key}`).sort();
  assert.deepEqual(dropped, ['lk-bob#16@random', 'lk-bob#32@random', 'lk-me#16@random', 'lk-me#32@random']);
});

// The web client tells its listeners of a new epoch secret as soon as it adopts it (docs/e2ee.md section 14,
// "How fast a kick reaches the media"): a page rotates its media keys before the round's slower work, posting
// the key package that replaces the one the secret was sealed to. A meeting served by an in-memory authority
// (the real wire format, signed with a test authority key, relaying commits as the gateway does) whose
// key-package post the test holds open shows it, for the member that commits the secret and for one that opens it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadE2EE } from '../testlib/build.mjs';

const m = await loadE2EE();
const room = 'standup';
const instance = 'i1';
const hexOf = (b) => Buffer.from(b).toString('hex');

// meeting is a one-epoch meeting of the clients that register before the roster is first asked for.
async function meeting() {
  const authority = await m.importSigningSeed(new Uint8Array(32).fill(7));
  const creds = [];
  const keyPackages = new Map(); // credential hex → newest key package
  const sealed = new Map(); // credential hex → its sealed secret of epoch 1
  let roster = null;
  const head = async () => {
    if (!roster) {
      const members = creds.map((c) => c.hash).sort(Buffer.compare);
      roster = await m.issueRoster(authority, { room, instance, epoch: 1, issuedMs: Date.now(), prev: new Uint8Array(32), locked: false, members });
    }
    return roster;
  };
  // transport is what one person's client reaches; its hold, when set, keeps its key-package posts open.
  const transport = (subject) => {
    const identity = { issuer: 'https://idp.example', subject };
    const t = {
      posting: false,
      hold: null,
      challenge: async () => m.marshalChallenge({ room, instance, identity, nonce: new Uint8Array(32).fill(1), expiresMs: Date.now() + 60_000 }),
      // A registration is version (1) | nonce (32) | device key (32) | key package (u16 length) | proof (64).
      async register(reg) {
        const len = (reg[65] << 8) | reg[66];
        const cred = await m.issueCredential(authority, {
          room, instance, identity, displayName: subject, role: 2, signingKey: reg.slice(33, 65), notAfter: Math.floor(Date.now() / 1000) + 3600,
        });
        creds.push(cred);
        keyPackages.set(hexOf(cred.hash), reg.slice(67, 67 + len));
        return cred.raw;
      },
      roster: async () => m.marshalRosterUpdate({ version: 1, rosters: [(await head()).raw], credentials: creds.map((c) => c.raw) }),
      keyPackages: async () => m.marshalKeyPackages((await head()).members.map((h) => keyPackages.get(hexOf(h)))),
      // As the gateway relays a commit: each recipient's entry with its inclusion proof.
      async postCommit(_epoch, body) {
        const { header, entries } = m.parseCommit(body);
        if (entries.length === 0) return; // a member alone seals to nobody
        const { paths } = m.merkleTree(entries.map((e) => m.leafHash(e.recipient, e.keyPackage, e.sealed)));
        entries.forEach((e, index) =>
          sealed.set(hexOf(e.recipient), m.marshalSealedSecret({ header, index, proof: paths[index], keyPackage: e.keyPackage, sealed: e.sealed })),
        );
      },
      sealedKeys: async () => m.marshalSealedSecrets([]),
      async postKeyPackage() {
        t.posting = true;
        if (t.hold) await t.hold;
      },
      wait: async (after) => after,
    };
    return t;
  };
  return { authority, transport, head, sealedFor: (cred) => sealed.get(hexOf(cred.hash)) };
}

// listen records what a client's listeners hear, and whether its key-package post had started by then.
function listen(c, t) {
  const heard = [];
  c.onStatus((st) => heard.push({ epoch: st.epoch, code: st.securityCode, posting: t.posting }));
  return heard;
}

async function untilPosting(t) {
  while (!t.posting) await new Promise((r) => setImmediate(r));
}

test('the member that commits the secret tells its listeners before posting its next key package', async () => {
  const mt = await meeting();
  let release;
  const t = mt.transport('alice');
  t.hold = new Promise((r) => (release = r));
  const c = new m.Client({ transport: t, authorityKey: mt.authority.publicKey, room });
  const heard = listen(c, t);
  await c.register();
  // Alone, it is the designated committer: it draws epoch 1's secret, commits it, adopts it, and then posts a
  // fresh key package (the one it registered with was used up).
  const round = c.sync();
  await untilPosting(t);
  const keyed = heard.filter((h) => h.code !== '');
  assert.equal(keyed.length, 1, `listeners heard ${JSON.stringify(heard)} before the key package was posted`);
  assert.equal(keyed[0].epoch, 1);
  release();
  assert.equal((await round).securityCode, keyed[0].code);
});

test('a member that opens the secret sealed to it tells its listeners before posting its next key package', async () => {
  const mt = await meeting();
  const ta = mt.transport('alice');
  const tb = mt.transport('bob');
  const a = new m.Client({ transport: ta, authorityKey: mt.authority.publicKey, room });
  const b = new m.Client({ transport: tb, authorityKey: mt.authority.publicKey, room });
  await a.register();
  await b.register();
  // The designated committer of epoch 1 is the member at index 1 of the roster ((epoch + generation) mod size).
  const head = await mt.head();
  const [committer, opener, to] = hexOf(head.members[1]) === hexOf(a.credential().hash) ? [a, b, tb] : [b, a, ta];
  await committer.sync();
  assert.ok(mt.sealedFor(opener.credential()), 'the committer sealed nothing to the other member');
  to.sealedKeys = async () => m.marshalSealedSecrets([mt.sealedFor(opener.credential())]);
  let release;
  to.hold = new Promise((r) => (release = r));
  const heard = listen(opener, to);
  const round = opener.sync();
  await untilPosting(to);
  const keyed = heard.filter((h) => h.code !== '');
  assert.equal(keyed.length, 1, `listeners heard ${JSON.stringify(heard)} before the key package was posted`);
  assert.equal(keyed[0].code, committer.status().securityCode);
  release();
  assert.equal((await round).securityCode, keyed[0].code);
});

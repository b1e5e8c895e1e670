// The Merkle tree refuses an empty leaf list with the client's malformed error, as crypto/e2ee never builds one
// (a committer alone signs a zero root, docs/e2ee.md section 4.6); before, merkleTree([]) and merkleRoot([])
// recursed until the stack overflowed. A server's leaf count of zero reaches only verifyInclusion, which refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadE2EE } from '../testlib/build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const v = JSON.parse(readFileSync(join(here, '..', '..', 'crypto', 'testdata', 'e2ee-vectors.json'), 'utf8'));
const m = await loadE2EE();
const { fromHex: h, hex } = m;

// inWorker runs fn's call in a worker so that a call that never returns ends the test with a clear failure
// instead of hanging the runner; the cap is generous and guards only the hang, it measures nothing.
function inWorker(call) {
  const build = new URL('../testlib/build.mjs', import.meta.url).href;
  const code = `
    const { parentPort } = await import('node:worker_threads');
    const { loadE2EE } = await import(${JSON.stringify(build)});
    const m = await loadE2EE();
    try {
      const out = ${call};
      parentPort.postMessage({ returned: m.hex(out.root ?? out) });
    } catch (e) {
      parentPort.postMessage({ name: e.name, kind: e.kind, message: e.message });
    }`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, type: 'module' });
    const cap = setTimeout(() => {
      w.terminate();
      reject(new Error(`${call} did not return within 30 s`));
    }, 30_000);
    w.once('message', (msg) => {
      clearTimeout(cap);
      w.terminate();
      resolve(msg);
    });
    w.once('error', (e) => {
      clearTimeout(cap);
      reject(e);
    });
  });
}

for (const call of ['m.merkleTree([])', 'm.merkleRoot([])']) {
  test(`${call} throws the malformed refusal`, async () => {
    const got = await inWorker(call);
    assert.deepEqual(got, { name: 'E2EEError', kind: 'malformed', message: 'e2ee: malformed: Merkle tree of no leaves' });
  });
}

test('one leaf is its own root with an empty path, as in crypto/e2ee', () => {
  const leaf = h(v.commit.entries[0].leaf_hash);
  const { root, paths } = m.merkleTree([leaf]);
  assert.equal(hex(root), hex(leaf));
  assert.deepEqual(paths, [[]]);
  assert.equal(hex(m.merkleRoot([leaf])), hex(leaf));
  assert.ok(m.verifyInclusion(leaf, 0, 1, [], root));
});

test('a sealed secret claiming a tree of no leaves is refused, not thrown', () => {
  const c = v.commit;
  const leaves = c.entries.map((e) => h(e.leaf_hash));
  for (const s of c.sealed_secrets) {
    const ss = m.parseSealedSecret(h(s.encoding));
    assert.ok(m.verifyInclusion(leaves[ss.index], ss.index, leaves.length, ss.proof, h(c.root)));
    assert.equal(m.verifyInclusion(leaves[ss.index], ss.index, 0, ss.proof, h(c.root)), false);
    assert.equal(m.verifyInclusion(leaves[ss.index], 0, 0, [], h(c.root)), false);
    assert.equal(m.verifyInclusion(leaves[ss.index], 0, 0, [], new Uint8Array(32)), false);
  }
});

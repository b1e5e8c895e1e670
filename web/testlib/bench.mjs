// bench.mjs measures the web client's cost per sealed epoch secret (X-Wing HPKE seal) and per open, for
// docs/performance.md: node testlib/bench.mjs [iterations]
import { loadE2EE } from './build.mjs';

const m = await loadE2EE();
const n = Number(process.argv[2] ?? 50);
const kp = m.generateKeyPair(m.KEMXWing);
const info = new Uint8Array(200);
const secret = new Uint8Array(32);
let sealed;
let t = performance.now();
for (let i = 0; i < n; i++) sealed = m.seal(m.KEMXWing, kp.publicKey, info, secret);
const seal = (performance.now() - t) / n;
t = performance.now();
for (let i = 0; i < n; i++) m.open(kp, info, sealed);
const open = (performance.now() - t) / n;
t = performance.now();
for (let i = 0; i < n; i++) m.generateKeyPair(m.KEMXWing);
const keygen = (performance.now() - t) / n;
console.log(JSON.stringify({ iterations: n, seal_ms: +seal.toFixed(3), open_ms: +open.toFixed(3), keygen_ms: +keygen.toFixed(3) }));

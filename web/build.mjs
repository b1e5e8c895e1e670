// Builds the browser bundles into the gateway's web layer (gateway/web/static), which embeds them: the meeting
// page's script and the demo app's room page script (classic scripts, inlined into their pages and admitted by
// their CSP hashes) and LiveKit's E2EE worker (a module the page starts from a blob: URL). `node build.mjs --outdir DIR` writes them elsewhere (the
// Go test that checks the committed bundles equal a fresh build).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--outdir');
const outdir = i > 0 ? process.argv[i + 1] : join(here, '..', 'gateway', 'web', 'static');

const common = { bundle: true, minify: true, target: 'es2022', legalComments: 'none', logLevel: 'error', charset: 'utf8' };
await build({ ...common, format: 'iife', entryPoints: [join(here, 'src', 'meeting', 'main.ts')], outfile: join(outdir, 'meeting.js') });
await build({ ...common, format: 'iife', entryPoints: [join(here, 'src', 'demoapp', 'main.ts')], outfile: join(outdir, 'demoapp.js') });
await build({ ...common, format: 'esm', entryPoints: [join(here, 'node_modules', 'livekit-client', 'dist', 'livekit-client.e2ee.worker.mjs')], outfile: join(outdir, 'e2ee-worker.js') });

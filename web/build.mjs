// Builds the browser bundles into the Go package that embeds them (gateway/meetingpage/static): the meeting
// page's script and LiveKit's E2EE worker. `node build.mjs --outdir DIR` writes them elsewhere (the Go test
// that checks the committed bundles equal a fresh build).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--outdir');
const outdir = i > 0 ? process.argv[i + 1] : join(here, '..', 'gateway', 'meetingpage', 'static');

const common = { bundle: true, format: 'esm', minify: true, target: 'es2022', legalComments: 'none', logLevel: 'error', charset: 'utf8' };
await build({ ...common, entryPoints: [join(here, 'src', 'meeting', 'main.ts')], outfile: join(outdir, 'meeting.js') });
await build({ ...common, entryPoints: [join(here, 'node_modules', 'livekit-client', 'dist', 'livekit-client.e2ee.worker.mjs')], outfile: join(outdir, 'e2ee-worker.js') });

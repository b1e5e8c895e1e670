// Bundles src/e2ee for the Node tests (esbuild, one ES module in a temp dir) and imports it.
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export async function loadE2EE() {
  const out = join(mkdtempSync(join(tmpdir(), 'meetguard-e2ee-')), 'e2ee.mjs');
  await build({ entryPoints: [join(here, '..', 'src', 'e2ee', 'index.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error' });
  return import(pathToFileURL(out).href);
}

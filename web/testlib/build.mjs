// Bundles src/e2ee for the Node tests and drivers (esbuild, one ES module) and imports it. The bundle is
// cached in the temp dir under the hash of the sources, so the many short-lived Node processes of the Go
// tests build it once.
import { build, version } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'e2ee');

export async function loadE2EE() {
  const h = createHash('sha256').update(version);
  for (const f of readdirSync(src).sort()) h.update(f).update(readFileSync(join(src, f)));
  const out = join(tmpdir(), `meetguard-e2ee-${h.digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp.mjs`;
    await build({ entryPoints: [join(src, 'index.ts')], bundle: true, format: 'esm', platform: 'neutral', outfile: tmp, logLevel: 'error' });
    renameSync(tmp, out);
  }
  return import(pathToFileURL(out).href);
}

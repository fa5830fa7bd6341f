// Compiles the console's TypeScript modules for Node with esbuild, so tests
// exercise the very sources the browser bundle is made of.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const CONSOLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Imports console/src/<entry> (a .ts file) compiled to an ES module. */
export async function importSource(entry) {
  const dir = mkdtempSync(join(tmpdir(), 'console-src-'));
  const outfile = join(dir, entry.replace(/\.tsx?$/, '.mjs'));
  try {
    await esbuild.build({
      absWorkingDir: CONSOLE_DIR,
      entryPoints: [join('src', entry)],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'warning',
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

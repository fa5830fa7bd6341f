// Builds the console into internal/console/dist: index.html, app.js and
// app.css, minified, with fixed names and no timestamps, so the same sources
// and lockfile always give the same bytes (CI rebuilds and compares with
// what is committed). index.html names each file with ?v=<first 12 hex
// digits of its SHA-256>, which the Go handler recognises to let browsers
// cache that exact file for good.
//
//   node build.mjs              the committed build
//   node build.mjs --sourcemap  also app.js.map (not committed, not served)
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'internal', 'console', 'dist');
const sourcemap = process.argv.includes('--sourcemap');

const common = {
  bundle: true,
  minify: true,
  write: false,
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: here,
};

const js = await esbuild.build({
  ...common,
  entryPoints: ['src/main.tsx'],
  outfile: 'app.js',
  format: 'iife',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: sourcemap ? 'linked' : false,
  define: { 'process.env.NODE_ENV': '"production"' },
});
const css = await esbuild.build({
  ...common,
  entryPoints: ['src/app.css'],
  outfile: 'app.css',
  target: ['chrome100', 'firefox100', 'safari15'],
});

const files = new Map();
for (const f of [...js.outputFiles, ...css.outputFiles]) {
  files.set(f.path.slice(f.path.lastIndexOf('/') + 1), Buffer.from(f.contents));
}
const version = (name) => createHash('sha256').update(files.get(name)).digest('hex').slice(0, 12);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%APP_JS_VERSION%', version('app.js'))
  .replace('%APP_CSS_VERSION%', version('app.css'));
files.set('index.html', Buffer.from(html));

mkdirSync(out, { recursive: true });
for (const name of readdirSync(out)) {
  if (!name.startsWith('.') && !files.has(name)) rmSync(join(out, name), { recursive: true });
}
for (const [name, data] of files) writeFileSync(join(out, name), data);
for (const [name, data] of [...files].sort()) console.log(`${name.padEnd(12)} ${String(data.length).padStart(7)} bytes`);

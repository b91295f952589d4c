// Builds the portal (web/src, TypeScript + Preact) into web/dist: one ES module bundle and its styles.
// Runs on `npm install` / `npm ci` (the "prepare" script), so users run no build step of their own;
// the browser tests run it too, so they always test the current source.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'web', 'dist');

export async function buildWeb() {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(root, 'web', 'src', 'main.tsx')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'web', 'styles.css'), join(out, 'app.css'));
  copyFileSync(createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css'), join(out, 'uplot.css'));
  copyFileSync(join(root, 'web', 'index.html'), join(out, 'index.html'));
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWeb();
}

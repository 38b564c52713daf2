#!/usr/bin/env node
// Bundles the dashboard (ui/) into dist/ui: one script (Preact + htm and our
// code, minified), its page and its style. Run by `npm run build`; the API
// serves dist/ui at /ui (lib/api/ui-routes.ts). Nothing is fetched at run time.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'ui');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [path.join(root, 'ui', 'src', 'main.ts')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
await copyFile(path.join(root, 'ui', 'index.html'), path.join(out, 'index.html'));
await copyFile(path.join(root, 'ui', 'app.css'), path.join(out, 'app.css'));

#!/usr/bin/env node
// Writes docs/errors.md from the error registry (lib/errors.ts, built into dist/).
// Run through `npm run docs:errors`; test/unit/api-errors-doc.test.ts fails when it is stale.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { renderErrorDocs } from '../dist/lib/errors.js';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/errors.md');
await writeFile(out, renderErrorDocs());
console.log(`wrote ${out}`);

/**
 * Every error code is documented: docs/errors.md is generated from the
 * registry, and this fails when a code was added or changed without
 * regenerating it (npm run docs:errors), or when a code lacks a summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, VikingError, renderErrorDocs } from '../../lib/errors.js';
const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/errors.md');
test('docs/errors.md lists every error code with its HTTP status and summary', async () => {
    const doc = await readFile(DOC, 'utf8');
    for (const [code, def] of Object.entries(ERROR_CODES)) {
        const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
        assert.ok(row, `${code} is missing from docs/errors.md: run npm run docs:errors`);
        assert.match(row, new RegExp(`^\\| \`${code}\` \\| ${def.status} \\| .{20,}`), `${code}'s row is stale`);
    }
    assert.equal(doc, renderErrorDocs(), 'docs/errors.md is stale: run npm run docs:errors');
});
test('every code is well formed, has a real HTTP error status and a sentence of summary', () => {
    for (const [code, def] of Object.entries(ERROR_CODES)) {
        assert.match(code, /^VIKING_E_[A-Z_]+$/);
        assert.ok(def.status >= 400 && def.status < 600, `${code}: ${def.status}`);
        assert.ok(def.summary.length >= 20 && def.summary.endsWith('.'), `${code}: summary must be a sentence`);
        const e = new VikingError(code, 'x');
        assert.deepEqual(e.toJSON(), { statusCode: def.status, code, message: 'x' });
    }
});
//# sourceMappingURL=api-errors-doc.test.js.map
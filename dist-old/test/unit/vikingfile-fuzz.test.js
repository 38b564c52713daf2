/**
 * parseVikingfile is fed user uploads: whatever the bytes, it returns a
 * Vikingfile or throws a VikingfileError whose problems are well formed,
 * never a TypeError, a stack overflow or a raw js-yaml exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { VikingfileError, parseVikingfile } from '../../lib/vikingfile/index.js';
const KINDS = new Set([
    'syntax', 'unknown-key', 'wrong-type', 'missing-key', 'bad-scale', 'bad-domain', 'bad-name',
    'bad-image-ref', 'build-cycle', 'bad-port', 'bad-path', 'bad-env', 'bad-value',
]);
/** Parses, and checks that anything thrown is a well-formed VikingfileError. */
function parsesOrRejectsCleanly(text) {
    try {
        parseVikingfile(text);
    }
    catch (e) {
        assert.ok(e instanceof VikingfileError, `threw ${e instanceof Error ? e.stack : String(e)}`);
        assert.ok(e.problems.length > 0);
        const lines = text.split(/\r\n|\n|\r/).length;
        for (const p of e.problems) {
            assert.ok(KINDS.has(p.kind), p.kind);
            assert.ok(Number.isInteger(p.line) && p.line >= 1 && p.line <= lines + 1, `line ${p.line} of ${lines}`);
            assert.ok(Number.isInteger(p.column) && p.column >= 1);
            assert.ok(p.message.length > 0 && !/[\n\r]/.test(p.message), p.message);
        }
    }
}
const RUNS = { numRuns: 300 };
test('random strings never throw anything but VikingfileError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), parsesOrRejectsCleanly), RUNS);
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 100 }), parsesOrRejectsCleanly), RUNS);
});
/** Strings made of YAML punctuation, so the parser and the tree builder see odd but parseable shapes. */
const yamlish = fc
    .array(fc.constantFrom('viking:', 'deploy:', 'build:', 'name: x', 'web:', 'image:', ' viking:x/y', '- ', ': ', '\n', '\n  ', '\n    ', '&a ', '*a', '<<: ', '|\n', '>-\n', '{', '}', '[', ']', ', ', '"', "'", '!!int ', '!!str ', '!x ', '? ', '---\n', '#c', '80', '-1', '1.5', 'true', '~', 'FROM viking:x/a', 'FROM ', '\t', '%YAML 1.2\n', 'domains:', 'a.b', '!!constructor ', '__proto__: ', 'constructor: ', 'env:', 'toString'), { maxLength: 40 })
    .map((parts) => parts.join(''));
test('random YAML-like token soups never throw anything but VikingfileError', () => {
    fc.assert(fc.property(yamlish, parsesOrRejectsCleanly), { numRuns: 1000 });
});
test('random JSON values dumped to YAML never throw anything but VikingfileError', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => parsesOrRejectsCleanly(dump(v))), RUNS);
});
const KEYS = [
    '__proto__', 'constructor', 'type', 'image', 'expose', 'volume', 'run', 'cwd', 'env', 'scale', 'domains', 'service', 'health',
    'tags', 'prefer', 'memory', 'cpu', 'document_root', 'junk',
];
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('website', 'container', 'viking:demo/src', 'viking:demo', '/data', './www', '../x', '256m', 'a.example.com', '*.x.io'));
/** Vikingfile-shaped objects with random values, to reach the field checks. */
const vikingfileLike = fc.record({
    viking: fc.oneof(fc.record({ name: fc.oneof(fc.constant('demo'), anyValue), comment: anyValue }, { requiredKeys: [] }), anyValue),
    build: fc.oneof(fc.dictionary(fc.constantFrom('src', 'app', 'Bad_Name'), fc.oneof(anyValue, fc.constantFrom('FROM viking:demo/src\n', 'FROM viking:demo/app AS x\nFROM x\n'))), anyValue),
    deploy: fc.oneof(fc.dictionary(fc.constantFrom('web', 'api', 'My_Web'), fc.dictionary(fc.constantFrom(...KEYS), anyValue)), anyValue),
}, { requiredKeys: [] });
test('random Vikingfile-shaped objects never throw anything but VikingfileError', () => {
    fc.assert(fc.property(vikingfileLike, (v) => parsesOrRejectsCleanly(dump(v))), { numRuns: 1000 });
});
//# sourceMappingURL=vikingfile-fuzz.test.js.map
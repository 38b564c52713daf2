/**
 * The pure parts of static website serving: which request targets are
 * refused before the disk is touched, the containment check, ETag matching,
 * and content types.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequestPath, etagMatches, isInside } from '../../lib/router/static-site.js';
import { contentType } from '../../lib/router/mime.js';
describe('checkRequestPath', () => {
    const ok = [
        ['/', [], ''],
        ['/index.html', ['index.html'], ''],
        ['/a/b/c.css?v=3', ['a', 'b', 'c.css'], '?v=3'],
        ['/a//b/./c', ['a', 'b', 'c'], ''],
        ['/caf%C3%A9.txt', ['café.txt'], ''],
        ['/with%20space.html', ['with space.html'], ''],
        ['//etc/passwd', ['etc', 'passwd'], ''],
        ['/%2fetc%2fpasswd', ['etc', 'passwd'], ''],
        ['/%252e%252e/x', ['%2e%2e', 'x'], ''],
        ['/.well-known/security.txt', ['.well-known', 'security.txt'], ''],
        ['http://example.com/docs/x.html?q', ['docs', 'x.html'], '?q'],
        ['http://example.com', [], ''],
        ['https://example.com?x', [], '?x'],
    ];
    for (const [target, segments, query] of ok) {
        test(`${target} -> ${segments.join('/') || '(root)'}`, () => {
            const r = checkRequestPath(target);
            assert.ok(r.ok, JSON.stringify(r));
            assert.deepEqual(r.segments, segments);
            assert.equal(r.query, query);
        });
    }
    const refused = [
        ['/../etc/passwd', 400, /climbs out/],
        ['/a/../../b', 400, /climbs out/],
        ['/a/..', 400, /climbs out/],
        ['/%2e%2e/etc/passwd', 400, /climbs out/],
        ['/%2E%2E%2Fetc%2Fpasswd', 400, /climbs out/],
        ['/..%2fetc%2fpasswd', 400, /climbs out/],
        ['/a/%2e%2e%2f%2e%2e%2fetc', 400, /climbs out/],
        ['/x%00.html', 400, /NUL/],
        ['/%E0%A4%A', 400, /malformed/],
        ['/.env', 404, /hidden/],
        ['/a/.git/config', 404, /hidden/],
        ['/a/.well-known/x', 404, /hidden/],
        ['/a/...', 404, /hidden/],
        ['*', 400, /not a path/],
        ['etc/passwd', 400, /not a path/],
        ['http://example.com/../../etc/passwd', 400, /climbs out/],
        ['http://example.com/%2e%2e/etc/passwd', 400, /climbs out/],
    ];
    for (const [target, status, reason] of refused) {
        test(`${target} is refused with ${status}`, () => {
            const r = checkRequestPath(target);
            assert.equal(r.ok, false);
            if (!r.ok) {
                assert.equal(r.status, status);
                assert.match(r.reason, reason);
            }
        });
    }
});
describe('isInside', () => {
    const cases = [
        ['/srv/www', '/srv/www', true],
        ['/srv/www/a', '/srv/www', true],
        ['/srv/www/a/b', '/srv/www/', true],
        ['/srv/www2', '/srv/www', false],
        ['/srv', '/srv/www', false],
        ['/etc/passwd', '/srv/www', false],
    ];
    for (const [child, root, expected] of cases)
        test(`${child} in ${root}: ${expected}`, () => assert.equal(isInside(child, root), expected));
});
describe('etagMatches', () => {
    const etag = '"abc"';
    const cases = [
        [undefined, false],
        ['"abc"', true],
        ['W/"abc"', true],
        ['"x", "abc"', true],
        ['*', true],
        ['"abd"', false],
        ['abc', false],
    ];
    for (const [header, expected] of cases)
        test(`${header} -> ${expected}`, () => assert.equal(etagMatches(header, etag), expected));
});
describe('contentType', () => {
    const cases = [
        ['/a/index.html', 'text/html; charset=utf-8'],
        ['style.CSS', 'text/css; charset=utf-8'],
        ['app.js', 'text/javascript; charset=utf-8'],
        ['data.json', 'application/json; charset=utf-8'],
        ['logo.svg', 'image/svg+xml'],
        ['photo.jpeg', 'image/jpeg'],
        ['font.woff2', 'font/woff2'],
        ['Makefile', 'application/octet-stream'],
        ['archive.unknownext', 'application/octet-stream'],
    ];
    for (const [file, type] of cases)
        test(`${file} -> ${type}`, () => assert.equal(contentType(file), type));
});
//# sourceMappingURL=website-paths.test.js.map
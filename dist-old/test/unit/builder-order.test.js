/**
 * Build order of a stack's images (FROM viking:<stack>/<image>), FROM line
 * rewriting, and the CLI's table formatting.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildOrder, parentsOf, resolveFromLines } from '../../lib/builder/order.js';
import { formatTable } from '../../lib/cli/output.js';
import { VikingError } from '../../lib/errors.js';
function img(name, dockerfile) {
    return { name, dockerfile, from: { kind: 'external', ref: 'unused' } };
}
const names = (xs) => xs.map((i) => i.name);
describe('buildOrder', () => {
    test('a 3-level chain given in reverse order is built parent first', () => {
        const images = [
            img('app', 'FROM viking:shop/deps\nCOPY . /app\n'),
            img('deps', 'FROM viking:shop/base\nRUN npm ci\n'),
            img('base', 'FROM debian:bookworm\n'),
        ];
        assert.deepEqual(names(buildOrder(images, 'shop')), ['base', 'deps', 'app']);
    });
    test('independent images keep file order', () => {
        const images = [img('c', 'FROM alpine\n'), img('a', 'FROM busybox\n'), img('b', 'FROM debian\n')];
        assert.deepEqual(names(buildOrder(images, 'shop')), ['c', 'a', 'b']);
    });
    test('a diamond builds each image once, after all its parents', () => {
        const images = [
            img('top', 'FROM viking:shop/left AS l\nFROM viking:shop/right\nCOPY --from=l / /\n'),
            img('left', 'FROM viking:shop/root\n'),
            img('right', 'FROM viking:shop/root\n'),
            img('root', 'FROM alpine\n'),
        ];
        assert.deepEqual(names(buildOrder(images, 'shop')), ['root', 'left', 'right', 'top']);
    });
    test('parents of another stack, or missing ones, do not reorder', () => {
        const images = [img('a', 'FROM viking:other/b\n'), img('b', 'FROM viking:shop/nope\n')];
        assert.deepEqual(names(buildOrder(images, 'shop')), ['a', 'b']);
    });
    const cycles = [
        ['two images', [img('a', 'FROM viking:shop/b\n'), img('b', 'FROM viking:shop/a\n')]],
        ['three images', [img('a', 'FROM viking:shop/c\n'), img('b', 'FROM viking:shop/a\n'), img('c', 'FROM viking:shop/b\n')]],
        ['self', [img('a', 'FROM viking:shop/a\n')]],
    ];
    for (const [name, images] of cycles) {
        test(`cycle (${name}) throws VikingError`, () => {
            assert.throws(() => buildOrder(images, 'shop'), (err) => err instanceof VikingError && err.code === 'VIKING_E_VIKINGFILE_INVALID' && /cycle/.test(err.message));
        });
    }
});
describe('parentsOf', () => {
    const cases = [
        ['FROM viking:shop/base\n', ['base']],
        ['FROM viking:other/base\n', []],
        ['FROM viking:other/x AS a\nFROM viking:shop/y\nFROM node:20\n', ['y']],
        ['FROM --platform=linux/amd64 viking:shop/base AS b\n', ['base']],
        ['  from viking:shop/lower\n', ['lower']],
        ['RUN echo FROM viking:shop/base\n', []],
        ['# FROM viking:shop/base\nFROM alpine\n', []],
        ['FROM alpine\n', []],
    ];
    for (const [dockerfile, expected] of cases) {
        test(JSON.stringify(dockerfile), () => assert.deepEqual(parentsOf(img('x', dockerfile), 'shop'), expected));
    }
});
describe('resolveFromLines', () => {
    const resolve = (stack, image) => `registry:5000/${stack}/${image}:t7`;
    const cases = [
        ['plain FROM', 'FROM viking:s/img\n', 'FROM registry:5000/s/img:t7\n'],
        ['platform flag and stage name', 'FROM --platform=x viking:s/img AS b\n', 'FROM --platform=x registry:5000/s/img:t7 AS b\n'],
        ['other FROM lines untouched', 'FROM node:20 AS build\nFROM docker.io/viking/s:1\n', 'FROM node:20 AS build\nFROM docker.io/viking/s:1\n'],
        ['non-FROM lines untouched', 'RUN echo viking:s/img\nLABEL x="FROM viking:s/img"\n', 'RUN echo viking:s/img\nLABEL x="FROM viking:s/img"\n'],
        [
            'multi-stage: every viking FROM, other lines kept',
            'FROM viking:s/base AS a\nRUN make\nFROM viking:t/tools\nCOPY --from=a /x /x\n',
            'FROM registry:5000/s/base:t7 AS a\nRUN make\nFROM registry:5000/t/tools:t7\nCOPY --from=a /x /x\n',
        ],
    ];
    for (const [name, input, expected] of cases)
        test(name, () => assert.equal(resolveFromLines(input, resolve), expected));
    test('resolver receives stack and image; repeated calls are independent', () => {
        const seen = [];
        const rec = (s, i) => (seen.push(`${s}/${i}`), 'x');
        resolveFromLines('FROM viking:a/b\n', rec);
        resolveFromLines('FROM viking:c/d\n', rec);
        assert.deepEqual(seen, ['a/b', 'c/d']);
    });
});
describe('formatTable', () => {
    test('columns padded to the widest cell, two spaces apart, last column unpadded', () => {
        const out = formatTable(['NAME', 'STATE', 'HOST'], [
            ['web-1', 'running', 'h1'],
            ['database-1', 'starting', 'host-long'],
        ]);
        assert.equal(out, 'NAME        STATE     HOST\n' +
            'web-1       running   h1\n' +
            'database-1  starting  host-long');
    });
    test('null, undefined and empty cells print as -; numbers as text', () => {
        const out = formatTable(['A', 'B', 'C'], [[null, 12, undefined], ['', 'x', 'y']]);
        assert.equal(out, 'A  B   C\n-  12  -\n-  x   y');
    });
    test('no rows: just the header, without trailing spaces', () => {
        assert.equal(formatTable(['STACK', 'TAG'], []), 'STACK  TAG');
    });
    test('no line ends with whitespace', () => {
        const out = formatTable(['A', 'B'], [['x', null], ['longer', '']]);
        for (const line of out.split('\n'))
            assert.equal(line, line.trimEnd());
    });
});
//# sourceMappingURL=builder-order.test.js.map
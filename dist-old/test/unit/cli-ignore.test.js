/**
 * `.vikingignore` matching: compileIgnore on tables of patterns and paths.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compileIgnore, loadIgnore } from '../../lib/cli/ignore.js';
/** [patterns, path, ignored?] */
const cases = [
    // always ignored, at any depth, with or without a .vikingignore
    [[], '.git', true],
    [[], '.git/config', true],
    [[], 'sub/.git/HEAD', true],
    [[], 'node_modules', true],
    [[], 'node_modules/x/index.js', true],
    [[], 'packages/a/node_modules/b/c.js', true],
    [[], '.gitignore', false],
    [[], '.github/workflows/ci.yml', false],
    [[], 'my_node_modules/x', false],
    [[], 'src/index.ts', false],
    // *.log: any depth, one segment
    [['*.log'], 'debug.log', true],
    [['*.log'], 'logs/app/today.log', true],
    [['*.log'], 'debug.log.txt', false],
    [['*.log'], 'catalog', false],
    [['*.log'], 'log', false],
    // /build anchored to the root
    [['/build'], 'build', true],
    [['/build'], 'build/out.js', true],
    [['/build'], 'src/build', false],
    [['/build'], 'src/build/out.js', false],
    [['/build'], 'builder.ts', false],
    // dist/ : the folder anywhere, and what is inside
    [['dist/'], 'dist', true],
    [['dist/'], 'dist/app.js', true],
    [['dist/'], 'pkg/dist/app.js', true],
    [['dist/'], 'distance.ts', false],
    [['dist/'], 'src/dist.ts', false],
    // docs/**/*.md : anchored (has a slash), any depth below docs
    [['docs/**/*.md'], 'docs/a.md', true],
    [['docs/**/*.md'], 'docs/guide/b.md', true],
    [['docs/**/*.md'], 'docs/guide/deep/c.md', true],
    [['docs/**/*.md'], 'docs/a.mdx', false],
    [['docs/**/*.md'], 'docs/img/logo.png', false],
    [['docs/**/*.md'], 'README.md', false],
    [['docs/**/*.md'], 'other/docs/a.md', false],
    // ? is one character within a segment
    [['file?.txt'], 'file1.txt', true],
    [['file?.txt'], 'file12.txt', false],
    [['file?.txt'], 'file/.txt', false],
    // regex metacharacters are literal
    [['a+b.(c)'], 'a+b.(c)', true],
    [['a+b.(c)'], 'aab.(c)', false],
    [['*.log'], 'xlog', false],
    // comments, blank lines and whitespace
    [['# secret', '', '   ', '  tmp  '], 'tmp/x', true],
    [['# secret'], '# secret', false],
    [['# secret'], 'secret', false],
    [['\t'], 'anything', false],
];
describe('compileIgnore', () => {
    for (const [patterns, p, ignored] of cases) {
        test(`${JSON.stringify(patterns)}: ${p} -> ${ignored ? 'ignored' : 'kept'}`, () => {
            assert.equal(compileIgnore(patterns)(p), ignored);
        });
    }
    test('several patterns combine; unrelated paths are kept', () => {
        const ignored = compileIgnore(['*.log', '/build', 'dist/', 'docs/**/*.md', '# comment']);
        const paths = ['a.log', 'build/x', 'dist/y', 'docs/z.md', 'src/main.ts', 'Vikingfile', 'src/build/keep.ts', 'README.md'];
        assert.deepEqual(paths.filter(ignored), ['a.log', 'build/x', 'dist/y', 'docs/z.md']);
    });
});
describe('loadIgnore', () => {
    test('reads .vikingignore from the directory', async () => {
        const dir = await mkdtemp(path.join(tmpdir(), 'viking-ignore-'));
        try {
            await writeFile(path.join(dir, '.vikingignore'), '# caches\n*.tmp\n\n/secrets\n');
            const ignored = await loadIgnore(dir);
            assert.equal(ignored('a/b.tmp'), true);
            assert.equal(ignored('secrets/key'), true);
            assert.equal(ignored('src/secrets'), false);
            assert.equal(ignored('node_modules/x'), true);
        }
        finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
    test('no .vikingignore: only the always-ignored folders', async () => {
        const dir = await mkdtemp(path.join(tmpdir(), 'viking-ignore-'));
        try {
            const ignored = await loadIgnore(dir);
            assert.equal(ignored('.git/HEAD'), true);
            assert.equal(ignored('a.log'), false);
        }
        finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});
describe('upload progress', async () => {
    const { progressBar, formatBytes } = await import('../../lib/cli/upload-progress.js');
    test('bar, percentage and sizes', () => {
        assert.equal(progressBar(0, 2048, 10), '[..........]   0%  0 B / 2.0 KiB');
        assert.equal(progressBar(1024, 2048, 10), '[#####.....]  50%  1.0 KiB / 2.0 KiB');
        assert.equal(progressBar(5 * 1024 * 1024, 5 * 1024 * 1024, 10), '[##########] 100%  5.0 MiB / 5.0 MiB');
        assert.equal(progressBar(0, 0, 4), '[####] 100%  0 B / 0 B');
    });
    test('formatBytes', () => {
        assert.deepEqual([1, 1536, 3 * 1024 * 1024].map(formatBytes), ['1 B', '1.5 KiB', '3.0 MiB']);
    });
});
//# sourceMappingURL=cli-ignore.test.js.map
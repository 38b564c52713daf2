/**
 * Unpacking a pushed source: the path and link checks as tables, and
 * extractUpload on real tarballs built here, good and malicious. Every
 * malicious archive must be rejected with the right code AND leave nothing
 * outside the target directory.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { VikingError } from '../../lib/errors.js';
import { checkLinkTarget, extractUpload, safeEntryPath } from '../../lib/upload/extract.js';
async function tarball(entries) {
    const p = pack();
    const chunks = [];
    const done = new Promise((resolve, reject) => {
        p.on('data', (c) => chunks.push(c));
        p.on('end', () => resolve());
        p.on('error', reject);
    });
    for (const { content, ...header } of entries) {
        if (content !== undefined)
            p.entry(header, content);
        else
            p.entry(header);
    }
    p.finalize();
    await done;
    return Buffer.concat(chunks);
}
const isCode = (code) => (err) => {
    assert.ok(err instanceof VikingError, `expected a VikingError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
};
describe('safeEntryPath', () => {
    const ok = [
        ['a.txt', 'a.txt'],
        ['./a/b.txt', 'a/b.txt'],
        ['a//b/./c', 'a/b/c'],
        ['dir/', 'dir'],
        ['./', ''],
        ['a\\b.txt', 'a/b.txt'],
        ['..foo/bar', '..foo/bar'],
    ];
    for (const [input, out] of ok)
        test(`${JSON.stringify(input)} -> ${JSON.stringify(out)}`, () => assert.equal(safeEntryPath(input), out));
    const rejected = ['../evil', '/etc/evil', 'a/../../evil', 'a/..', '..', 'C:/evil', 'c:evil', '\\etc\\evil', '..\\evil', 'a/b\0c'];
    for (const input of rejected) {
        test(`rejects ${JSON.stringify(input)}`, () => assert.throws(() => safeEntryPath(input), isCode('VIKING_E_UPLOAD_INVALID')));
    }
});
describe('checkLinkTarget', () => {
    const ok = [
        ['link', 'file.txt'],
        ['a/link', '../file.txt'],
        ['a/b/link', '../../file.txt'],
        ['a/link', './sub/x'],
        ['link', '.'],
    ];
    for (const [entry, target] of ok)
        test(`${entry} -> ${target} is kept`, () => assert.doesNotThrow(() => checkLinkTarget(entry, target)));
    const bad = [
        ['link', '/etc/passwd'],
        ['link', '..'],
        ['a', '../..'],
        ['link', '../x'],
        ['a/link', '../../x'],
        ['a/link', 'b/../../../x'],
    ];
    for (const [entry, target] of bad) {
        test(`${entry} -> ${target} is rejected`, () => assert.throws(() => checkLinkTarget(entry, target), isCode('VIKING_E_UPLOAD_INVALID')));
    }
});
describe('extractUpload', () => {
    let parent = '';
    let out = '';
    beforeEach(async () => {
        parent = await mkdtemp(path.join(tmpdir(), 'viking-upload-'));
        out = path.join(parent, 'out');
    });
    afterEach(async () => {
        await rm(parent, { recursive: true, force: true });
    });
    const extract = async (entries, maxBytes = 1 << 20) => extractUpload(Readable.from([Buffer.isBuffer(entries) ? entries : await tarball(entries)]), out, { maxBytes });
    /** Nothing outside `out`: the temp parent holds only it, and no evil file appeared above. */
    async function assertContained() {
        assert.deepEqual(await readdir(parent), ['out']);
        assert.equal(existsSync(path.join(parent, '..', 'evil')), false);
        assert.equal(existsSync('/etc/evil'), false);
    }
    test('a good tree extracts with its contents, modes and inner links', async () => {
        const result = await extract([
            { name: 'Vikingfile', content: 'deploy: {}\n', mode: 0o644 },
            { name: 'bin/', type: 'directory', mode: 0o755 },
            { name: 'bin/start.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
            { name: './src/app/index.js', content: 'console.log(1)\n', mode: 0o600 },
            { name: 'src/current', type: 'symlink', linkname: 'app/index.js' },
            { name: 'bin/up', type: 'symlink', linkname: '../src/app' },
            { name: 'empty.txt', content: '', mode: 0o644 },
        ]);
        assert.deepEqual(result, { files: 4, bytes: 11 + 18 + 15 });
        assert.equal(await readFile(path.join(out, 'Vikingfile'), 'utf8'), 'deploy: {}\n');
        assert.equal(await readFile(path.join(out, 'bin/start.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
        assert.equal(await readFile(path.join(out, 'src/app/index.js'), 'utf8'), 'console.log(1)\n');
        assert.equal(await readFile(path.join(out, 'empty.txt'), 'utf8'), '');
        assert.equal((await stat(path.join(out, 'bin/start.sh'))).mode & 0o777, 0o755);
        assert.equal((await stat(path.join(out, 'src/app/index.js'))).mode & 0o777, 0o600);
        assert.equal((await stat(path.join(out, 'Vikingfile'))).mode & 0o777, 0o644);
        assert.ok((await lstat(path.join(out, 'src/current'))).isSymbolicLink());
        assert.equal(await readlink(path.join(out, 'src/current')), 'app/index.js');
        assert.equal(await readFile(path.join(out, 'src/current'), 'utf8'), 'console.log(1)\n');
        assert.equal(await readlink(path.join(out, 'bin/up')), '../src/app');
        await assertContained();
    });
    test('setuid/setgid bits are stripped from modes', async () => {
        await extract([{ name: 'suid', content: 'x', mode: 0o4755 }]);
        assert.equal((await stat(path.join(out, 'suid'))).mode & 0o7777, 0o755);
    });
    const malicious = [
        { name: 'entry ../evil', entries: [{ name: '../evil', content: 'pwned' }] },
        { name: 'entry /etc/evil', entries: [{ name: '/etc/evil', content: 'pwned' }] },
        { name: 'entry a/../../evil', entries: [{ name: 'a/', type: 'directory' }, { name: 'a/../../evil', content: 'pwned' }] },
        { name: 'symlink to /etc/passwd', entries: [{ name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }] },
        { name: 'symlink a -> ../.. then a/evil', entries: [{ name: 'a', type: 'symlink', linkname: '../..' }, { name: 'a/evil', content: 'pwned' }] },
        { name: 'hard link', entries: [{ name: 'ok.txt', content: 'x' }, { name: 'hl', type: 'link', linkname: 'ok.txt' }] },
        { name: 'hard link to /etc/passwd', entries: [{ name: 'hl', type: 'link', linkname: '/etc/passwd' }] },
        { name: 'character device', entries: [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }] },
        { name: 'block device', entries: [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }] },
        { name: 'fifo', entries: [{ name: 'pipe', type: 'fifo' }] },
        { name: 'content over maxBytes', entries: [{ name: 'big.bin', content: Buffer.alloc(4096, 1) }], maxBytes: 1000, code: 'VIKING_E_UPLOAD_TOO_LARGE' },
        { name: 'files summing over maxBytes', entries: [{ name: 'a', content: 'x'.repeat(600) }, { name: 'b', content: 'y'.repeat(600) }], maxBytes: 1000, code: 'VIKING_E_UPLOAD_TOO_LARGE' },
        { name: 'garbage non-tar bytes', entries: () => Buffer.from('this is not a tar archive at all\n'.repeat(40)) },
    ];
    for (const m of malicious) {
        test(`rejects ${m.name}`, async () => {
            const input = typeof m.entries === 'function' ? m.entries() : m.entries;
            await assert.rejects(extract(input, m.maxBytes), isCode(m.code ?? 'VIKING_E_UPLOAD_INVALID'));
            await assertContained();
            assert.equal(existsSync(path.join(out, 'big.bin')), false, 'an oversized file is not written');
        });
    }
    test('a link chain that escapes through an inner link is rejected', async () => {
        // d/b -> .. (the root, allowed); a -> d/b/.. (textually "d", on disk the root's parent); then a/evil.
        const entries = [
            { name: 'd/', type: 'directory' },
            { name: 'd/b', type: 'symlink', linkname: '..' },
            { name: 'a', type: 'symlink', linkname: 'd/b/..' },
            { name: 'a/evil', content: 'pwned' },
        ];
        await assert.rejects(extract(entries), isCode('VIKING_E_UPLOAD_INVALID'));
        await assertContained();
    });
});
//# sourceMappingURL=upload.test.js.map